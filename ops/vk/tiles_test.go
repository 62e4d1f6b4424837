package vk

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chnet/chnet/internal/vkrt"
	"github.com/chnet/chnet/ops/cpu"
	"github.com/chnet/chnet/ops/optest"
)

// TestGPUTilesOnThisDevice runs convolution cases with each tile configuration meant for GPUs
// forced on the device at hand, so the 128×128 and 64×64 tiles are checked on lavapipe in CI
// before they first run on an NVIDIA card (where only performance should differ). Four
// configurations cover the generic and 1x1 kernels, several K tiles, views, groups and
// dilation; every pipeline costs lavapipe a compile, so not all of them.
func TestGPUTilesOnThisDevice(t *testing.T) {
	b := open(t)
	gpu := chooseTiles(vkrt.DeviceInfo{Type: vkrt.Discrete, MaxWorkGroupInvocations: 1024,
		MaxWorkGroupSize: [3]uint32{1024, 1024, 64}, MaxSharedMemory: 48 << 10})
	saved := b.tiles
	defer func() { b.tiles = saved }()
	for _, tl := range gpu.tiles {
		if !tl.valid(b.dev.Info) {
			t.Logf("tile %+v does not fit this device; skipped", tl)
			continue
		}
		// The mapping GPUs use by default (AVEC 1 where TM allows); AVEC 0, the other, is what
		// lavapipe runs in every other test.
		for _, avec := range []uint32{gpu.avec} {
			if tl.tm%4 != 0 {
				avec = 0
			}
			t.Run(fmt.Sprintf("%dx%dx%d_%dx%d_avec%d", tl.bm, tl.bn, tl.bk, tl.tm, tl.tn, avec), func(t *testing.T) {
				b.tiles = tileSet{tiles: []tile{tl}, parallel: gpu.parallel, avec: avec}
				optest.CompareBackendsMatching(t, cpu.New(), b, func(name string) bool {
					for _, c := range []string{"3x3_s1_p1_wide", "1x1_s1_bias", "3x3_s2_p1_views", "3x3_d2_p2_g2", "3x3_s1_p1_long_k"} {
						if strings.HasPrefix(name, "conv2d_") && strings.HasSuffix(name, c) {
							return true
						}
					}
					return false
				})
			})
		}
	}
}
