package ops

import (
	"fmt"

	"github.com/chnet/chnet/tensor"
)

// Concat joins NCHW tensors along the channel dimension (torch.cat(xs, 1)). Inputs that an op
// already wrote into their slice of a NewConcat buffer cost nothing; the others are copied.
// Its gradient is views of the output gradient: no copies.
func (t *Tape) Concat(xs ...*tensor.Tensor) *tensor.Tensor {
	const op = "concat"
	if !t.ok(xs...) {
		return nil
	}
	if len(xs) == 0 {
		t.Fail(fmt.Errorf("%s: no inputs", op))
		return nil
	}
	n, _, h, w := 0, 0, 0, 0
	total := 0
	for i, x := range xs {
		if err := requireNCHW(op, fmt.Sprintf("input %d", i), x); err != nil {
			t.Fail(err)
			return nil
		}
		if i == 0 {
			n, h, w = x.Dim(0), x.Dim(2), x.Dim(3)
		} else if x.Dim(0) != n || x.Dim(2) != h || x.Dim(3) != w {
			t.Fail(fmt.Errorf("%s: input %d has shape %v, input 0 has %v: only channels may differ", op, i, x.Shape(), xs[0].Shape()))
			return nil
		}
		total += x.Dim(1)
	}
	shape := tensor.Shape{n, total, h, w}
	sizes := make([]int, len(xs))
	for i, x := range xs {
		sizes[i] = x.Dim(1)
	}
	// The output is the NewConcat buffer some input was written into in place, if any.
	var y *tensor.Tensor
	inPlace := make([]bool, len(xs))
	off := 0
	for i, x := range xs {
		if buf := t.concatBufs[x.Storage()]; buf != nil && buf.Shape().Equal(shape) {
			if p := channelParent(x, shape, off); p != nil && (y == nil || y.Storage() == buf.Storage()) {
				y, inPlace[i] = buf, true
			}
		}
		off += sizes[i]
	}
	if y == nil {
		if y = t.alloc(shape, op); y == nil {
			return nil
		}
	} else {
		delete(t.concatBufs, y.Storage()) // a buffer serves one concatenation
	}
	parts, err := y.Split(1, sizes...)
	if err != nil {
		t.Fail(fmt.Errorf("%s: %w", op, err))
		return nil
	}
	for i, x := range xs {
		if !inPlace[i] && !t.check(t.b.Copy(parts[i], x), op) {
			return nil
		}
	}
	t.record(op, []*tensor.Tensor{y}, xs, nil,
		func(gys []*tensor.Tensor) []*tensor.Tensor {
			views, err := gys[0].Split(1, sizes...)
			if err != nil {
				t.Fail(fmt.Errorf("%s grad: %w", op, err))
				return nil
			}
			return views
		})
	return y
}

// ConcatOut is the output of a concatenation allocated before its inputs exist, so that the op
// producing each input can write it straight into its channel slice (Into); Concat of those
// inputs then copies nothing.
type ConcatOut struct {
	t     *Tape
	parts []*tensor.Tensor
}

// NewConcat allocates the output of a concatenation of tensors shaped like `like` ([N C H W])
// but with the given channel counts.
func (t *Tape) NewConcat(like *tensor.Tensor, sizes ...int) *ConcatOut {
	const op = "concat"
	if !t.ok(like) {
		return nil
	}
	if err := requireNCHW(op, "input", like); err != nil {
		t.Fail(err)
		return nil
	}
	total := 0
	for _, c := range sizes {
		total += c
	}
	y := t.alloc(tensor.Shape{like.Dim(0), total, like.Dim(2), like.Dim(3)}, op)
	if y == nil {
		return nil
	}
	parts, err := y.Split(1, sizes...)
	if err != nil {
		t.Fail(fmt.Errorf("%s: %w", op, err))
		return nil
	}
	t.concatBufs[y.Storage()] = y
	return &ConcatOut{t: t, parts: parts}
}

