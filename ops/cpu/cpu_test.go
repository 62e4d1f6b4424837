package cpu

import (
	"testing"

	"github.com/chnet/chnet/ops/optest"
)

func TestGolden(t *testing.T) { optest.Golden(t, New()) }

func TestGradCheck(t *testing.T) { optest.GradCheck(t, New()) }

func TestGoldenTransformer(t *testing.T) { optest.GoldenTransformer(t, New()) }

func TestGoldenSGD(t *testing.T) { b := New(); optest.GoldenSGD(t, b, optest.KernelSGD(b)) }

func TestConvActMatchesComposition(t *testing.T) { optest.CompareConvAct(t, New(), New()) }
