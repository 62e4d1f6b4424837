// Package chnet is CHNet (Wei et al., PRCV 2023) as released in github.com/wei-hongbin/CHNet: a
// Res2Net-50 backbone through layer3 and a classification head over four multi-scale features,
// plus the paper's variants (backbone v1b, head width 128, 3x3 head convolutions) and its
// FCN-32s baseline.
package chnet

import (
	"fmt"

	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// Config selects a CHNet variant. The zero value is not valid; start from Released().
type Config struct {
	Backbone nn.Res2NetVariant `json:"backbone"`
	// HeadWidth is the classifier's hidden width: 32 in the released code, 128 in the paper.
	HeadWidth int `json:"head_width"`
	// HeadKernel is 1 (the paper's choice) or 3 (Table 6's ablation) for every head convolution.
	HeadKernel int `json:"head_kernel"`
	// Factorized computes the head's first classifier convolution before upsampling:
	// conv1x1(concat(up(t_i))) = Σ_i up(W_i·t_i) because bilinear resizing is linear and acts per
	// channel, so the 256-channel full-resolution concat never exists. Same function, far less
	// memory and work. Only for 1x1 heads.
	Factorized bool `json:"factorized"`
}

// Released is the configuration of the official code: Res2Net-50 v1, head width 32, 1x1 convs.
func Released() Config {
	return Config{Backbone: nn.V1, HeadWidth: 32, HeadKernel: 1, Factorized: true}
}

// Validate checks a configuration.
func (c Config) Validate() error {
	if c.Backbone != nn.V1 && c.Backbone != nn.V1b {
		return fmt.Errorf("chnet: backbone %q must be v1 or v1b", c.Backbone)
	}
	if c.HeadWidth < 1 {
		return fmt.Errorf("chnet: head width must be positive, got %d", c.HeadWidth)
	}
	if c.HeadKernel != 1 && c.HeadKernel != 3 {
		return fmt.Errorf("chnet: head kernel must be 1 or 3, got %d", c.HeadKernel)
	}
	if c.Factorized && c.HeadKernel != 1 {
		return fmt.Errorf("chnet: the factorized head needs 1x1 convolutions")
	}
	return nil
}

// featureChannels are the channels of the stem, layer1, layer2 and layer3 outputs.
var featureChannels = [4]int{64, 256, 512, 1024}

// Model is CHNet. Its state-dict names are the official ones: encode1.0 (stem convolution),
// encode1.1 (bn1), encode2.1 (layer1), encode3 (layer2), encode4 (layer3), tf1..tf4, classifier.
type Model struct {
	Config   Config
	Backbone *nn.Res2Net
	TF       [4]*nn.Conv2d
	Cls0     *nn.Conv2d
	ClsBN    *nn.BatchNorm2d
	Cls3     *nn.Conv2d
}

// New builds a CHNet with the official initialisation: Res2Net's for the backbone (to be
// replaced by ImageNet weights when available), PyTorch's defaults for the head.
func New(init nn.Init, cfg Config) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	bb, err := nn.NewRes2Net(init, nn.Res2NetConfig{Variant: cfg.Backbone, Stages: 3})
	if err != nil {
		return nil, err
	}
	m := &Model{Config: cfg, Backbone: bb}
	k, pad := cfg.HeadKernel, cfg.HeadKernel/2
	conv := func(in, out int) (*nn.Conv2d, error) {
		return nn.NewConv2d(init, nn.Conv2dConfig{In: in, Out: out, Kernel: k, Conv2DParams: ops.Conv2DParams{Pad: pad}, Bias: true})
	}
	for i, c := range featureChannels {
		if m.TF[i], err = conv(c, 64); err != nil {
			return nil, err
		}
	}
	if m.Cls0, err = conv(256, cfg.HeadWidth); err != nil {
		return nil, err
	}
	if m.ClsBN, err = nn.NewBatchNorm2d(init, cfg.HeadWidth); err != nil {
		return nil, err
	}
	if m.Cls3, err = conv(cfg.HeadWidth, 1); err != nil {
		return nil, err
	}
	return m, nil
}

// Features returns the four backbone features the head reads: the stem before max pooling
// (64 ch, H/2) and layers 1-3 (256 ch H/4, 512 ch H/8, 1024 ch H/16).
func (m *Model) Features(t *ops.Tape, x *tensor.Tensor) [4]*tensor.Tensor {
	var f [4]*tensor.Tensor
	func() {
		defer t.Scope("encode1")()
		f[0] = m.Backbone.StemForward(t, x)
	}()
	y := nn.MaxPool(t, f[0])
	for i := 0; i < 3; i++ {
		func() {
			defer t.Scope(fmt.Sprintf("encode%d", i+2))()
			y = m.Backbone.LayerForward(t, i, y)
		}()
		f[i+1] = y
	}
	return f
}

