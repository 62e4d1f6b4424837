package nn

import (
	"fmt"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// Res2Net is Res2Net-50 26w_4s (layers [3 4 6 3]) without its classifier, in either variant.
// Its state-dict names are those of the published ImageNet files (conv1, bn1, layer1…).
type Res2Net struct {
	Variant Res2NetVariant
	// Stem: v1 has Stem[0] only (7x7 s2); v1b has three 3x3 convolutions with StemBNs between.
	Stem    []*Conv2d
	StemBNs []*BatchNorm2d
	BN1     *BatchNorm2d
	Layers  [][]*Bottle2neck
}

// Res2NetConfig selects the variant and how many of the four stages to build.
type Res2NetConfig struct {
	Variant Res2NetVariant
	Stages  int // 3 for CHNet (through layer3), 4 for the full network
}

// NewRes2Net builds the backbone with the Res2Net constructors' initialisation
// (kaiming-normal fan-out convolutions, unit batch norms).
func NewRes2Net(init Init, cfg Res2NetConfig) (*Res2Net, error) {
	if cfg.Variant != V1 && cfg.Variant != V1b {
		return nil, fmt.Errorf("res2net: unknown variant %q (want v1 or v1b)", cfg.Variant)
	}
	if cfg.Stages < 1 || cfg.Stages > 4 {
		return nil, fmt.Errorf("res2net: stages must be 1..4, got %d", cfg.Stages)
	}
	r := &Res2Net{Variant: cfg.Variant}
	conv := func(in, out, k, stride, pad int) error {
		c, err := NewConv2d(init, Conv2dConfig{In: in, Out: out, Kernel: k, Conv2DParams: ops.Conv2DParams{Stride: stride, Pad: pad}, Init: KaimingFanOut})
		r.Stem = append(r.Stem, c)
		return err
	}
	bn := func(c int) error {
		b, err := NewBatchNorm2d(init, c)
		r.StemBNs = append(r.StemBNs, b)
		return err
	}
	var err error
	if cfg.Variant == V1 {
		err = conv(3, 64, 7, 2, 3)
	} else {
		for _, e := range []func() error{
			func() error { return conv(3, 32, 3, 2, 1) }, func() error { return bn(32) },
			func() error { return conv(32, 32, 3, 1, 1) }, func() error { return bn(32) },
			func() error { return conv(32, 64, 3, 1, 1) },
		} {
			if err = e(); err != nil {
				break
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if r.BN1, err = NewBatchNorm2d(init, 64); err != nil {
		return nil, err
	}
	in := 64
	for s, spec := range []struct{ planes, blocks, stride int }{{64, 3, 1}, {128, 4, 2}, {256, 6, 2}, {512, 3, 2}}[:cfg.Stages] {
		var layer []*Bottle2neck
		for i := 0; i < spec.blocks; i++ {
			stride := 1
			if i == 0 {
				stride = spec.stride
			}
			b, err := NewBottle2neck(init, in, spec.planes, stride, i == 0, cfg.Variant)
			if err != nil {
				return nil, fmt.Errorf("layer%d.%d: %w", s+1, i, err)
			}
			layer = append(layer, b)
			in = spec.planes * 4
		}
		r.Layers = append(r.Layers, layer)
	}
	return r, nil
}

// StemForward runs the stem up to its ReLU (before max pooling): CHNet's first feature, at H/2.
func (r *Res2Net) StemForward(t *ops.Tape, x *tensor.Tensor) *tensor.Tensor {
	defer t.Scope("stem")()
	// Each convolution is followed by a batch norm and a ReLU: StemBNs between, BN1 last.
	y := x
	for i, c := range r.Stem {
		bn := r.BN1
		if i < len(r.StemBNs) {
			bn = r.StemBNs[i]
		}
		y = ConvBN(t, c, bn, y, nil, true)
	}
	return y
}

// MaxPool is the stem's 3x3 stride-2 max pooling.
func MaxPool(t *ops.Tape, x *tensor.Tensor) *tensor.Tensor {
	return t.MaxPool2D(x, ops.PoolParams{Kernel: 3, Stride: 2, Pad: 1})
}

// LayerForward runs stage i (0-based: layer1 is 0).
func (r *Res2Net) LayerForward(t *ops.Tape, i int, x *tensor.Tensor) *tensor.Tensor {
	for j, b := range r.Layers[i] {
		done := t.Scope(fmt.Sprintf("layer%d.%d", i+1, j))
		x = b.Forward(t, x)
		done()
	}
	return x
}

// Features runs the backbone and returns the stem output (before max pooling) and every
// stage's output.
func (r *Res2Net) Features(t *ops.Tape, x *tensor.Tensor) []*tensor.Tensor {
	f := []*tensor.Tensor{r.StemForward(t, x)}
	y := MaxPool(t, f[0])
	for i := range r.Layers {
		y = r.LayerForward(t, i, y)
		f = append(f, y)
	}
	return f
}

// StemChild is the stem's first child as the state dict names it: a convolution (v1) or the
// Sequential of the deep stem (v1b, indices 0 1 3 4 6 with ReLUs between).
func (r *Res2Net) StemChild() Module {
	if r.Variant == V1 {
		return r.Stem[0]
	}
	return Seq{{"0", r.Stem[0]}, {"1", r.StemBNs[0]}, {"3", r.Stem[1]}, {"4", r.StemBNs[1]}, {"6", r.Stem[2]}}
}

// LayerChild is stage i as a state-dict container of its blocks.
func (r *Res2Net) LayerChild(i int) Module {
	s := make(Seq, len(r.Layers[i]))
	for j, b := range r.Layers[i] {
		s[j] = Child{fmt.Sprint(j), b}
	}
	return s
}

// Children implements Module with the ImageNet files' names.
func (r *Res2Net) Children() []Child {
	cs := []Child{{"conv1", r.StemChild()}, {"bn1", r.BN1}}
	for i := range r.Layers {
		cs = append(cs, Child{fmt.Sprintf("layer%d", i+1), r.LayerChild(i)})
	}
	return cs
}

// Tensors implements Module.
func (r *Res2Net) Tensors() []Entry { return nil }
