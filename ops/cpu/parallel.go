package cpu

import "sync"

// parallelFor splits [0, n) into at most workers contiguous chunks and runs fn on each
// concurrently. Work below minChunk items per worker runs on the caller's goroutine: spawning
// costs more than it saves for small tensors.
func parallelFor(workers, n, minChunk int, fn func(lo, hi int)) {
	if minChunk < 1 {
		minChunk = 1
	}
	w := workers
	if m := n / minChunk; m < w {
		w = m
	}
	if w <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + w - 1) / w
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			fn(lo, hi)
		}(lo, hi)
	}
	wg.Wait()
}
