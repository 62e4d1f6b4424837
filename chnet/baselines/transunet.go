package baselines

import (
	"fmt"

	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// TransUNetConfig configures the TransUNet baseline; the defaults are R50-ViT-B/16's.
type TransUNetConfig struct {
	Backbone nn.Res2NetVariant
	// ImageSize sets the position-embedding grid, ImageSize/16 on a side (TransUNet's img_size).
	// Other input sizes resize the embedding bilinearly, as TransUNet's load_from zooms a
	// pretrained one to a new grid.
	ImageSize int
	// Hidden, Layers, Heads and MLPDim are the transformer's (ViT-B: 768, 12, 12, 3072).
	Hidden, Layers, Heads, MLPDim int
	// HeadChannels is conv_more's output (512); Widths the decoder_channels (256, 128, 64, 16).
	HeadChannels int
	Widths       [4]int
}

// DefaultTransUNet is TransUNet's R50-ViT-B/16 configuration with the Res2Net backbone in place
// of ResNet-50, for inputs of the given size (0 means 352, the training size).
func DefaultTransUNet(size int) TransUNetConfig {
	if size == 0 {
		size = 352
	}
	return TransUNetConfig{Backbone: nn.V1b, ImageSize: size, Hidden: 768, Layers: 12, Heads: 12, MLPDim: 3072,
		HeadChannels: 512, Widths: [4]int{256, 128, 64, 16}}
}

// TransUNet (Chen et al. 2021, Beckschen/TransUNet vit_seg_modeling.py) with the Res2Net-50
// backbone as its hybrid CNN: layer3's H/16 features are embedded by a 1x1 convolution
// (patch_embeddings; TransUNet's patch size at grid = img/16 is 1) into Hidden-wide tokens, plus
// learned position embeddings; Layers pre-LN ViT blocks (LayerNorm eps 1e-6, multi-head
// attention, LayerNorm, MLP with exact GELU) and a final LayerNorm; the tokens are reshaped to a
// map, conv_more (3x3 conv+BN+ReLU to 512) and the cascaded upsampler with skips from layer2,
// layer1 and the stem (skip_channels 512, 256, 64, exactly the Res2Net widths) and widths
// (256, 128, 64, 16); a 3x3 segmentation head gives one logit. Dropout (rate 0.1 in TransUNet's
// embeddings and MLP) is omitted: the engine has no dropout op.
//
// Counts (v1b, 256x256, as for UNet): 102.10 M parameters, 36.93 G thop multiply-adds (old
// 36.87; 38.02 G with attention's q·kᵀ and p·v products, which thop does not see). Table 5:
// 34.0 M, 24.7 G. The paper's Tables 1-4 name TransUNet's backbone "R-50 + ViT-B16", and ViT-B's
// 12 layers alone hold 85.1 M parameters, so 34.0 M cannot be a ViT-B TransUNet with any CNN.
// Each layer costs 7.09 M parameters and 1.81 G multiply-adds at 256 tokens, so no depth matches
// both figures (about 2.4 layers would match the parameters, about 5 the FLOPs). Layers is
// configurable; the default stays the method's. thop would also count TransUNet's nn.Softmax
// (0.03 G) and nn.UpsamplingBilinear2d modules (11 per output element, 0.09 G), which these
// counts treat as functional calls.
type TransUNet struct {
	Config    TransUNetConfig
	Backbone  *nn.Res2Net
	Embed     *embeddings
	Layers    []*vitBlock
	Norm      *nn.LayerNorm
	ConvMore  *convBNReLU
	Decoder   *cascade
	gridH, gw int
}

// NewTransUNet builds the TransUNet baseline.
func NewTransUNet(init nn.Init, cfg TransUNetConfig) (*TransUNet, error) {
	if cfg.ImageSize < 16 || cfg.Hidden < 1 || cfg.Layers < 0 || cfg.Heads < 1 || cfg.Hidden%cfg.Heads != 0 || cfg.MLPDim < 1 || cfg.HeadChannels < 1 {
		return nil, fmt.Errorf("transunet: invalid configuration %+v", cfg)
	}
	bb, err := newBackbone(init, cfg.Backbone)
	if err != nil {
		return nil, err
	}
	b := &builder{init: init}
	g := cfg.ImageSize / 16
	m := &TransUNet{Config: cfg, Backbone: bb, gridH: g, gw: g}
	pos, err := ops.Zeros(init.B, 1, g*g, cfg.Hidden) // TransUNet initialises it to zeros
	if err != nil {
		return nil, err
	}
	m.Embed = &embeddings{Patch: b.conv(layer3Channels, cfg.Hidden, 1, 1, 0, 1, true), Position: pos.SetRequiresGrad(true)}
	for i := 0; i < cfg.Layers && b.err == nil; i++ {
		blk, err := newViTBlock(init, cfg.Hidden, cfg.Heads, cfg.MLPDim)
		b.err = err
		m.Layers = append(m.Layers, blk)
	}
	if b.err == nil {
		m.Norm, b.err = nn.NewLayerNorm(init, cfg.Hidden, 1e-6)
	}
	m.ConvMore = b.convBNReLU(cfg.Hidden, cfg.HeadChannels, 3)
	m.Decoder = b.cascade(cfg.HeadChannels, cfg.Widths)
	if b.err != nil {
		return nil, b.err
	}
	return m, nil
}

// Forward returns logits [N 1 H W].
func (m *TransUNet) Forward(t *ops.Tape, x *tensor.Tensor) *tensor.Tensor {
	if !checkInput(t, "transunet", x) {
		return nil
	}
	f := features(t, m.Backbone, x)
	if f[3] == nil {
		return nil
	}
	n, h, w, d := x.Dim(0), f[3].Dim(2), f[3].Dim(3), m.Config.Hidden
	var tokens *tensor.Tensor
	func() {
		defer t.Scope("transformer.embeddings")()
		var emb *tensor.Tensor
		func() {
			defer t.Scope("patch_embeddings")()
			emb = m.Embed.Patch.Forward(t, f[3])
		}()
		// (B, hidden, h, w) → (B, h·w, hidden): flatten(2).transpose(-1, -2).
		tokens = t.Permute(t.Reshape(emb, n, d, h*w), 0, 2, 1)
		tokens = t.AddBroadcast(tokens, m.Embed.grid(t, m.gridH, m.gw, h, w))
	}()
	for i, blk := range m.Layers {
		func() {
			defer t.Scope(fmt.Sprintf("transformer.encoder.layer.%d", i))()
			tokens = blk.Forward(t, tokens)
		}()
	}
	var feat *tensor.Tensor
	func() {
		defer t.Scope("transformer.encoder.encoder_norm")()
		tokens = m.Norm.Forward(t, tokens)
		// DecoderCup: (B, n_patch, hidden) → (B, hidden, h, w).
		feat = t.Reshape(t.Permute(tokens, 0, 2, 1), n, d, h, w)
	}()
	func() {
		defer t.Scope("decoder.conv_more")()
		feat = m.ConvMore.Forward(t, feat)
	}()
	return m.Decoder.forward(t, feat, [3]*tensor.Tensor{f[2], f[1], f[0]}, x.Dim(2), x.Dim(3), nil)
}

// Res2Net returns the backbone.
func (m *TransUNet) Res2Net() *nn.Res2Net { return m.Backbone }

// Children implements nn.Module with TransUNet's names; the CNN is "backbone" (TransUNet's
// transformer.embeddings.hybrid_model) so every baseline loads ImageNet weights the same way.
func (m *TransUNet) Children() []nn.Child {
	layers := make(nn.Seq, len(m.Layers))
	for i, l := range m.Layers {
		layers[i] = nn.Child{Name: fmt.Sprint(i), Module: l}
	}
	transformer := nn.Seq{
		{Name: "embeddings", Module: m.Embed},
		{Name: "encoder", Module: nn.Seq{{Name: "layer", Module: layers}, {Name: "encoder_norm", Module: m.Norm}}},
	}
	cs := []nn.Child{{Name: "backbone", Module: m.Backbone}, {Name: "transformer", Module: transformer}}
	return append(cs, m.Decoder.children(nn.Child{Name: "conv_more", Module: m.ConvMore})...)
}

// Tensors implements nn.Module.
func (m *TransUNet) Tensors() []nn.Entry { return nil }

// embeddings is TransUNet's Embeddings: patch_embeddings and position_embeddings
// [1 n_patches hidden] for the gh x gw grid the model was built for.
type embeddings struct {
	Patch    *nn.Conv2d
	Position *tensor.Tensor
}

// grid returns the position embedding as [h·w hidden] for an h x w token grid, resized
// bilinearly (corners aligned, like the linear ndimage.zoom of TransUNet's load_from) when it
// differs from the gh x gw grid it was built for.
func (e *embeddings) grid(t *ops.Tape, gh, gw, h, w int) *tensor.Tensor {
	d := e.Position.Dim(2)
	if gh == h && gw == w {
		return t.Reshape(e.Position, h*w, d)
	}
	img := t.Permute(t.Reshape(e.Position, 1, gh, gw, d), 0, 3, 1, 2)
	return t.Reshape(t.Permute(t.ResizeBilinear(img, h, w, true), 0, 2, 3, 1), h*w, d)
}

func (e *embeddings) Children() []nn.Child {
	return []nn.Child{{Name: "patch_embeddings", Module: e.Patch}}
}

func (e *embeddings) Tensors() []nn.Entry {
	return []nn.Entry{{Name: "position_embeddings", Ptr: &e.Position, Kind: nn.Param}}
}

// vitBlock is TransUNet's Block: x + attn(attention_norm(x)), then + ffn(ffn_norm(x)).
type vitBlock struct {
	AttnNorm, FFNNorm *nn.LayerNorm
	FC1, FC2          *nn.Linear
	Attn              *nn.MultiHeadAttention
}

func newViTBlock(init nn.Init, hidden, heads, mlp int) (*vitBlock, error) {
	v := &vitBlock{}
	var err error
	if v.AttnNorm, err = nn.NewLayerNorm(init, hidden, 1e-6); err != nil {
		return nil, err
	}
	if v.FFNNorm, err = nn.NewLayerNorm(init, hidden, 1e-6); err != nil {
		return nil, err
	}
	// Mlp._init_weights: xavier-uniform weights, N(0, 1e-6²) biases.
	if v.FC1, err = nn.NewLinear(init, hidden, mlp, true, nn.LinearXavier); err != nil {
		return nil, err
	}
	if v.FC2, err = nn.NewLinear(init, mlp, hidden, true, nn.LinearXavier); err != nil {
		return nil, err
	}
	if v.Attn, err = nn.NewMultiHeadAttention(init, hidden, heads); err != nil {
		return nil, err
	}
	return v, nil
}

func (v *vitBlock) Forward(t *ops.Tape, x *tensor.Tensor) *tensor.Tensor {
	var a *tensor.Tensor
	func() {
		defer t.Scope("attn")()
		a = v.Attn.Forward(t, v.AttnNorm.Forward(t, x))
	}()
	x = t.Add(x, a)
	defer t.Scope("ffn")()
	return t.Add(x, v.FC2.Forward(t, t.GELU(v.FC1.Forward(t, v.FFNNorm.Forward(t, x)))))
}

func (v *vitBlock) Children() []nn.Child {
	return []nn.Child{
		{Name: "attention_norm", Module: v.AttnNorm}, {Name: "ffn_norm", Module: v.FFNNorm},
		{Name: "ffn", Module: nn.Seq{{Name: "fc1", Module: v.FC1}, {Name: "fc2", Module: v.FC2}}},
		{Name: "attn", Module: v.Attn},
	}
}

func (v *vitBlock) Tensors() []nn.Entry { return nil }
