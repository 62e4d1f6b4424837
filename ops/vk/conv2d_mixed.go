package vk

import (
	"fmt"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/shaders"
	"github.com/chnet/chnet/tensor"
)

// Mixed-precision convolutions (issue 14): the fp32 convolutions' kernels, tiles and dispatch,
// with their fp16 operands in Half arrays (NCHW activations and gradients, OIHW weights) widened
// to fp32 as the kernels load them, and fp32 sums (conv2d.comp, conv2d_grad_input.comp,
// conv2d_grad_weight.comp HALF). Results are fp32 tensors, or for the forward and the input
// gradient also Half arrays (…ToHalf: rounded to nearest even as they are stored, the same bits
// as ToHalf of the fp32 result), since mixed training keeps activations in fp16. Biases and
// weight gradients stay fp32 (master weights). The scalar kernels run on any device with fp16
// storage. Where MatMulMixed uses tensor cores, so does Conv2DMixed (fp32 output only):
// matmul_mixed_coopmat.comp CONV, whose scalar-emulated twin the tests run on lavapipe; the
// gradients and fp16 outputs have no cooperative-matrix form yet.

// halfOperand is h as a batch-strided operand over its first dimension (images, or a weight's
// output channels). A Half binds whole (bindItems), so its offset is 0.
func halfOperand(h *Half) operand {
	n := int64(h.shape[0])
	inner := int64(h.Len()) / n
	return operand{buf: h.buf, stride: inner, n: n, inner: inner, half: true}
}

// mixedConvOperands checks a mixed convolution's device and shapes and resolves its operands:
// x (input-sized: input or input gradient), w (weight), y (output-sized), each either a Half or
// (where given) an fp32 tensor; names say which operand is which in errors.
func (b *Backend) mixedConvOperands(what string, x, w, y convArg, p ops.Conv2DParams) (convGeom, operand, operand, operand, error) {
	var g convGeom
	if b.MixedKernel() == "" {
		return g, operand{}, operand{}, operand{}, fmt.Errorf("%s: %s: %w", what, b.dev.Info.Name, ErrNoFP16)
	}
	var os [3]operand
	var shapes [3]tensor.Shape
	for i, a := range []convArg{x, w, y} {
		o, shape, err := b.resolve(what, a)
		if err != nil {
			return g, operand{}, operand{}, operand{}, err
		}
		os[i], shapes[i] = o, shape
	}
	g, err := newConvGeom(what, shapes[0], shapes[1], shapes[2], p)
	return g, os[0], os[1], os[2], err
}

// convArg is one operand of a mixed convolution: an fp16 array or an fp32 tensor.
type convArg struct {
	name string
	h    *Half
	t    *tensor.Tensor
	f32  bool // t, not h
}

// resolve checks one operand: 4-D, and a Half not freed.
func (b *Backend) resolve(what string, a convArg) (operand, tensor.Shape, error) {
	if !a.f32 {
		if a.h == nil || a.h.buf == nil {
			return operand{}, nil, fmt.Errorf("%s: %s: fp16 array is nil or freed", what, a.name)
		}
		if len(a.h.shape) != 4 {
			return operand{}, nil, fmt.Errorf("%s: %s: fp16 array %v must have 4 dimensions", what, a.name, a.h.shape)
		}
		return halfOperand(a.h), a.h.shape, nil
	}
	if a.t == nil {
		return operand{}, nil, fmt.Errorf("%s: %s: nil tensor", what, a.name)
	}
	if a.t.Rank() != 4 {
		return operand{}, nil, fmt.Errorf("%s: %s %v must have 4 dimensions", what, a.name, a.t.Shape())
	}
	o, err := b.operand(a.t)
	if err != nil {
		return o, nil, fmt.Errorf("%s: %s: %w", what, a.name, err)
	}
	return o, a.t.Shape(), nil
}

// Conv2DMixed computes dst (fp32, NCHW) = conv2d(x, w) + bias with x (NCHW) and w (OIHW) in
// fp16 and the sums in fp32; bias (fp32, O values) may be nil.
func (b *Backend) Conv2DMixed(dst *tensor.Tensor, x, w *Half, bias *tensor.Tensor, p ops.Conv2DParams) error {
	name := shaders.Conv2DMixed
	if b.MixedKernel() == shaders.MatmulMixedCoopmat {
		name = shaders.Conv2DMixedCoopmat
	}
	return b.conv2DMixedWith(dst, x, w, bias, p, name)
}

// conv2DMixedWith runs Conv2DMixed with the kernel name; tests also pass
// shaders.Conv2DMixedCoopmatEmulated.
func (b *Backend) conv2DMixedWith(dst *tensor.Tensor, x, w *Half, bias *tensor.Tensor, p ops.Conv2DParams, name string) error {
	name1x1 := shaders.Conv2DMixed1x1
	if name != shaders.Conv2DMixed {
		name1x1 = name // the tensor-core kernel has one form
	}
	return b.conv2DMixed("mixed conv2d", convArg{name: "output", t: dst, f32: true}, x, w, bias, p, name, name1x1)
}

