package chnet

import (
	"testing"

	"github.com/chnet/chnet/internal/golden"
	"github.com/chnet/chnet/nn"
)

// officialSeed0 reads the official CHNet state dict of shared/golden (torch zip container).
func officialSeed0(t *testing.T) *nn.State {
	t.Helper()
	st, err := nn.LoadPth(golden.Path(t, "golden/chnet_v1_seed0.pth"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}
