// Package baselines holds the paper's Table 5 baselines (Wei et al., PRCV 2023: U-Net,
// Attention U-Net, UTNet, TransUNet) rebuilt on the same Res2Net-50 backbone as CHNet, through
// layer3, so that, as in the paper's Section 4, only the decoder differs. Each is an
// nn.Segmenter (logits [N 1 H W] at the input resolution) with PyTorch-style state-dict names
// ("backbone.layer1.0.conv1.weight", "decoder.blocks.0.conv1.0.weight", …), trainable with
// train.Step, and registered in chnet/zoo as "unet", "attunet", "utnet" and "transunet".
//
// The paper gives no widths or depths. Each constructor's doc comment says which reference
// implementation its design follows, how it was attached to the Res2Net features (stem 64 ch at
// H/2, layer1 256 at H/4, layer2 512 at H/8, layer3 1024 at H/16), and how its parameter and
// operation counts compare with Table 5 (bench.CostModels prints them).
package baselines

import (
	"fmt"

	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// Skip channels of the Res2Net-50 features the decoders read, finest first: stem (before max
// pooling, H/2), layer1 (H/4), layer2 (H/8); and the deepest feature, layer3 (H/16).
const (
	stemChannels   = 64
	layer1Channels = 256
	layer2Channels = 512
	layer3Channels = 1024
)

// features runs the backbone under the "backbone" scope and returns stem, layer1, layer2 and
// layer3 outputs.
func features(t *ops.Tape, bb *nn.Res2Net, x *tensor.Tensor) [4]*tensor.Tensor {
	defer t.Scope("backbone")()
	f := bb.Features(t, x)
	var out [4]*tensor.Tensor
	if len(f) == 4 {
		copy(out[:], f)
	}
	return out
}

// checkInput validates a model's input [N 3 H W]; the backbone's stride is 32 (max pooling at
// H/4 is the last place an odd size could vanish), as for CHNet.
func checkInput(t *ops.Tape, model string, x *tensor.Tensor) bool {
	if t.Err() != nil || x == nil {
		return false
	}
	if x.Rank() != 4 || x.Dim(1) != 3 {
		t.Fail(fmt.Errorf("%s: input must be [N 3 H W], got %v", model, x.Shape()))
		return false
	}
	if x.Dim(2) < 32 || x.Dim(3) < 32 {
		t.Fail(fmt.Errorf("%s: input %dx%d is smaller than the backbone's 32-pixel stride", model, x.Dim(2), x.Dim(3)))
		return false
	}
	return true
}

// newBackbone builds Res2Net-50 through layer3.
func newBackbone(init nn.Init, v nn.Res2NetVariant) (*nn.Res2Net, error) {
	if v == "" {
		v = nn.V1b
	}
	return nn.NewRes2Net(init, nn.Res2NetConfig{Variant: v, Stages: 3})
}

// builder creates modules with a sticky error, so constructors read as lists of layers.
type builder struct {
	init nn.Init
	err  error
}

func (b *builder) conv(in, out, k, stride, pad, groups int, bias bool) *nn.Conv2d {
	if b.err != nil {
		return nil
	}
	c, err := nn.NewConv2d(b.init, nn.Conv2dConfig{In: in, Out: out, Kernel: k, Conv2DParams: ops.Conv2DParams{Stride: stride, Pad: pad, Groups: groups}, Bias: bias})
	b.err = err
	return c
}

func (b *builder) bn(c int) *nn.BatchNorm2d {
	if b.err != nil {
		return nil
	}
	m, err := nn.NewBatchNorm2d(b.init, c)
	b.err = err
	return m
}

// convBNReLU is conv → BatchNorm → ReLU, TransUNet's Conv2dReLU and Oktay's UnetConv blocks: a
// Sequential whose state-dict children are "0" (conv) and "1" (bn). The convolution has no bias
// because the normalisation that follows cancels it (TransUNet: bias=not use_batchnorm).
type convBNReLU struct {
	Conv *nn.Conv2d
	BN   *nn.BatchNorm2d
}

func (b *builder) convBNReLU(in, out, k int) *convBNReLU {
	return &convBNReLU{Conv: b.conv(in, out, k, 1, k/2, 1, false), BN: b.bn(out)}
}

func (c *convBNReLU) Forward(t *ops.Tape, x *tensor.Tensor) *tensor.Tensor {
	return t.ReLU(c.BN.Forward(t, c.Conv.Forward(t, x)))
}

func (c *convBNReLU) Children() []nn.Child {
	return []nn.Child{{Name: "0", Module: c.Conv}, {Name: "1", Module: c.BN}}
}

func (c *convBNReLU) Tensors() []nn.Entry { return nil }

// decoderBlock is TransUNet's DecoderBlock, the U-Net decoder stage: bilinear upsampling of the
// deeper feature (align_corners=True, as nn.UpsamplingBilinear2d), concatenation with the skip,
// then two 3x3 conv+BN+ReLU ("conv1", "conv2").
type decoderBlock struct {
	Conv1, Conv2 *convBNReLU
	// SkipFirst concatenates [skip, upsampled] (Oktay's UnetUp) instead of [upsampled, skip]
	// (TransUNet); it only permutes conv1's input channels.
	SkipFirst bool
}

func (b *builder) decoderBlock(in, skip, out int) *decoderBlock {
	return &decoderBlock{Conv1: b.convBNReLU(in+skip, out, 3), Conv2: b.convBNReLU(out, out, 3)}
}

// Forward upsamples x to h x w (the skip's size: twice x's when the input is a multiple of 16,
// where it equals scale_factor=2) and joins the skip if there is one.
func (d *decoderBlock) Forward(t *ops.Tape, x, skip *tensor.Tensor, h, w int) *tensor.Tensor {
	x = t.ResizeBilinear(x, h, w, true)
	if skip != nil {
		if d.SkipFirst {
			x = t.Concat(skip, x)
		} else {
			x = t.Concat(x, skip)
		}
	}
	func() {
		defer t.Scope("conv1")()
		x = d.Conv1.Forward(t, x)
	}()
	defer t.Scope("conv2")()
	return d.Conv2.Forward(t, x)
}

func (d *decoderBlock) Children() []nn.Child {
	return []nn.Child{{Name: "conv1", Module: d.Conv1}, {Name: "conv2", Module: d.Conv2}}
}

func (d *decoderBlock) Tensors() []nn.Entry { return nil }

// cascade is the cascaded upsampler shared by U-Net, Attention U-Net and TransUNet: four decoder
// blocks, the first three joining the layer2, layer1 and stem skips, the last (full resolution)
// without a skip, then a 3x3 convolution to one logit ("segmentation_head.0").
type cascade struct {
	Blocks [4]*decoderBlock
	Head   *nn.Conv2d
}

// newCascade builds the blocks from in channels through widths (TransUNet's decoder_channels).
func (b *builder) cascade(in int, widths [4]int) *cascade {
	c := &cascade{}
	skips := [4]int{layer2Channels, layer1Channels, stemChannels, 0}
	for i, w := range widths {
		if w < 1 && b.err == nil {
			b.err = fmt.Errorf("decoder width %d must be positive, got %d", i, w)
		}
		c.Blocks[i] = b.decoderBlock(in, skips[i], w)
		in = w
	}
	c.Head = b.conv(in, 1, 3, 1, 1, 1, true)
	return c
}

// forward runs the blocks with the given (possibly gated) skips; size is the input's h x w.
// gate, if not nil, replaces skip i by gate(i, skip, previous decoder output) first.
func (c *cascade) forward(t *ops.Tape, x *tensor.Tensor, skips [3]*tensor.Tensor, h, w int,
	gate func(i int, skip, g *tensor.Tensor) *tensor.Tensor) *tensor.Tensor {
	for i, blk := range c.Blocks {
		var skip *tensor.Tensor
		sh, sw := h, w
		if i < 3 {
			skip = skips[i]
			if skip == nil {
				return nil
			}
			sh, sw = skip.Dim(2), skip.Dim(3)
			if gate != nil {
				skip = gate(i, skip, x)
			}
		}
		func() {
			defer t.Scope(fmt.Sprintf("decoder.blocks.%d", i))()
			x = blk.Forward(t, x, skip, sh, sw)
		}()
	}
	defer t.Scope("segmentation_head.0")()
	return c.Head.Forward(t, x)
}

// children names the decoder and head as TransUNet does.
func (c *cascade) children(extra ...nn.Child) []nn.Child {
	blocks := make(nn.Seq, len(c.Blocks))
	for i, b := range c.Blocks {
		blocks[i] = nn.Child{Name: fmt.Sprint(i), Module: b}
	}
	dec := append(nn.Seq(extra), nn.Child{Name: "blocks", Module: blocks})
	return []nn.Child{{Name: "decoder", Module: dec}, {Name: "segmentation_head", Module: nn.Seq{{Name: "0", Module: c.Head}}}}
}
