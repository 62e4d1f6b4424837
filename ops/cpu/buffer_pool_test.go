package cpu

import (
	"math"
	"testing"

	"github.com/chnet/chnet/tensor"
)

func TestBufferPoolReusesAndBounds(t *testing.T) {
	b := &Backend{workers: 1, pool: newBufferPool(true)}
	x, err := b.Alloc(tensor.Shape{4, 5})
	if err != nil {
		t.Fatal(err)
	}
	first := &x.Storage().(*tensor.HostStorage).Data[0]
	b.Release(x.Storage())
	if x.Storage().Len() != 0 {
		t.Fatal("a released tensor still has memory")
	}
	y, _ := b.Alloc(tensor.Shape{20})
	d := y.Storage().(*tensor.HostStorage).Data
	if &d[0] != first {
		t.Error("a buffer of the same length was not reused")
	}
	if !math.IsNaN(float64(d[7])) {
		t.Error("a reused buffer was not poisoned")
	}
	b.Release(y.Storage())
	// A miss drops at least as much pooled memory as it allocates.
	z, _ := b.Alloc(tensor.Shape{10})
	if b.pool.held != 0 {
		t.Errorf("after a miss the pool holds %d elements, want 0", b.pool.held)
	}
	b.Release(z.Storage())
	// A caller's slice is never taken into the pool.
	mine := make([]float32, 10)
	w, _ := tensor.New(&tensor.HostStorage{Data: mine}, tensor.Shape{10})
	b.Release(w.Storage())
	if got := b.pool.held; got != 10 {
		t.Errorf("pool holds %d elements, want the 10 of z only", got)
	}
	v, _ := b.Alloc(tensor.Shape{10})
	if &v.Storage().(*tensor.HostStorage).Data[0] == &mine[0] {
		t.Error("a caller's slice was handed out by Alloc")
	}
}
