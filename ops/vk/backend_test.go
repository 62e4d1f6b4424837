package vk

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/chnet/chnet/internal/vkrt"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/ops/cpu"
	"github.com/chnet/chnet/tensor"
)

// Every push block must fit the 128 bytes every pipeline layout declares (the portable minimum
// of maxPushConstantsSize); vkrt also rejects a larger one at dispatch time.
func TestPushBlocksFit(t *testing.T) {
	for name, size := range map[string]uintptr{
		"ewPush": unsafe.Sizeof(ewPush{}), "sumChunksPush": unsafe.Sizeof(sumChunksPush{}), "sumRowsPush": unsafe.Sizeof(sumRowsPush{}),
		"poolPush": unsafe.Sizeof(poolPush{}), "resizePush": unsafe.Sizeof(resizePush{}), "bnStatsPush": unsafe.Sizeof(bnStatsPush{}),
		"bnApplyPush": unsafe.Sizeof(bnApplyPush{}), "bngSumsPush": unsafe.Sizeof(bngSumsPush{}),
		"bngApplyPush": unsafe.Sizeof(bngApplyPush{}), "slBoxPush": unsafe.Sizeof(slBoxPush{}),
		"slTermsPush": unsafe.Sizeof(slTermsPush{}), "slFinalPush": unsafe.Sizeof(slFinalPush{}), "slGradPush": unsafe.Sizeof(slGradPush{}),
		"sgdPush": unsafe.Sizeof(sgdPush{}), "convPush": unsafe.Sizeof(convPush{}), "matmulPush": unsafe.Sizeof(matmulPush{}),
		"rowsPush": unsafe.Sizeof(rowsPush{}), "lnPush": unsafe.Sizeof(lnPush{}), "permutePush": unsafe.Sizeof(permutePush{}),
		"halfPush": unsafe.Sizeof(halfPush{}), "mixedPush": unsafe.Sizeof(mixedPush{}),
	} {
		if size > vkrt.MaxPush || size%4 != 0 {
			t.Errorf("%s is %d bytes; push blocks must be multiples of 4 and at most %d", name, size, vkrt.MaxPush)
		}
	}
}

