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
	// A shorter request takes a pooled buffer of up to twice its length, and it returns whole.
	z, _ := b.Alloc(tensor.Shape{10})
	if zd := z.Storage().(*tensor.HostStorage).Data; len(zd) != 10 || &zd[0] != first {
		t.Errorf("a request for 10 got %d elements, not the pooled 20's first 10", len(zd))
	}
	if b.pool.held != 0 {
		t.Errorf("the pool holds %d elements, want 0", b.pool.held)
	}
	b.Release(z.Storage())
	if b.pool.held != 20 {
		t.Errorf("the pool holds %d elements after the release, want the whole 20", b.pool.held)
	}
	// Past twice the peak of live memory (20), a miss drops pooled buffers: pool plus live
	// stays within 40.
	big, _ := b.Alloc(tensor.Shape{30}) // live 30, pooled 20: within 2·30
	if b.pool.held != 20 {
		t.Errorf("the pool holds %d elements, want 20", b.pool.held)
	}
	b.Release(big.Storage()) // pooled 50, live 0
	for i := 0; i < 2; i++ {
		u, _ := b.Alloc(tensor.Shape{7}) // a miss each time
		defer b.Release(u.Storage())
	}
	if got := b.pool.held + b.pool.live; got > 2*b.pool.peak {
		t.Errorf("pooled %d + live %d exceeds twice the peak %d", b.pool.held, b.pool.live, b.pool.peak)
	}
	for l := range b.pool.free {
		delete(b.pool.free, l)
	}
	b.pool.held = 0
	// A caller's slice is never taken into the pool.
	mine := make([]float32, 10)
	w, _ := tensor.New(&tensor.HostStorage{Data: mine}, tensor.Shape{10})
	b.Release(w.Storage())
	if got := b.pool.held; got != 0 {
		t.Errorf("pool holds %d elements, want none", got)
	}
	v, _ := b.Alloc(tensor.Shape{10})
	if &v.Storage().(*tensor.HostStorage).Data[0] == &mine[0] {
		t.Error("a caller's slice was handed out by Alloc")
	}
}
