package vk

import (
	"fmt"

	"github.com/chnet/chnet/internal/vkrt"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/shaders"
	"github.com/chnet/chnet/tensor"
)

// sumChunksPush mirrors reduce.comp's SUM_CHUNKS push block.
type sumChunksPush struct {
	Off, Stride, L, C             uint32
	APer, JChunks, Chunk, NChunks uint32
	A0, A1, O0, Mode, POff        uint32
}

// sumRowsPush mirrors reduce.comp's SUM_ROWS / SUM_COLS push block.
type sumRowsPush struct {
	IOff, SO, SK, Count uint32
	OOff, Outputs       uint32
	Scale               float32
}

const reduceWorkGroup = 256

// chunkElems is about how many elements one reduction workgroup sums: enough work per
// workgroup to amortise its tree, few enough partials to keep stage two short.
const chunkElems = 4096

// segPlan cuts a segmented reduction into workgroup chunks. Output o sums segments of L
// consecutive elements at channel o%C of items [0,n) (mode 0) or of item o/C alone (mode 1).
// Dispatch pieces of `per` items keep every operand (ops[0] is the reduced one) within a
// binding.
type segPlan struct {
	n, c, l, outputs      int64
	hw                    bool // mode 1
	aPer, jchunks, chunk  int64
	ablocks, nchunks, per int64 // per: items per dispatch piece (a multiple of aPer)
}

func (b *Backend) planSegments(op string, c, l, outputs int64, hw bool, ops ...operand) (segPlan, error) {
	x := ops[0]
	p := segPlan{n: x.n, c: c, l: l, outputs: outputs, hw: hw}
	if l >= chunkElems {
		p.chunk = max(chunkElems, (l+16383)/16384)
		p.chunk = (p.chunk + reduceWorkGroup - 1) / reduceWorkGroup * reduceWorkGroup
		p.jchunks = (l + p.chunk - 1) / p.chunk
		p.aPer = 1
	} else {
		p.chunk, p.jchunks = l, 1
		p.aPer = max(1, chunkElems/l)
	}
	if hw {
		p.aPer, p.ablocks = 1, 1
		p.nchunks = p.jchunks
	} else {
		p.aPer = min(p.aPer, x.n)
		p.ablocks = (x.n + p.aPer - 1) / p.aPer
		p.nchunks = p.ablocks * p.jchunks
	}
	chunks, err := b.itemChunks(op, x.n, ops...)
	if err != nil {
		return p, err
	}
	p.per = chunks[0][1] - chunks[0][0]
	if p.per < p.aPer {
		p.aPer = p.per
		p.ablocks = (x.n + p.aPer - 1) / p.aPer
		if !hw {
			p.nchunks = p.ablocks * p.jchunks
		}
	}
	p.per = p.per / p.aPer * p.aPer
	// Stage two sums each output's chunks in a loop; keep it within maxLoopTrips by widening
	// the chunks (stage one then loops chunk/workgroup times, still few).
	if maxJ := max(1, maxLoopTrips/p.ablocks); !hw && p.jchunks > maxJ {
		p.chunk = ceilDiv(ceilDiv(l, maxJ), reduceWorkGroup) * reduceWorkGroup
		p.jchunks = ceilDiv(l, p.chunk)
		p.nchunks = p.ablocks * p.jchunks
	}
	if hw {
		p.per = min(p.per, max(1, 65535/c)) // one workgroup row per output of the piece
	}
	if p.jchunks > 65535 || outputs > 65535 && !hw || p.ablocks > 65535 {
		return p, fmt.Errorf("%s: reduction grid too large (%d outputs, %d×%d chunks)", op, outputs, p.ablocks, p.jchunks)
	}
	return p, nil
}

