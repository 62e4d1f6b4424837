package baselines

import (
	"fmt"

	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// AttUNetConfig configures the Attention U-Net baseline.
type AttUNetConfig struct {
	Backbone nn.Res2NetVariant
	// Widths are the decoder stages' channels, as UNetConfig's.
	Widths [4]int
}

// DefaultAttUNet uses v1b and the U-Net baseline's decoder widths.
func DefaultAttUNet() AttUNetConfig {
	return AttUNetConfig{Backbone: nn.V1b, Widths: [4]int{256, 128, 64, 16}}
}

// AttUNet is Attention U-Net (Oktay et al. 2018) on the Res2Net features: the U-Net baseline's
// decoder with an additive attention gate on each skip before it is concatenated.
//
// Design, from the authors' code (ozan-oktay/Attention-Gated-Networks, GridAttentionBlock in
// "concatenation" mode inside MultiAttentionBlock): for skip x (C channels) and gating signal g,
// θ is a 2x2 stride-2 convolution of x to C channels (inter_size = in_size, as their networks
// set it), φ a 1x1 convolution of g, upsampled bilinearly to θ(x)'s size; α = σ(ψ(ReLU(θx + φg)))
// with ψ a 1x1 convolution to one channel, upsampled to x's size; the gated skip is
// W(α·x) (1x1 conv + BN) followed by combine_gates (1x1 conv + BN + ReLU). The deepest gate's
// signal is a 1x1 conv+BN+ReLU of layer3 ("gating", UnetGridGatingSignal); the others use the
// previous decoder stage's output, as their decoder does. Omitted: their deep-supervision heads
// (every baseline here has one output and the same loss).
//
// Counts (v1b, 256x256, as for UNet): 17.34 M parameters, 17.60 G thop multiply-adds (old
// 17.55). Table 5: 19.2 M, 9.7 G. The gating convolution and gates add 3.65 M parameters to the
// U-Net baseline (the paper's rows differ by 1.8 M), but gates can only add work to the same
// decoder: the paper's Attention U-Net needing fewer FLOPs than its U-Net (9.7 vs 17.5) implies a
// different, unstated decoder, so that gap is not closed here.
type AttUNet struct {
	Config   AttUNetConfig
	Backbone *nn.Res2Net
	Gating   *convBNReLU
	Gates    [3]*attentionGate
	Decoder  *cascade
}

// NewAttUNet builds the Attention U-Net baseline.
func NewAttUNet(init nn.Init, cfg AttUNetConfig) (*AttUNet, error) {
	bb, err := newBackbone(init, cfg.Backbone)
	if err != nil {
		return nil, err
	}
	b := &builder{init: init}
	m := &AttUNet{Config: cfg, Backbone: bb, Gating: b.convBNReLU(layer3Channels, layer3Channels, 1)}
	// Gate i sees skip i (layer2, layer1, stem) and the signal one level deeper: the gating
	// convolution of layer3 for the first, decoder stages 0 and 1 for the others.
	skips := [3]int{layer2Channels, layer1Channels, stemChannels}
	signals := [3]int{layer3Channels, cfg.Widths[0], cfg.Widths[1]}
	for i := range m.Gates {
		m.Gates[i] = b.attentionGate(skips[i], signals[i])
	}
	m.Decoder = b.cascade(layer3Channels, cfg.Widths)
	for _, blk := range m.Decoder.Blocks {
		if blk != nil {
			blk.SkipFirst = true // UnetUp3_CT concatenates [skip, upsampled]
		}
	}
	if b.err != nil {
		return nil, b.err
	}
	return m, nil
}

// Forward returns logits [N 1 H W].
func (m *AttUNet) Forward(t *ops.Tape, x *tensor.Tensor) *tensor.Tensor {
	if !checkInput(t, "attunet", x) {
		return nil
	}
	f := features(t, m.Backbone, x)
	var gating *tensor.Tensor
	func() {
		defer t.Scope("gating")()
		gating = m.Gating.Forward(t, f[3])
	}()
	gate := func(i int, skip, prev *tensor.Tensor) *tensor.Tensor {
		defer t.Scope(fmt.Sprintf("attentionblocks.%d", i))()
		g := prev
		if i == 0 {
			g = gating
		}
		return m.Gates[i].Forward(t, skip, g)
	}
	return m.Decoder.forward(t, f[3], [3]*tensor.Tensor{f[2], f[1], f[0]}, x.Dim(2), x.Dim(3), gate)
}

// Res2Net returns the backbone.
func (m *AttUNet) Res2Net() *nn.Res2Net { return m.Backbone }

// Children implements nn.Module.
func (m *AttUNet) Children() []nn.Child {
	gates := make(nn.Seq, len(m.Gates))
	for i, g := range m.Gates {
		gates[i] = nn.Child{Name: fmt.Sprint(i), Module: g}
	}
	cs := []nn.Child{{Name: "backbone", Module: m.Backbone}, {Name: "gating", Module: m.Gating}, {Name: "attentionblocks", Module: gates}}
	return append(cs, m.Decoder.children()...)
}

// Tensors implements nn.Module.
func (m *AttUNet) Tensors() []nn.Entry { return nil }

// attentionGate is one grid attention gate with its output transform and combine_gates layer.
type attentionGate struct {
	Theta, Phi, Psi *nn.Conv2d
	WConv           *nn.Conv2d
	WBN             *nn.BatchNorm2d
	Combine         *convBNReLU
}

func (b *builder) attentionGate(in, gating int) *attentionGate {
	inter := in
	return &attentionGate{
		Theta:   b.conv(in, inter, 2, 2, 0, 1, false),
		Phi:     b.conv(gating, inter, 1, 1, 0, 1, true),
		Psi:     b.conv(inter, 1, 1, 1, 0, 1, true),
		WConv:   b.conv(in, in, 1, 1, 0, 1, true),
		WBN:     b.bn(in),
		Combine: &convBNReLU{Conv: b.conv(in, in, 1, 1, 0, 1, true), BN: b.bn(in)},
	}
}

// Forward gates skip x [N C H W] with signal g; α is broadcast over the channels.
func (a *attentionGate) Forward(t *ops.Tape, x, g *tensor.Tensor) *tensor.Tensor {
	if x == nil || g == nil || t.Err() != nil {
		return nil
	}
	theta := a.Theta.Forward(t, x)
	if theta == nil {
		return nil
	}
	// F.upsample(mode="bilinear") defaults to align_corners=False in PyTorch ≥ 0.4.
	phi := t.ResizeBilinear(a.Phi.Forward(t, g), theta.Dim(2), theta.Dim(3), false)
	alpha := t.Sigmoid(a.Psi.Forward(t, t.ReLU(t.Add(theta, phi))))
	alpha = t.ResizeBilinear(alpha, x.Dim(2), x.Dim(3), false)
	// expand_as: C copies of the one-channel map (a copy, not arithmetic, like PyTorch's view).
	copies := make([]*tensor.Tensor, x.Dim(1))
	for i := range copies {
		copies[i] = alpha
	}
	y := t.Mul(t.Concat(copies...), x)
	var wy *tensor.Tensor
	func() {
		defer t.Scope("W")()
		wy = a.WBN.Forward(t, a.WConv.Forward(t, y))
	}()
	defer t.Scope("combine_gates")()
	return a.Combine.Forward(t, wy)
}

// Children implements nn.Module with Oktay's names (W is a Sequential of conv and BN).
func (a *attentionGate) Children() []nn.Child {
	return []nn.Child{
		{Name: "W", Module: nn.Seq{{Name: "0", Module: a.WConv}, {Name: "1", Module: a.WBN}}},
		{Name: "theta", Module: a.Theta}, {Name: "phi", Module: a.Phi}, {Name: "psi", Module: a.Psi},
		{Name: "combine_gates", Module: a.Combine},
	}
}

// Tensors implements nn.Module.
func (a *attentionGate) Tensors() []nn.Entry { return nil }