// Forward returns the logits [N 1 H W] at the input's resolution (no sigmoid).
func (m *Model) Forward(t *ops.Tape, x *tensor.Tensor) *tensor.Tensor {
	if t.Err() != nil || x == nil {
		return nil
	}
	if x.Rank() != 4 || x.Dim(1) != 3 {
		t.Fail(fmt.Errorf("chnet: input must be [N 3 H W], got %v", x.Shape()))
		return nil
	}
	if x.Dim(2) < 32 || x.Dim(3) < 32 {
		t.Fail(fmt.Errorf("chnet: input %dx%d is smaller than the network's 32-pixel stride", x.Dim(2), x.Dim(3)))
		return nil
	}
	return m.Head(t, m.Features(t, x), x.Dim(2), x.Dim(3))
}

// Head maps the four features to logits at h x w.
func (m *Model) Head(t *ops.Tape, f [4]*tensor.Tensor, h, w int) *tensor.Tensor {
	var hidden *tensor.Tensor // the classifier's first convolution, after its ReLU
	if m.Config.Factorized {
		hidden = m.factorizedHidden(t, f, h, w)
	} else {
		up := make([]*tensor.Tensor, 4)
		for i := range f {
			func() {
				defer t.Scope(fmt.Sprintf("tf%d", i+1))()
				up[i] = t.ResizeBilinear(m.TF[i].Forward(t, f[i]), h, w, false)
			}()
		}
		func() {
			defer t.Scope("classifier.0")()
			hidden = t.ReLU(m.Cls0.Forward(t, t.Concat(up...)))
		}()
	}
	defer t.Scope("classifier")()
	// In inference the batch norm folds into the 1x1 classifier (nn.BNConv).
	return nn.BNConv(t, m.ClsBN, m.Cls3, hidden)
}

// factorizedHidden computes relu(classifier.0(concat(up(tf_i(f_i))))) as
// relu(Σ_i up(W_i·tf_i(f_i)) + b), with W_i the classifier weight's columns for feature i, the
// sum of upsampled maps and the ReLU in one op (Tape.ResizeSum). The bias goes into the first
// low-resolution convolution: bilinear weights sum to one, so up(z + b) = up(z) + b.
func (m *Model) factorizedHidden(t *ops.Tape, f [4]*tensor.Tensor, h, w int) *tensor.Tensor {
	defer t.Scope("classifier.0")()
	ws := t.Split(m.Cls0.Weight, 64, 64, 64, 64)
	if ws == nil {
		return nil
	}
	zs := make([]*tensor.Tensor, len(f))
	for i := range f {
		var bias *tensor.Tensor
		if i == 0 {
			bias = m.Cls0.Bias
		}
		// The convolution reads (and its gradient writes) the weight's column block in place.
		zs[i] = t.Conv2D(m.TF[i].Forward(t, f[i]), ws[i], bias, m.Cls0.P)
	}
	return t.ResizeSum(zs, h, w, false, true)
}

// Children implements nn.Module with the official key names.
func (m *Model) Children() []nn.Child {
	return append(encodeChildren(m.Backbone),
		nn.Child{Name: "tf1", Module: m.TF[0]}, nn.Child{Name: "tf2", Module: m.TF[1]},
		nn.Child{Name: "tf3", Module: m.TF[2]}, nn.Child{Name: "tf4", Module: m.TF[3]},
		nn.Child{Name: "classifier", Module: nn.Seq{{Name: "0", Module: m.Cls0}, {Name: "2", Module: m.ClsBN}, {Name: "3", Module: m.Cls3}}},
	)
}

// encodeChildren names a backbone's parts as the official code does: CHNet splits Res2Net's
// children() into encode1 = (conv1, bn1, relu), encode2 = (maxpool, layer1), encode3 = layer2,
// encode4 = layer3.
func encodeChildren(bb *nn.Res2Net) []nn.Child {
	return []nn.Child{
		{Name: "encode1", Module: nn.Seq{{Name: "0", Module: bb.StemChild()}, {Name: "1", Module: bb.BN1}}},
		{Name: "encode2", Module: nn.Seq{{Name: "1", Module: bb.LayerChild(0)}}},
		{Name: "encode3", Module: bb.LayerChild(1)},
		{Name: "encode4", Module: bb.LayerChild(2)},
	}
}

// Tensors implements nn.Module.
func (m *Model) Tensors() []nn.Entry { return nil }