// sumChunks records stage one of plan p over x into part (outputs × nchunks floats at element
// offset poff of the binding).
func (b *Backend) sumChunks(what string, p segPlan, x operand, part vkrt.Access, poff uint32) error {
	k, err := b.kernel(shaders.ReduceSumChunks, reduceWorkGroup)
	if err != nil {
		return err
	}
	push := sumChunksPush{L: uint32(p.l), C: uint32(p.c), APer: uint32(p.aPer), JChunks: uint32(p.jchunks),
		Chunk: uint32(p.chunk), NChunks: uint32(p.nchunks), POff: poff}
	if p.hw {
		push.Mode = 1
	}
	for i0 := int64(0); i0 < p.n; i0 += p.per {
		i1 := min(i0+p.per, p.n)
		acc, off := b.bindItems(x, i0, i1, false)
		push.Off, push.Stride = off, uint32(x.stride)
		push.A0, push.A1 = uint32(i0), uint32(i1)
		groups := [3]uint32{uint32(p.jchunks), uint32(p.outputs), uint32((i1 - i0 + p.aPer - 1) / p.aPer)}
		if p.hw {
			push.O0 = uint32(i0 * p.c)
			groups[1], groups[2] = uint32((i1-i0)*p.c), 1
		}
		if err := b.dev.Dispatch(k, []vkrt.Access{part, acc}, pushBytes(&push), groups, what); err != nil {
			return err
		}
	}
	return nil
}

// sumRows records out[o] = scale·Σ_{k<count} in[o*so + k*sk] for o < outputs: one workgroup per
// output when rows are long and outputs few, one invocation per output otherwise.
func (b *Backend) sumRows(what string, out, in vkrt.Access, ooff, ioff uint32, outputs, count, so, sk int64, scale float32) error {
	push := sumRowsPush{IOff: ioff, SO: uint32(so), SK: uint32(sk), Count: uint32(count), OOff: ooff, Outputs: uint32(outputs), Scale: scale}
	name, wg, inv := shaders.ReduceSumRows, int64(reduceWorkGroup), outputs
	if count < 64 || outputs >= 4096 {
		name, wg, inv = shaders.ReduceSumCols, 64, (outputs+63)/64
	}
	k, err := b.kernel(name, uint32(wg))
	if err != nil {
		return err
	}
	gx := min(inv, 65535)
	gy := (inv + gx - 1) / gx
	return b.dev.Dispatch(k, []vkrt.Access{out, in}, pushBytes(&push), [3]uint32{uint32(gx), uint32(gy), 1}, what)
}

// scratch allocates a temporary range of n floats. The caller frees it right after recording
// the kernels that use it: the recorder orders any later reuse after them.
func (b *Backend) scratch(n int64) (*vkrt.Buffer, error) {
	return b.dev.Alloc(4 * max(n, 1))
}

// Sum implements ops.Backend.
func (b *Backend) Sum(dst, x *tensor.Tensor, axes ops.Axes) error {
	d, err := b.dense(dst)
	if err != nil {
		return fmt.Errorf("sum: %w", err)
	}
	xo, err := b.operand(x)
	if err != nil {
		return fmt.Errorf("sum: %w", err)
	}
	var c, l, outputs int64
	hw := false
	switch axes {
	case ops.AxesAll:
		if d.inner*d.n != 1 {
			return fmt.Errorf("sum: destination %v must have one element", dst.Shape())
		}
		c, l, outputs = 1, xo.inner, 1
	case ops.AxesNHW, ops.AxesHW:
		if x.Rank() != 4 {
			return fmt.Errorf("sum over %v: input %v is not NCHW", axes, x.Shape())
		}
		n, ch, h, w := x.Shape().NCHW()
		c, l, outputs = int64(ch), int64(h*w), int64(ch)
		if axes == ops.AxesHW {
			hw, outputs = true, int64(n*ch)
		}
		if d.n*d.inner != outputs {
			return fmt.Errorf("sum over %v: destination %v, want %d elements", axes, dst.Shape(), outputs)
		}
	default:
		return fmt.Errorf("sum: unknown axes %v", axes)
	}
	return b.segmentSum("sum", d, xo, c, l, outputs, hw, 1)
}

// segmentSum writes scale·(segment sums) of x into the dense operand d.
func (b *Backend) segmentSum(what string, d, x operand, c, l, outputs int64, hw bool, scale float32) error {
	p, err := b.planSegments(what, c, l, outputs, hw, x)
	if err != nil {
		return err
	}
	dacc, doff := b.bindAll(d, true)
	if p.nchunks == 1 && scale == 1 {
		return b.sumChunks(what, p, x, dacc, doff)
	}
	part, err := b.scratch(outputs * p.nchunks)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer part.Free()
	pacc := vkrt.Access{Buf: part, Size: part.Size(), Write: true}
	if err := b.sumChunks(what, p, x, pacc, 0); err != nil {
		return err
	}
	pacc.Write = false
	return b.sumRows(what, dacc, pacc, doff, 0, outputs, p.nchunks, p.nchunks, 1, scale)
}
