package nn

import (
	"fmt"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// Res2NetVariant selects the Res2Net-50 flavour (reference.md §2).
type Res2NetVariant string

const (
	// V1 is the original Res2Net-50 26w_4s: a single 7x7 stem convolution and strided 1x1
	// shortcut projections. CHNet's released code uses it.
	V1 Res2NetVariant = "v1"
	// V1b has a deep stem of three 3x3 convolutions and average-pooled shortcuts; PraNet and most
	// polyp networks use it.
	V1b Res2NetVariant = "v1b"
)

// Bottle2neck is Res2Net's block with scale 4: a 1x1 convolution to 4 groups of `width` channels,
// hierarchical 3x3 convolutions over three of them, and a 1x1 convolution back out.
type Bottle2neck struct {
	Conv1, Conv3 *Conv2d
	BN1, BN3     *BatchNorm2d
	Convs        [3]*Conv2d
	BNs          [3]*BatchNorm2d
	// Downsample projects the shortcut when the shape changes (nil: identity).
	DownConv *Conv2d
	DownBN   *BatchNorm2d
	// Stage blocks (the first of each layer) carry the stride, do not add the previous split's
	// output before each 3x3 convolution, and average-pool the last split.
	Stage   bool
	Stride  int
	Width   int
	Variant Res2NetVariant
}

// NewBottle2neck builds a block taking `in` channels to planes·4.
func NewBottle2neck(init Init, in, planes, stride int, stage bool, v Res2NetVariant) (*Bottle2neck, error) {
	width := planes * 26 / 64
	b := &Bottle2neck{Stage: stage, Stride: stride, Width: width, Variant: v}
	conv := func(in, out, k, stride, pad int) (*Conv2d, error) {
		return NewConv2d(init, Conv2dConfig{In: in, Out: out, Kernel: k, Conv2DParams: ops.Conv2DParams{Stride: stride, Pad: pad}, Init: KaimingFanOut})
	}
	var err error
	if b.Conv1, err = conv(in, 4*width, 1, 1, 0); err != nil {
		return nil, err
	}
	if b.BN1, err = NewBatchNorm2d(init, 4*width); err != nil {
		return nil, err
	}
	for i := range b.Convs {
		if b.Convs[i], err = conv(width, width, 3, stride, 1); err != nil {
			return nil, err
		}
		if b.BNs[i], err = NewBatchNorm2d(init, width); err != nil {
			return nil, err
		}
	}
	if b.Conv3, err = conv(4*width, 4*planes, 1, 1, 0); err != nil {
		return nil, err
	}
	if b.BN3, err = NewBatchNorm2d(init, 4*planes); err != nil {
		return nil, err
	}
	if stride != 1 || in != 4*planes {
		projStride := stride
		if v == V1b {
			projStride = 1 // v1b pools first, then projects
		}
		if b.DownConv, err = conv(in, 4*planes, 1, projStride, 0); err != nil {
			return nil, err
		}
		if b.DownBN, err = NewBatchNorm2d(init, 4*planes); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// Forward runs the block. In inference each convolution carries its batch norm, residual and
// ReLU (ConvBN); in training each convolution gathers its batch norm's statistics.
func (b *Bottle2neck) Forward(t *ops.Tape, x *tensor.Tensor) *tensor.Tensor {
	out := ConvBN(t, b.Conv1, b.BN1, x, nil, true)
	spx := t.Split(out, b.Width, b.Width, b.Width, b.Width)
	if spx == nil {
		return nil
	}
	parts := make([]*tensor.Tensor, 4)
	// Each branch writes its output straight into its slice of the concatenation.
	p := b.Convs[0].P.Norm()
	cat := t.NewConcatNHW(x.Dim(0), p.OutSize(x.Dim(2), 3), p.OutSize(x.Dim(3), 3), b.Width, b.Width, b.Width, b.Width)
	if b.Stage {
		// The branches are independent: all convolutions (and the pooled last split) first,
		// then the normalisations, so that on a GPU each group shares one barrier. Folded,
		// each branch is one op.
		var convs [3]*ops.ConvForBatchNorm
		for i := range convs {
			done := t.Scope(fmt.Sprintf("convs.%d", i))
			conv, bn, in := b.Convs[i], b.BNs[i], spx[i]
			if bn.Folds(t) {
				parts[i] = cat.Into(i, func() *tensor.Tensor { return ConvBN(t, conv, bn, in, nil, true) })
			} else {
				convs[i] = bn.Conv(t, conv, in, nil)
			}
			done()
		}
		// PyTorch's AvgPool2d default counts padding: border windows divide by 9.
		parts[3] = cat.Into(3, func() *tensor.Tensor {
			return t.AvgPool2D(spx[3], ops.PoolParams{Kernel: 3, Stride: b.Stride, Pad: 1, CountIncludePad: true})
		})
		for i, c := range convs {
			if parts[i] != nil {
				continue // folded
			}
			done := t.Scope(fmt.Sprintf("convs.%d", i))
			bn := b.BNs[i]
			parts[i] = cat.Into(i, func() *tensor.Tensor { return bn.Act(c, nil, true) })
			done()
		}
	} else {
		// The untouched last split is copied now, beside the first branch's convolution.
		cat.CopyEarly(3, spx[3])
		parts[3] = spx[3]
		var sp *tensor.Tensor
		for i := 0; i < 3; i++ {
			done := t.Scope(fmt.Sprintf("convs.%d", i))
			// The input: spx[0], then sp + spx[i], added by the training convolution as it
			// loads them.
			in, in2 := spx[i], (*tensor.Tensor)(nil)
			if i > 0 {
				in, in2 = sp, spx[i]
			}
			bn, conv := b.BNs[i], b.Convs[i]
			if bn.Folds(t) {
				if in2 != nil {
					in = t.Add(in, in2)
				}
				sp = cat.Into(i, func() *tensor.Tensor { return ConvBN(t, conv, bn, in, nil, true) })
			} else {
				sp = cat.Into(i, func() *tensor.Tensor { return bn.Act(bn.Conv(t, conv, in, in2), nil, true) })
			}
			parts[i] = sp
			done()
		}
	}
	out = t.Concat(parts...)
	// ReLU(BN3(conv3(out)) + residual) in one kernel: conv3's epilogue when folded, BN3's
	// otherwise. The shortcut must exist first.
	return ConvBN(t, b.Conv3, b.BN3, out, b.shortcut(t, x), true)
}

// shortcut is the block's residual branch: x, or its projection (downsample).
func (b *Bottle2neck) shortcut(t *ops.Tape, x *tensor.Tensor) *tensor.Tensor {
	if b.DownConv == nil {
		return x
	}
	defer t.Scope("downsample")()
	if b.Variant == V1b && b.Stride != 1 {
		x = t.AvgPool2D(x, ops.PoolParams{Kernel: b.Stride, Stride: b.Stride, CeilMode: true})
	}
	return ConvBN(t, b.DownConv, b.DownBN, x, nil, false)
}

// Children implements Module with the official Res2Net names.
func (b *Bottle2neck) Children() []Child {
	cs := []Child{
		{"conv1", b.Conv1}, {"bn1", b.BN1},
		{"convs", Seq{{"0", b.Convs[0]}, {"1", b.Convs[1]}, {"2", b.Convs[2]}}},
		{"bns", Seq{{"0", b.BNs[0]}, {"1", b.BNs[1]}, {"2", b.BNs[2]}}},
		{"conv3", b.Conv3}, {"bn3", b.BN3},
	}
	if b.DownConv != nil {
		if b.Variant == V1b {
			cs = append(cs, Child{"downsample", Seq{{"1", b.DownConv}, {"2", b.DownBN}}})
		} else {
			cs = append(cs, Child{"downsample", Seq{{"0", b.DownConv}, {"1", b.DownBN}}})
		}
	}
	return cs
}

// Tensors implements Module.
func (b *Bottle2neck) Tensors() []Entry { return nil }
