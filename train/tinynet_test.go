package train

import (
	"io"
	"testing"

	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/ops/cpu"
	"github.com/chnet/chnet/tensor"
)

// tinyNet is conv 3→8 (3×3), batch norm, ReLU, conv 8→1 (1×1): every kind of state a real
// network has (weights, biases, running statistics, a counter) in a few hundred parameters, so
// tests of the training loop's bookkeeping run in milliseconds per step.
type tinyNet struct {
	conv1 *nn.Conv2d
	bn    *nn.BatchNorm2d
	conv2 *nn.Conv2d
}

func newTinyNet(in nn.Init) (*tinyNet, error) {
	c1, err := nn.NewConv2d(in, nn.Conv2dConfig{In: 3, Out: 8, Kernel: 3, Conv2DParams: ops.Conv2DParams{Pad: 1}})
	if err != nil {
		return nil, err
	}
	bn, err := nn.NewBatchNorm2d(in, 8)
	if err != nil {
		return nil, err
	}
	c2, err := nn.NewConv2d(in, nn.Conv2dConfig{In: 8, Out: 1, Kernel: 1, Bias: true})
	if err != nil {
		return nil, err
	}
	return &tinyNet{c1, bn, c2}, nil
}

func (m *tinyNet) Children() []nn.Child {
	return []nn.Child{{Name: "conv1", Module: m.conv1}, {Name: "bn", Module: m.bn}, {Name: "conv2", Module: m.conv2}}
}

func (m *tinyNet) Tensors() []nn.Entry { return nil }

func (m *tinyNet) Forward(t *ops.Tape, x *tensor.Tensor) *tensor.Tensor {
	return m.conv2.Forward(t, t.ReLU(m.bn.Forward(t, m.conv1.Forward(t, x))))
}

// newTinyTrainer is newTrainer with tinyNet on the CPU backend.
func newTinyTrainer(t testing.TB, dir string, data TrainData, epochs int) *Trainer {
	t.Helper()
	return newTinyTrainerOn(t, cpu.New(), dir, data, epochs)
}

func newTinyTrainerOn(t testing.TB, b ops.Backend, dir string, data TrainData, epochs int) *Trainer {
	t.Helper()
	m, err := newTinyNet(nn.Init{B: b, RNG: tensor.NewRNG(3, 0)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := OfficialConfig(epochs)
	cfg.LR = 0.01
	opt, err := NewSGD(b, m, ops.SGDParams{Momentum: float32(cfg.Momentum), WeightDecay: float32(cfg.WeightDecay), Nesterov: cfg.Nesterov})
	if err != nil {
		t.Fatal(err)
	}
	return &Trainer{B: b, Model: m, Opt: opt, Data: data, Cfg: cfg, Dir: dir, Log: io.Discard, Term: io.Discard}
}
