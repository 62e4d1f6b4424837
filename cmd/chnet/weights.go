package main

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/chnet/chnet/internal/regfile"
	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/train"
)

// loadStateFile reads model weights from a PyTorch .pth (official CHNet or ImageNet Res2Net) or a
// safetensors file (a chnet checkpoint or a converted state dict).
func loadStateFile(path string) (*nn.State, error) {
	if err := checkWeightFile(path); err != nil {
		return nil, err
	}
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

// checkWeightFile says what is wrong with a weight file's path before its format is guessed: a
// missing file (exit 66), or one that is not a regular file (a folder, a FIFO, /dev/zero: 65).
func checkWeightFile(path string) error {
	f, _, err := regfile.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return dataErr(err)
	}
	return f.Close()
}
