package vk

import "fmt"

// Slicing: one binding may cover at most maxStorageBufferRange bytes (128 MiB on lavapipe), so
// tensors beyond it are processed in pieces, each dispatch binding only what its piece touches.

// maxElems is how many float32 one binding may cover, less one alignment unit of slack for the
// aligned-down start.
func (b *Backend) maxElems() int64 {
	return (b.dev.MaxRange() - b.dev.BindAlign()) / 4
}

// lastFit is the largest logical index i ≥ e0 of o such that elements e0..i fit one binding.
func (b *Backend) lastFit(o operand, e0 int64) int64 {
	start := 4 * o.at(e0) / b.dev.BindAlign() * b.dev.BindAlign() / 4
	rel := start + b.maxElems() - 1 - o.off
	q := rel / o.stride
	r := rel - q*o.stride
	if r >= o.inner {
		return q*o.inner + o.inner - 1
	}
	return q*o.inner + r
}

// elemPieces splits logical elements [0, total) of same-shaped operands into ranges each of
// which every operand can bind at once. Almost always this is the single range [0, total).
func (b *Backend) elemPieces(total int64, ops ...operand) [][2]int64 {
	var out [][2]int64
	for e0 := int64(0); e0 < total; {
		e1 := total
		for _, o := range ops {
			e1 = min(e1, b.lastFit(o, e0)+1)
		}
		out = append(out, [2]int64{e0, e1})
		e0 = e1
	}
	return out
}

// itemChunks splits batch items [0, n) so that every operand's items of a chunk fit one
// binding; an item larger than a binding is an error naming the sizes.
func (b *Backend) itemChunks(op string, n int64, ops ...operand) ([][2]int64, error) {
	per := n
	for _, o := range ops {
		if o.half {
			continue // bound whole (bindItems)
		}
		if o.inner > b.maxElems() {
			return nil, fmt.Errorf("%s: one batch item holds %d elements (%d MiB), more than one Vulkan binding may cover (%d MiB)",
				op, o.inner, 4*o.inner>>20, b.dev.MaxRange()>>20)
		}
		per = min(per, (b.maxElems()-o.inner)/o.stride+1)
	}
	var out [][2]int64
	for i := int64(0); i < n; i += per {
		out = append(out, [2]int64{i, min(i+per, n)})
	}
	return out, nil
}
