package vk

import (
	"fmt"

	"github.com/chnet/chnet/internal/vkrt"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/shaders"
	"github.com/chnet/chnet/tensor"
)

// Op codes of elementwise.comp.
const (
	opFill uint32 = iota
	opCopy
	opReLU
	opSigmoid
	opAbs
	opNeg
	opAxpby
	opExpandAll
	opExpandNHW
	opExpandHW
	opAdd
	opSub
	opMul
	opDiv
	opReLUGrad
	opSigmoidGrad
	opAbsGrad
	opBCE
	opBCEGrad
	opGELU
	opGELUGrad
)

// ewPush mirrors elementwise.comp's push block.
type ewPush struct {
	Start, End, Inner, Op uint32
	Off, Stride           [4]uint32
	Alpha, Beta           float32
	HW, C, Dense          uint32
}

// Every push struct must fit the 128-byte push block: push.go checks them all at compile time.

const ewWorkGroup = 256

// ew runs an elementwise kernel over same-shaped batch-strided tensors ts (ts[0] is written);
// whole, if not nil, is a small dense source bound entirely (Expand's vector). It is the most
// frequent dispatch of a training step, so it allocates nothing when the tensors fit one
// binding.
func (b *Backend) ew(kernel string, op uint32, what string, ts []*tensor.Tensor, whole *tensor.Tensor, p ewPush) error {
	var osArr [4]operand
	os := osArr[:len(ts)]
	for i, t := range ts {
		o, err := b.operand(t)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		os[i] = o
	}
	for _, o := range os[1:] {
		if o.n*o.inner != os[0].n*os[0].inner || o.n != os[0].n {
			return fmt.Errorf("%s: shapes differ: %v and %v", what, ts[0].Shape(), ts[1].Shape())
		}
	}
	k, err := b.kernel(kernel, ewWorkGroup)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	total := os[0].n * os[0].inner
	p.Inner = uint32(os[0].inner)
	// Dense addressing skips a division per element; Expand always needs the item position.
	p.Dense = 1
	for _, o := range os {
		if o.stride != o.inner || whole != nil {
			p.Dense = 0
		}
	}
	var wo operand
	if whole != nil {
		if wo, err = b.dense(whole); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	var bindArr [5]vkrt.Access
	for e0 := int64(0); e0 < total; {
		e1 := total
		for _, o := range os {
			e1 = min(e1, b.lastFit(o, e0)+1)
		}
		binds := bindArr[:0]
		for i, o := range os {
			acc, s := b.bind(o.buf, o.at(e0), o.at(e1-1)+1, i == 0)
			binds = append(binds, acc)
			p.Off[i] = uint32(o.off - s)
			p.Stride[i] = uint32(o.stride)
		}
		if whole != nil {
			acc, off := b.bindAll(wo, false)
			binds = append(binds, acc)
			p.Off[len(os)] = off
		}
		p.Start, p.End = uint32(e0), uint32(e1)
		if err := b.dev.Dispatch(k, binds, pushBytes(&p), [3]uint32{b.groups(e1-e0, ewWorkGroup), 1, 1}, what); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		e0 = e1
	}
	return nil
}

// Fill implements ops.Backend.
func (b *Backend) Fill(dst *tensor.Tensor, v float32) error {
	return b.ew(shaders.ElementwiseFill, opFill, "fill", []*tensor.Tensor{dst}, nil, ewPush{Alpha: v})
}

// Copy implements ops.Backend.
func (b *Backend) Copy(dst, src *tensor.Tensor) error {
	if dst.Numel() != src.Numel() || dst.Rank() == 0 || src.Rank() == 0 || dst.Dim(0) != src.Dim(0) {
		return fmt.Errorf("copy: %v into %v", src.Shape(), dst.Shape())
	}
	return b.ew(shaders.ElementwiseUnary, opCopy, "copy", []*tensor.Tensor{dst, src}, nil, ewPush{Op: opCopy})
}

// Unary implements ops.Backend.
func (b *Backend) Unary(op ops.UnaryOp, dst, x *tensor.Tensor) error {
	var code uint32
	switch op {
	case ops.ReLU:
		code = opReLU
	case ops.Sigmoid:
		code = opSigmoid
	case ops.Abs:
		code = opAbs
	case ops.Neg:
		code = opNeg
	case ops.GELU:
		code = opGELU
	default:
		return fmt.Errorf("unary: unknown op %v", op)
	}
	return b.ew(shaders.ElementwiseUnary, code, op.String(), []*tensor.Tensor{dst, x}, nil, ewPush{Op: code})
}

// UnaryGrad implements ops.Backend: ReLU and Sigmoid read y, Abs and GELU read x, Neg neither.
func (b *Backend) UnaryGrad(op ops.UnaryOp, dst, gy, x, y *tensor.Tensor) error {
	what := op.String() + " grad"
	switch op {
	case ops.ReLU:
		return b.ew(shaders.ElementwiseBinary, opReLUGrad, what, []*tensor.Tensor{dst, gy, y}, nil, ewPush{Op: opReLUGrad})
	case ops.Sigmoid:
		return b.ew(shaders.ElementwiseBinary, opSigmoidGrad, what, []*tensor.Tensor{dst, gy, y}, nil, ewPush{Op: opSigmoidGrad})
	case ops.Abs:
		return b.ew(shaders.ElementwiseBinary, opAbsGrad, what, []*tensor.Tensor{dst, gy, x}, nil, ewPush{Op: opAbsGrad})
	case ops.Neg:
		return b.ew(shaders.ElementwiseUnary, opNeg, what, []*tensor.Tensor{dst, gy}, nil, ewPush{Op: opNeg})
	case ops.GELU:
		return b.ew(shaders.ElementwiseBinary, opGELUGrad, what, []*tensor.Tensor{dst, gy, x}, nil, ewPush{Op: opGELUGrad})
	}
	return fmt.Errorf("unary grad: unknown op %v", op)
}

// Binary implements ops.Backend.
func (b *Backend) Binary(op ops.BinaryOp, dst, x, y *tensor.Tensor) error {
	var code uint32
	switch op {
	case ops.Add:
		code = opAdd
	case ops.Sub:
		code = opSub
	case ops.Mul:
		code = opMul
	case ops.Div:
		code = opDiv
	default:
		return fmt.Errorf("binary: unknown op %v", op)
	}
	return b.ew(shaders.ElementwiseBinary, code, op.String(), []*tensor.Tensor{dst, x, y}, nil, ewPush{Op: code})
}

// Axpby implements ops.Backend; with beta 0 the shader does not read dst.
func (b *Backend) Axpby(dst, x *tensor.Tensor, alpha, beta float32) error {
	return b.ew(shaders.ElementwiseUnary, opAxpby, "axpby", []*tensor.Tensor{dst, x}, nil, ewPush{Op: opAxpby, Alpha: alpha, Beta: beta})
}

// Expand implements ops.Backend.
func (b *Backend) Expand(dst, src *tensor.Tensor, axes ops.Axes, scale float32) error {
	p := ewPush{Alpha: scale}
	switch axes {
	case ops.AxesAll:
		if src.Numel() != 1 {
			return fmt.Errorf("expand: source %v must have one element", src.Shape())
		}
		p.Op = opExpandAll
	case ops.AxesNHW, ops.AxesHW:
		if dst.Rank() != 4 {
			return fmt.Errorf("expand over %v: destination %v is not NCHW", axes, dst.Shape())
		}
		n, c, h, w := dst.Shape().NCHW()
		want := c
		p.Op = opExpandNHW
		if axes == ops.AxesHW {
			want, p.Op = n*c, opExpandHW
		}
		if src.Numel() != want {
			return fmt.Errorf("expand over %v: source %v does not match destination %v", axes, src.Shape(), dst.Shape())
		}
		p.HW, p.C = uint32(h*w), uint32(c)
	default:
		return fmt.Errorf("expand: unknown axes %v", axes)
	}
	return b.ew(shaders.ElementwiseUnary, p.Op, "expand", []*tensor.Tensor{dst}, src, p)
}

// BCEWithLogits implements ops.Backend.
func (b *Backend) BCEWithLogits(dst, x, target *tensor.Tensor) error {
	return b.ew(shaders.ElementwiseBinary, opBCE, "bce_with_logits", []*tensor.Tensor{dst, x, target}, nil, ewPush{Op: opBCE})
}

// BCEWithLogitsGrad implements ops.Backend.
func (b *Backend) BCEWithLogitsGrad(gx, gy, x, target *tensor.Tensor) error {
	return b.ew(shaders.ElementwiseTernary, opBCEGrad, "bce_with_logits grad", []*tensor.Tensor{gx, gy, x, target}, nil, ewPush{Op: opBCEGrad})
}
