package cpu

import (
	"testing"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/ops/optest"
	"github.com/chnet/chnet/tensor"
)

func TestGolden(t *testing.T) { optest.Golden(t, New()) }

func TestGradCheck(t *testing.T) { optest.GradCheck(t, New()) }

func TestGoldenTransformer(t *testing.T) { optest.GoldenTransformer(t, New()) }

func TestGoldenSGD(t *testing.T) {
	b := New()
	optest.GoldenSGD(t, b, func(param, grad, momentum *tensor.Tensor, p ops.SGDParams) error {
		return ops.SGDStep(b, param, grad, momentum, p)
	})
}