// A tensor above maxStorageBufferRange must be processed in several dispatches, each within
// the limit (vkrt rejects larger bindings, so passing CompareBackends' large cases proves the
// split worked; this checks that one actually happened).
func TestLargeTensorsAreSliced(t *testing.T) {
	b := open(t)
	if testing.Short() {
		t.Skip("allocates 276 MB")
	}
	limit := b.dev.MaxRange()
	n := int(limit/4) + 1000
	x, err := b.Alloc(tensor.Shape{2, n / 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release(x.Storage())
	before := b.dev.Stats().Dispatches
	if err := b.Fill(x, 1); err != nil {
		t.Fatal(err)
	}
	if got := b.dev.Stats().Dispatches - before; got < 2 {
		t.Errorf("a %d MiB tensor took %d dispatch(es) under a %d MiB binding limit", 4*n>>20, got, limit>>20)
	}
	s, _ := b.Alloc(tensor.Shape{1})
	if err := b.Sum(s, x, ops.AxesAll); err != nil {
		t.Fatal(err)
	}
	v, err := b.Download(s)
	if err != nil {
		t.Fatal(err)
	}
	if want := float32(n / 2 * 2); v[0] != want {
		t.Errorf("sum of ones = %v, want %v", v[0], want)
	}
}

func TestErrors(t *testing.T) {
	b := open(t)
	t.Run("out_of_memory_names_the_sizes", func(t *testing.T) {
		_, err := b.Alloc(tensor.Shape{1<<31 - 1})
		if err == nil {
			t.Skip("the device holds an 8 GiB tensor")
		}
		if !errors.Is(err, vkrt.ErrOutOfDeviceMemory) || !strings.Contains(err.Error(), "[2147483647]") {
			t.Errorf("got %v, want ErrOutOfDeviceMemory naming the shape", err)
		}
		t.Log(err)
	})
	t.Run("released_storage", func(t *testing.T) {
		x, _ := b.Alloc(tensor.Shape{4, 4})
		b.Release(x.Storage())
		b.Release(x.Storage()) // twice is harmless
		if err := b.Fill(x, 1); err == nil {
			t.Error("a kernel ran on released storage")
		}
	})
	t.Run("foreign_tensor", func(t *testing.T) {
		x, _ := cpu.New().Alloc(tensor.Shape{4, 4})
		y, _ := b.Alloc(tensor.Shape{4, 4})
		if err := b.Copy(y, x); err == nil || !strings.Contains(err.Error(), "another backend") {
			t.Errorf("copy from a CPU tensor: %v", err)
		}
	})
	t.Run("shape_mismatch", func(t *testing.T) {
		x, _ := b.Alloc(tensor.Shape{2, 3, 8, 8})
		w, _ := b.Alloc(tensor.Shape{4, 2, 3, 3})
		y, _ := b.Alloc(tensor.Shape{2, 4, 8, 8})
		if err := b.Conv2D(y, x, w, nil, ops.Conv2DParams{Pad: 1}.Norm()); err == nil {
			t.Error("conv2d accepted a weight for 2 input channels on a 3-channel input")
		}
	})
}

// Storage nobody releases goes back to the arena once unreachable (the cleanup only does
// bookkeeping; no Vulkan call runs on the cleanup goroutine).
func TestUnreleasedStorageIsReclaimed(t *testing.T) {
	b := open(t)
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	before, _ := b.dev.MemoryInUse()
	func() {
		for i := 0; i < 8; i++ {
			if _, err := b.Alloc(tensor.Shape{1 << 18}); err != nil {
				t.Fatal(err)
			}
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		if now, _ := b.dev.MemoryInUse(); now <= before {
			return
		}
		if time.Now().After(deadline) {
			now, _ := b.dev.MemoryInUse()
			t.Fatalf("arena still holds %d bytes more than before 8 dropped tensors", now-before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A split-K weight gradient sums its partials in its own kernel, in the order the reduction
// kernel would: one dispatch, the same bits, and the tile counters left ready for the next.
func TestSplitKSumInKernel(t *testing.T) {
	b := open(t)
	rng := tensor.NewRNG(12, 0)
	in := func(shape ...int) *tensor.Tensor {
		v := make([]float32, tensor.Shape(shape).Numel())
		for i := range v {
			v[i] = float32(rng.Normal())
		}
		x, err := ops.FromHost(b, v, shape...)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	p := ops.Conv2DParams{Pad: 1}
	x, gy := in(2, 4, 40, 37), in(2, 3, 40, 37) // K = 2960 over 108 weights: split on any device
	// gradWeight computes the gradient into a dense tensor, or into a slice of a larger one
	// along its input channels.
	gradWeight := func(fixup, slice bool) ([]float32, int) {
		defer func(v bool) { splitKFixup = v }(splitKFixup)
		splitKFixup = fixup
		shape := tensor.Shape{3, 4, 3, 3}
		if slice {
			shape[1] = 7
		}
		parent, err := b.Alloc(shape)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Release(parent.Storage())
		gw := parent
		if slice {
			if gw, err = parent.Narrow(1, 2, 4); err != nil {
				t.Fatal(err)
			}
		}
		before := b.dev.Stats().Dispatches
		if err := b.Conv2DGradWeight(gw, x, gy, p); err != nil {
			t.Fatal(err)
		}
		n := b.dev.Stats().Dispatches - before
		v, err := b.Download(gw)
		if err != nil {
			t.Fatal(err)
		}
		return v, n
	}
	gradWeight(true, false) // allocates and zeroes the counters
	want, passes := gradWeight(false, false)
	if passes != 2 {
		t.Fatalf("the reduction path took %d dispatches, want 2 (the shape no longer splits K)", passes)
	}
	for _, c := range []struct {
		name         string
		fixup, slice bool
		dispatches   int
	}{
		{"in kernel", true, false, 1},
		{"in kernel, again", true, false, 1},
		{"in kernel, into a slice", true, true, 1},
		{"reduction, into a slice", false, true, 3}, // dense, reduced, copied in
	} {
		got, n := gradWeight(c.fixup, c.slice)
		if n != c.dispatches {
			t.Errorf("%s: %d dispatches, want %d", c.name, n, c.dispatches)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: weight gradient %d is %g, %g by the reduction into a dense tensor", c.name, i, got[i], want[i])
			}
		}
	}
}