// NewConcatSized is NewConcat for parts of n images of h×w pixels, for when no tensor of that
// shape exists yet (inference's folded convolutions write their outputs straight into it).
func (t *Tape) NewConcatSized(n, h, w int, sizes ...int) *ConcatOut {
	const op = "concat"
	if t.err != nil {
		return nil
	}
	total := 0
	for _, c := range sizes {
		total += c
	}
	y := t.alloc(tensor.Shape{n, total, h, w}, op)
	if y == nil {
		return nil
	}
	parts, err := y.Split(1, sizes...)
	if err != nil {
		t.Fail(fmt.Errorf("%s: %w", op, err))
		return nil
	}
	t.concatBufs[y.Storage()] = y
	return &ConcatOut{t: t, parts: parts}
}

// Into runs produce, which must run exactly one op, with that op's output written into channel
// slice i of the concatenation, and returns the output (a view of the slice). An op that cannot
// write there has its output copied in, so the result is the same either way. A nil c (after
// an error) just runs produce.
func (c *ConcatOut) Into(i int, produce func() *tensor.Tensor) *tensor.Tensor {
	if c == nil {
		return produce()
	}
	t := c.t
	const op = "concat"
	if i < 0 || i >= len(c.parts) {
		t.Fail(fmt.Errorf("%s: slice %d of %d", op, i, len(c.parts)))
		return nil
	}
	dst := c.parts[i]
	prevInto, prevTaken := t.into, t.intoTaken
	t.into, t.intoTaken = dst, false
	y := produce()
	taken := t.intoTaken
	t.into, t.intoTaken = prevInto, prevTaken
	if y == nil || !t.ok(y) {
		return nil
	}
	if y == dst {
		return y
	}
	if taken {
		t.Fail(fmt.Errorf("%s: internal: Into ran more than one op (an earlier one took the slice)", op))
		return nil
	}
	if !y.Shape().Equal(dst.Shape()) {
		t.Fail(fmt.Errorf("%s: slice %d is %v, the op produced %v", op, i, dst.Shape(), y.Shape()))
		return nil
	}
	out := dst
	if !t.check(t.b.Copy(out, y), op) {
		return nil
	}
	t.record(op, []*tensor.Tensor{out}, []*tensor.Tensor{y}, nil,
		func(gys []*tensor.Tensor) []*tensor.Tensor { return gys })
	return out
}

// Split cuts x along the channel dimension into views of the given sizes (torch.split(x, sizes, 1)).
// Its gradient assembles the parts' gradients into one tensor, with zeros for unused parts; rules
// write the parts' gradients straight into it where they can (gradTarget), and those cost nothing.
func (t *Tape) Split(x *tensor.Tensor, sizes ...int) []*tensor.Tensor {
	const op = "split"
	if !t.ok(x) {
		return nil
	}
	if err := requireNCHW(op, "input", x); err != nil {
		t.Fail(err)
		return nil
	}
	parts, err := x.Split(1, sizes...)
	if err != nil {
		t.Fail(err)
		return nil
	}
	r := &splitRec{x: x, parts: parts, sizes: sizes}
	t.record(op, parts, []*tensor.Tensor{x}, nil,
		func(gys []*tensor.Tensor) []*tensor.Tensor {
			if !t.splitBuffer(r) {
				return nil
			}
			// A region a part's gradient is not already in must be free to write; otherwise
			// assemble in a new buffer.
			dst := r.bufParts
			for i, g := range gys {
				if !sameView(g, dst[i]) && t.regionBusy(dst[i]) {
					buf := t.alloc(x.Shape(), op+" grad")
					if buf == nil || !t.setSplitBuffer(r, buf) {
						return nil
					}
					dst = r.bufParts
					break
				}
			}
			for i, g := range gys {
				var err error
				switch {
				case sameView(g, dst[i]):
					continue
				case g == nil:
					err = t.b.Fill(dst[i], 0)
				default:
					err = t.b.Copy(dst[i], g)
				}
				if !t.check(err, op+" grad") {
					return nil
				}
			}
			return []*tensor.Tensor{r.buf}
		})
	if len(parts) > 0 && t.produced[parts[0]] {
		for _, p := range parts {
			t.splitOf[p] = r
		}
	}
	return parts
}
