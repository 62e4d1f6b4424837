package cpu

import (
	"math"
	"sync"
)

// poisonEnv, when set, fills every reused buffer with NaN before Alloc returns it, so a kernel
// that reads an output it has not written (counting on fresh memory being zero) fails loudly.
// The test task sets it.
const poisonEnv = "CHNET_CPU_POISON"

// bufferPool keeps released buffers for Alloc to reuse by exact length: a training or inference
// step allocates the same sizes every time, and fresh Go memory costs page faults, zeroing and
// collector work (a large share of a CPU inference's time). It never holds more than was once
// live: an Alloc it cannot serve first drops at least as much pooled memory as it allocates.
type bufferPool struct {
	mu     sync.Mutex
	free   map[int][][]float32
	held   int // elements pooled
	poison bool
}

func newBufferPool(poison bool) *bufferPool {
	return &bufferPool{free: map[int][][]float32{}, poison: poison}
}

// get returns a buffer of n elements with unspecified contents.
func (p *bufferPool) get(n int) []float32 {
	p.mu.Lock()
	if l := p.free[n]; len(l) > 0 {
		buf := l[len(l)-1]
		l[len(l)-1] = nil
		p.free[n] = l[:len(l)-1]
		p.held -= n
		p.mu.Unlock()
		if p.poison {
			nan := float32(math.NaN())
			for i := range buf {
				buf[i] = nan
			}
		}
		return buf
	}
	// A miss: drop pooled buffers of other sizes worth at least n, so that pool plus live
	// memory stays within what was live before.
	need := n
	for size, l := range p.free {
		if need <= 0 {
			break
		}
		for len(l) > 0 && need > 0 {
			l[len(l)-1] = nil
			l = l[:len(l)-1]
			p.held -= size
			need -= size
		}
		if len(l) == 0 {
			delete(p.free, size)
		} else {
			p.free[size] = l
		}
	}
	p.mu.Unlock()
	return make([]float32, n)
}

// put takes a released buffer back.
func (p *bufferPool) put(buf []float32) {
	if len(buf) == 0 {
		return
	}
	p.mu.Lock()
	p.free[len(buf)] = append(p.free[len(buf)], buf)
	p.held += len(buf)
	p.mu.Unlock()
}
