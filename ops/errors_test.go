package ops_test

import (
	"strings"
	"testing"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/ops/cpu"
	"github.com/chnet/chnet/tensor"
)

// Bad shapes are errors naming the problem, recorded on the tape; nothing panics, and later ops
// on the failed tape do nothing.
func TestBadShapesAreErrors(t *testing.T) {
	b := cpu.New()
	z := func(shape ...int) *tensor.Tensor {
		x, err := ops.Zeros(b, shape...)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	for _, tc := range []struct {
		name string
		run  func(tp *ops.Tape) *tensor.Tensor
		want string
	}{
		{"conv channels", func(tp *ops.Tape) *tensor.Tensor {
			return tp.Conv2D(z(1, 3, 8, 8), z(4, 2, 3, 3), nil, ops.Conv2DParams{})
		}, "3 channels"},
		{"conv groups", func(tp *ops.Tape) *tensor.Tensor {
			return tp.Conv2D(z(1, 4, 8, 8), z(3, 2, 3, 3), nil, ops.Conv2DParams{Groups: 2})
		}, "divisible by groups"},
		{"conv bias", func(tp *ops.Tape) *tensor.Tensor {
			return tp.Conv2D(z(1, 3, 8, 8), z(4, 3, 3, 3), z(5), ops.Conv2DParams{})
		}, "bias"},
		{"conv too small", func(tp *ops.Tape) *tensor.Tensor {
			return tp.Conv2D(z(1, 3, 2, 2), z(4, 3, 5, 5), nil, ops.Conv2DParams{})
		}, "too small"},
		{"conv rank", func(tp *ops.Tape) *tensor.Tensor {
			return tp.Conv2D(z(3, 8, 8), z(4, 3, 3, 3), nil, ops.Conv2DParams{})
		}, "rank 4"},
		{"batch norm vectors", func(tp *ops.Tape) *tensor.Tensor {
			return tp.BatchNorm2D(z(2, 3, 4, 4), z(3), z(3), z(4), z(3), true, ops.DefaultBatchNorm)
		}, "running_mean"},
		{"batch norm one value", func(tp *ops.Tape) *tensor.Tensor {
			return tp.BatchNorm2D(z(1, 3, 1, 1), z(3), z(3), z(3), z(3), true, ops.DefaultBatchNorm)
		}, "more than one value"},
		{"concat sizes", func(tp *ops.Tape) *tensor.Tensor { return tp.Concat(z(1, 2, 4, 4), z(1, 2, 4, 5)) }, "only channels may differ"},
		{"split sizes", func(tp *ops.Tape) *tensor.Tensor {
			if p := tp.Split(z(1, 4, 2, 2), 1, 2); p != nil {
				return p[0]
			}
			return nil
		}, "sum to 3"},
		{"add shapes", func(tp *ops.Tape) *tensor.Tensor { return tp.Add(z(1, 2, 3, 3), z(1, 2, 3, 4)) }, "shapes differ"},
		{"resize to zero", func(tp *ops.Tape) *tensor.Tensor { return tp.ResizeBilinear(z(1, 1, 4, 4), 0, 3, false) }, "positive"},
		{"pool padding", func(tp *ops.Tape) *tensor.Tensor {
			return tp.MaxPool2D(z(1, 1, 8, 8), ops.PoolParams{Kernel: 2, Pad: 2})
		}, "half the kernel"},
		{"loss channels", func(tp *ops.Tape) *tensor.Tensor {
			return tp.StructureLoss(z(1, 2, 8, 8), z(1, 2, 8, 8), ops.StructureLossOfficial)
		}, "one channel"},
		{"loss mask shape", func(tp *ops.Tape) *tensor.Tensor {
			return tp.StructureLoss(z(1, 1, 8, 8), z(1, 1, 8, 9), ops.StructureLossOfficial)
		}, "shapes differ"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := ops.NewTape(b)
			defer tp.Release()
			y := tc.run(tp)
			if y != nil || tp.Err() == nil || !strings.Contains(tp.Err().Error(), tc.want) {
				t.Fatalf("got tensor %v, error %v; want nil and an error mentioning %q", y, tp.Err(), tc.want)
			}
			// The first error sticks: later ops do nothing and keep it.
			first := tp.Err()
			if tp.ReLU(z(1, 1, 2, 2)) != nil || tp.Err() != first {
				t.Fatal("an op after a failure ran or replaced the error")
			}
		})
	}
}

func TestZeroSizedShapesAreRefused(t *testing.T) {
	b := cpu.New()
	for _, s := range [][]int{{0, 3}, {2, 0, 4, 4}, {-1}} {
		if _, err := b.Alloc(s); err == nil {
			t.Errorf("Alloc(%v) succeeded", s)
		}
		if _, err := ops.FromHost(b, nil, s...); err == nil {
			t.Errorf("FromHost(%v) succeeded", s)
		}
	}
}

func TestBackwardNeedsAScalarThatDependsOnParameters(t *testing.T) {
	b := cpu.New()
	tp := ops.NewTape(b)
	x, _ := ops.Zeros(b, 1, 1, 2, 2)
	if err := tp.Backward(x); err == nil || !strings.Contains(err.Error(), "one-element") {
		t.Errorf("backward of a [1 1 2 2] tensor: %v", err)
	}
	one, _ := ops.Zeros(b, 1)
	if err := tp.Backward(one); err == nil || !strings.Contains(err.Error(), "trainable") {
		t.Errorf("backward of a constant: %v", err)
	}
}

// Scopes name where an error happened.
func TestErrorsCarryTheScope(t *testing.T) {
	b := cpu.New()
	tp := ops.NewTape(b)
	x, _ := ops.Zeros(b, 1, 3, 8, 8)
	w, _ := ops.Zeros(b, 4, 5, 1, 1)
	func() {
		defer tp.Scope("encode2")()
		defer tp.Scope("layer1.0")()
		tp.Conv2D(x, w, nil, ops.Conv2DParams{})
	}()
	if err := tp.Err(); err == nil || !strings.HasPrefix(err.Error(), "encode2.layer1.0: conv2d:") {
		t.Fatalf("error %v does not start with the scope", err)
	}
}
