package cpu

import (
	"math"
	"sync"
)

// poisonEnv, when set, fills every reused buffer with NaN before Alloc returns it, so a kernel
// that reads an output it has not written (counting on fresh memory being zero) fails loudly.
// The test task sets it.
const poisonEnv = "CHNET_CPU_POISON"

// bufferPool keeps released buffers for Alloc to reuse: a training or inference step allocates
// the same sizes every time, and fresh Go memory costs page faults, zeroing and collector work.
// A request takes a pooled buffer of its exact length, else the smallest of up to twice it. The
// pool bounds itself: pooled plus live memory stays within twice the most that was ever live
// at once, so an Alloc it cannot serve drops pooled buffers of other sizes only beyond that.
//
// Tapes release intermediates at their last use, so a step's buffers return mid-step and are
// asked for again in other sizes. With exact lengths only and pooled plus live memory bounded
// by the peak itself, every step allocated most of its buffers afresh (0.55 GB per inference
// at batch 4, 352², where the peak live is 0.2 GB: 12% of a batch-16 inference went to zeroing
// new memory); now a steady-state step allocates nothing.
type bufferPool struct {
	mu     sync.Mutex
	free   map[int][][]float32
	held   int // elements pooled
	live   int // elements handed out by get and not yet put back
	peak   int // the most elements ever live at once
	poison bool
}

func newBufferPool(poison bool) *bufferPool {
	return &bufferPool{free: map[int][][]float32{}, poison: poison}
}

// get returns a buffer of n elements with unspecified contents: a pooled one of exactly n, else
// the smallest pooled one of up to 2n (its first n elements; the pool takes it back whole), else
// a new one.
func (p *bufferPool) get(n int) []float32 {
	p.mu.Lock()
	size := n
	if len(p.free[n]) == 0 {
		size = 0
		for c, l := range p.free {
			if len(l) > 0 && c > n && c <= 2*n && (size == 0 || c < size) {
				size = c
			}
		}
	}
	if size > 0 {
		l := p.free[size]
		buf := l[len(l)-1][:n]
		l[len(l)-1] = nil
		p.free[size] = l[:len(l)-1]
		p.held -= size
		p.live += size
		p.mu.Unlock()
		if p.poison {
			nan := float32(math.NaN())
			for i := range buf {
				buf[i] = nan
			}
		}
		return buf
	}
	// A miss: drop pooled buffers of other sizes until pool plus live memory, with this
	// buffer, stays within twice the most that was ever live (or the pool is empty).
	p.live += n
	p.peak = max(p.peak, p.live)
	need := p.held + p.live - 2*p.peak
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

// put takes a released buffer back, whole (get may have handed out a prefix).
func (p *bufferPool) put(buf []float32) {
	buf = buf[:cap(buf)]
	if len(buf) == 0 {
		return
	}
	p.mu.Lock()
	p.free[len(buf)] = append(p.free[len(buf)], buf)
	p.held += len(buf)
	p.live -= len(buf)
	p.mu.Unlock()
}
