package optest

import (
	"testing"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// DiscBatch is a fixed, learnable segmentation batch for end-to-end tests: two 3×64×64 noisy
// images, each with a bright disc of radius 12 at a seeded position, and the discs' masks.
func DiscBatch(tb testing.TB, b ops.Backend) (x, y *tensor.Tensor) {
	tb.Helper()
	const n, s = 2, 64
	rng := tensor.NewRNG(2, 0)
	img := make([]float32, n*3*s*s)
	mask := make([]float32, n*s*s)
	for i := 0; i < n; i++ {
		cy, cx := 20+rng.Intn(24), 20+rng.Intn(24)
		for yy := 0; yy < s; yy++ {
			for xx := 0; xx < s; xx++ {
				in := (yy-cy)*(yy-cy)+(xx-cx)*(xx-cx) < 144
				for c := 0; c < 3; c++ {
					v := float32(rng.Normal()) * 0.3
					if in {
						v += 1.5
					}
					img[((i*3+c)*s+yy)*s+xx] = v
				}
				if in {
					mask[(i*s+yy)*s+xx] = 1
				}
			}
		}
	}
	x, err := ops.FromHost(b, img, n, 3, s, s)
	if err != nil {
		tb.Fatal(err)
	}
	y, err = ops.FromHost(b, mask, n, 1, s, s)
	if err != nil {
		tb.Fatal(err)
	}
	return x, y
}
