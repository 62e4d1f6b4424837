package baselines

import (
	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// UNetConfig configures the U-Net baseline.
type UNetConfig struct {
	// Backbone is the Res2Net-50 variant; Table 5's backbone row is v1b (reference.md §5).
	Backbone nn.Res2NetVariant
	// Widths are the four decoder stages' channels, at H/8, H/4, H/2 and H.
	Widths [4]int
}

// DefaultUNet is the configuration Table 5 is compared with: v1b and TransUNet's decoder widths.
func DefaultUNet() UNetConfig { return UNetConfig{Backbone: nn.V1b, Widths: [4]int{256, 128, 64, 16}} }

// UNet is U-Net's decoder (Ronneberger et al. 2015) on the Res2Net features: at each of H/8, H/4
// and H/2 the deeper map is bilinearly upsampled, concatenated with the encoder's skip (layer2,
// layer1, stem) and passed through two 3x3 conv+BN+ReLU; a fourth stage reaches full resolution
// (the backbone has no H/1 feature to join), and a 3x3 convolution gives the logit.
//
// Design: the stages are TransUNet's DecoderBlocks with its decoder_channels (256, 128, 64, 16),
// the usual U-Net decoder on a pretrained ResNet encoder (segmentation_models_pytorch's Unet uses
// the same 256→128→64 ladder). So U-Net here is TransUNet without its transformer, Attention
// U-Net is this decoder with gates, and the models differ only where their methods do. The
// classic alternative, decoder widths equal to the skip widths (Widths 512, 256, 64, 16), gives
// 20.70 M parameters and 28.56 G thop multiply-adds at 256x256, further from Table 5.
//
// Counts (bench.CostModels, v1b, 256x256; "thop" = thop 0.1.1 rules, old = pre-2022 rules):
// 13.70 M parameters (decoder 5.03 M), 15.26 G thop multiply-adds (old 15.22). Table 5: 17.4 M,
// 17.5 G. The paper says U-Net's decoder has about as many parameters as the backbone (8.7 M);
// the paper gives no widths, so the remaining 3.7 M gap is reported, not tuned away.
type UNet struct {
	Config   UNetConfig
	Backbone *nn.Res2Net
	Decoder  *cascade
}

// NewUNet builds the U-Net baseline.
func NewUNet(init nn.Init, cfg UNetConfig) (*UNet, error) {
	bb, err := newBackbone(init, cfg.Backbone)
	if err != nil {
		return nil, err
	}
	b := &builder{init: init}
	m := &UNet{Config: cfg, Backbone: bb, Decoder: b.cascade(layer3Channels, cfg.Widths)}
	if b.err != nil {
		return nil, b.err
	}
	return m, nil
}

// Forward returns logits [N 1 H W].
func (m *UNet) Forward(t *ops.Tape, x *tensor.Tensor) *tensor.Tensor {
	if !checkInput(t, "unet", x) {
		return nil
	}
	f := features(t, m.Backbone, x)
	return m.Decoder.forward(t, f[3], [3]*tensor.Tensor{f[2], f[1], f[0]}, x.Dim(2), x.Dim(3), nil)
}

// Res2Net returns the backbone (chnet/zoo uses it to freeze or reload the encoder).
func (m *UNet) Res2Net() *nn.Res2Net { return m.Backbone }

// Children implements nn.Module.
func (m *UNet) Children() []nn.Child {
	return append([]nn.Child{{Name: "backbone", Module: m.Backbone}}, m.Decoder.children()...)
}

// Tensors implements nn.Module.
func (m *UNet) Tensors() []nn.Entry { return nil }
