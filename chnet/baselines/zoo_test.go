package baselines

import (
	"slices"
	"testing"

	"github.com/chnet/chnet/chnet/zoo"
	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops/cpu"
	"github.com/chnet/chnet/tensor"
)

// Linking this package makes every baseline buildable by name, with the backbone the spec asks for.
func TestRegisteredInZoo(t *testing.T) {
	for _, name := range []string{"unet", "attunet", "utnet", "transunet"} {
		if !slices.Contains(zoo.Archs(), name) {
			t.Errorf("%q is not registered (have %v)", name, zoo.Archs())
		}
	}
	m, err := zoo.Build(nn.Init{B: cpu.New(), RNG: tensor.NewRNG(0, 0)}, zoo.Spec{Arch: "unet", Backbone: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	if bb := zoo.Backbone(m); bb == nil || bb.Variant != nn.V1 {
		t.Errorf("zoo.Backbone of a v1 U-Net: %+v", bb)
	}
}