// Conv2DMixedToHalf is Conv2DMixed with an fp16 output, rounded to nearest even.
func (b *Backend) Conv2DMixedToHalf(dst, x, w *Half, bias *tensor.Tensor, p ops.Conv2DParams) error {
	return b.conv2DMixed("mixed conv2d to fp16", convArg{name: "output", h: dst}, x, w, bias, p, shaders.Conv2DMixedToHalf, shaders.Conv2DMixedToHalf1x1)
}

func (b *Backend) conv2DMixed(what string, y convArg, x, w *Half, bias *tensor.Tensor, p ops.Conv2DParams, name, name1x1 string) error {
	g, xo, wo, yo, err := b.mixedConvOperands(what, convArg{name: "input", h: x}, convArg{name: "weight", h: w}, y, p)
	if err != nil {
		return err
	}
	if name == shaders.Conv2DMixedCoopmat || name == shaders.Conv2DMixedCoopmatEmulated {
		return b.conv2DCoopmat(what, name, g, xo, wo, yo, bias)
	}
	return b.conv2DForward(what, name, name1x1, g, xo, wo, yo, bias)
}

// coopmatTile is matmul_mixed_coopmat.comp's fixed block: 128×128 outputs, K steps of 32, 256
// invocations (its own mapping; dispatchImages reads only bm and bn).
var coopmatTile = tile{bm: 128, bn: 128, bk: 32, tm: 8, tn: 8}

// conv2DCoopmat runs the forward convolution on the tensor-core kernel (or its emulation):
// conv2d's bindings, push block and dispatch, the kernel's own tile; specialization constants
// 6–8 are the kernel size and stride (conv_push.glsl).
func (b *Backend) conv2DCoopmat(what, name string, g convGeom, xo, wo, yo operand, bias *tensor.Tensor) error {
	push, _, wa, ba, err := b.forwardSetup(what, g, wo, bias)
	if err != nil {
		return err
	}
	spec := make([]uint32, 9)
	spec[6], spec[7], spec[8] = uint32(g.kh), uint32(g.kw), uint32(g.p.Stride)
	k, err := b.kernel(name, spec...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return b.dispatchImages(what, k, &push, g, coopmatTile, xo, yo, false, wa, ba)
}

// Conv2DGradInputMixed computes the input gradient dst (fp32, NCHW) of a convolution with
// weight w from the output gradient gy, both fp16, summing in fp32.
func (b *Backend) Conv2DGradInputMixed(dst *tensor.Tensor, gy, w *Half, p ops.Conv2DParams) error {
	return b.conv2DGradInputMixed("mixed conv2d grad input", convArg{name: "input gradient", t: dst, f32: true}, gy, w, p, shaders.Conv2DGradInputMixed, shaders.Conv2DGradInputMixed1x1)
}

// Conv2DGradInputMixedToHalf is Conv2DGradInputMixed with an fp16 result, rounded to nearest
// even.
func (b *Backend) Conv2DGradInputMixedToHalf(dst, gy, w *Half, p ops.Conv2DParams) error {
	return b.conv2DGradInputMixed("mixed conv2d grad input to fp16", convArg{name: "input gradient", h: dst}, gy, w, p, shaders.Conv2DGradInputMixedToHalf, shaders.Conv2DGradInputMixedToHalf1x1)
}

func (b *Backend) conv2DGradInputMixed(what string, x convArg, gy, w *Half, p ops.Conv2DParams, name, name1x1 string) error {
	g, xo, wo, yo, err := b.mixedConvOperands(what, x, convArg{name: "weight", h: w}, convArg{name: "output gradient", h: gy}, p)
	if err != nil {
		return err
	}
	return b.gradInputRun(what, name, name1x1, g, xo, wo, yo, false)
}

// Conv2DGradWeightMixed computes the weight gradient dst (fp32, OIHW; its output rows may be
// strided, as for Conv2DGradWeight) of a convolution of x from the output gradient gy, both
// fp16, summing in fp32 (split-K as the fp32 kernel, partials in fp32).
func (b *Backend) Conv2DGradWeightMixed(dst *tensor.Tensor, x, gy *Half, p ops.Conv2DParams) error {
	const what = "mixed conv2d grad weight"
	g, xo, do, yo, err := b.mixedConvOperands(what, convArg{name: "input", h: x}, convArg{name: "weight gradient", t: dst, f32: true}, convArg{name: "output gradient", h: gy}, p)
	if err != nil {
		return err
	}
	return b.gradWeightRun(what, shaders.Conv2DGradWeightMixed, shaders.Conv2DGradWeightMixed1x1, dst, g, xo, nil, yo, do)
}
