package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/train"
)

// loadStateFile reads model weights from a PyTorch .pth (official CHNet or ImageNet Res2Net) or a
// safetensors file (a chnet checkpoint or a converted state dict).
func loadStateFile(path string) (*nn.State, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".safetensors":
		ck, err := train.LoadStateDict(path)
		if err != nil {
			return nil, dataErr(err)
		}
		return ck, nil
	case ".pth", ".pt", ".tar", ".bin":
		st, err := nn.LoadPth(path)
		if err != nil {
			return nil, dataErr(err)
		}
		return st, nil
	}
	return nil, usageErr(fmt.Errorf("%s: unknown weight format (want .pth, .pt or .safetensors)", path))
}
