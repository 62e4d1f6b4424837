package train

import (
	"errors"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/chnet/chnet/internal/vkrt"
	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/ops/cpu"
	"github.com/chnet/chnet/ops/optest"
	"github.com/chnet/chnet/ops/vk"
	"github.com/chnet/chnet/tensor"
)

// reference.md §1.2: for E = 50, e=0 → 0.00196, peak 0.0490 at e = 24 and 25, e=49 → 0.00196.
func TestTriangularLR(t *testing.T) {
	for _, tc := range []struct {
		e    int
		want float64
	}{{0, 0.05 * 2 / 51}, {24, 0.05 * 50 / 51}, {25, 0.05 * 50 / 51}, {49, 0.05 * 2 / 51}} {
		if got := TriangularLR(0.05, tc.e, 50); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("epoch %d: lr %v, want %v", tc.e, got, tc.want)
		}
	}
	if math.Abs(TriangularLR(0.05, 0, 50)-0.00196) > 1e-5 || math.Abs(TriangularLR(0.05, 24, 50)-0.0490) > 1e-4 {
		t.Error("schedule does not match the values quoted in reference.md")
	}
}

// oneParam is a module of one trainable tensor, w.
type oneParam struct{ w *tensor.Tensor }

func (m *oneParam) Children() []nn.Child { return nil }
func (m *oneParam) Tensors() []nn.Entry  { return []nn.Entry{{Name: "w", Ptr: &m.w, Kind: nn.Param}} }

// optimizerSGD puts the whole optimizer (flat buffers, the device-guarded update with a finite
// loss) under optest.GoldenSGD.
type optimizerSGD struct {
	b    ops.Backend
	m    *oneParam
	s    *SGD
	loss *tensor.Tensor
}

func openOptimizerSGD(b ops.Backend) func([]float32, []int, ops.SGDParams) (optest.SGDUnderTest, error) {
	return func(param0 []float32, shape []int, p ops.SGDParams) (optest.SGDUnderTest, error) {
		w, err := ops.FromHost(b, param0, shape...)
		if err != nil {
			return nil, err
		}
		m := &oneParam{w.SetRequiresGrad(true)}
		s, err := NewSGD(b, m, p)
		if err != nil {
			return nil, err
		}
		loss, err := ops.FromHost(b, []float32{0.5}, 1)
		if err != nil {
			return nil, err
		}
		return &optimizerSGD{b, m, s, loss}, nil
	}
}

func (o *optimizerSGD) Step(g *tensor.Tensor, p ops.SGDParams) error {
	// As the tape does: the gradient lands in the optimizer's slot for it.
	slot := o.s.GradSlots()[o.m.w]
	if err := o.b.Copy(slot, g); err != nil {
		return err
	}
	o.m.w.Grad = slot
	o.s.P = p
	return o.s.Step(o.loss)
}

func (o *optimizerSGD) Param() ([]float32, error) { return ops.ToHost(o.b, o.m.w) }

func (o *optimizerSGD) Momentum() ([]float32, error) {
	st, err := o.s.State()
	if err != nil {
		return nil, err
	}
	return st["w"].Data, nil
}

func (o *optimizerSGD) Close() { o.s.release(); o.b.Release(o.loss.Storage()) }

// TestSGDMatchesTorch: the optimizer as training uses it, against torch.optim.SGD, on the CPU
// and on Vulkan (lavapipe in CI).
func TestSGDMatchesTorch(t *testing.T) {
	t.Run("cpu", func(t *testing.T) { b := cpu.New(); optest.GoldenSGD(t, b, openOptimizerSGD(b)) })
	t.Run("vulkan", func(t *testing.T) {
		b, err := vk.Open(vkrt.Options{})
		if err != nil {
			if os.Getenv("CHNET_REQUIRE_VULKAN") != "1" && errors.Is(err, vkrt.ErrUnavailable) {
				t.Skipf("NO VULKAN DEVICE — this test checks nothing here (CHNET_REQUIRE_VULKAN=1 makes it fail): %v", err)
			}
			t.Fatal(err)
		}
		defer b.Close()
		optest.GoldenSGD(t, b, openOptimizerSGD(b))
	})
}

// The help said "peak 0.05" where a 4-epoch run peaks at 0.04 (issue 11, point 10): the log
// says what the schedule does for the run's own --epochs.
func TestDescribeSchedule(t *testing.T) {
	for _, tc := range []struct {
		epochs int
		want   string
	}{
		{2, "lr 0.03333 in every epoch"},
		{4, "lr 0.02 in epoch 1, rising linearly to 0.04 in epochs 2-3, falling to 0.02 in epoch 4"},
		{5, "lr 0.01667 in epoch 1, rising linearly to 0.05 in epoch 3, falling to 0.01667 in epoch 5"},
		{50, "lr 0.001961 in epoch 1, rising linearly to 0.04902 in epochs 25-26, falling to 0.001961 in epoch 50"},
	} {
		if got := DescribeSchedule(0.05, tc.epochs); !strings.HasPrefix(got, tc.want+" (") {
			t.Errorf("%d epochs: %q, want it to begin %q", tc.epochs, got, tc.want)
		}
	}
}
