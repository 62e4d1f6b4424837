package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/chnet/chnet/chnet/zoo"
	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
	"github.com/chnet/chnet/train"
	"github.com/urfave/cli/v2"
)

func convertCommand() *cli.Command {
	return &cli.Command{
		Name:      "convert",
		Usage:     "convert a PyTorch .pth (official CHNet or ImageNet Res2Net) to chnet's safetensors format",
		ArgsUsage: "[flags] IN.pth",
		Description: `Reads the .pth without executing anything (only tensor-rebuilding pickle globals are
accepted), checks every tensor, and writes a safetensors file atomically. A CHNet state dict
becomes a chnet checkpoint (usable by test and predict; its network options come from the
model flags and are checked against the tensors). Any other state dict, such as ImageNet
Res2Net weights for --backbone-weights, is written as a plain state dict.`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "output file (default: IN with .safetensors)"},
			&cli.BoolFlag{Name: "half", Usage: "store weights as float16 (half the size; for inference only)"},
		}, modelFlags()...),
		Action: func(c *cli.Context) error {
			if err := flagsAfterArgs(c); err != nil {
				return err
			}
			if c.NArg() != 1 {
				return usageErr(fmt.Errorf("convert takes one .pth file, got %d arguments", c.NArg()))
			}
			in := c.Args().First()
			out := c.String("out")
			if out == "" {
				out = strings.TrimSuffix(in, filepath.Ext(in)) + ".safetensors"
			}
			if filepath.Clean(out) == filepath.Clean(in) {
				return usagef("--out", "would overwrite the input %s", in)
			}
			st, err := loadStateFile(in)
			if err != nil {
				return err
			}
			ck := &train.Checkpoint{Model: st}
			kind := "state dict"
			if isCHNetState(st) {
				spec, err := modelSpec(c)
				if err != nil {
					return err
				}
				// Building the network and loading into it checks every name and shape.
				b, _ := ops.Open("cpu", "")
				m, err := zoo.Build(nn.Init{B: b, RNG: tensor.NewRNG(0, 0)}, spec)
				if err != nil {
					return err
				}
				if _, err := nn.LoadState(b, m, st, nn.LoadOptions{Rename: trimModule}); err != nil {
					return dataErr(fmt.Errorf("%s does not match %s with the given --backbone/--head-* options: %w", in, spec.Arch, err))
				}
				if ck.Model, err = nn.StateOf(b, m); err != nil {
					return err
				}
				if ck.ModelConfig, err = json.Marshal(spec); err != nil {
					return err
				}
				kind = "CHNet checkpoint"
			}
			if err := train.SaveCheckpoint(out, ck, c.Bool("half")); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "%s: %d tensors, %d counters → %s (%s)\n", in, len(st.Tensors), len(st.Counters), out, kind)
			return nil
		},
	}
}

// isCHNetState reports whether a state uses CHNet's own names.
func isCHNetState(st *nn.State) bool {
	for k := range st.Tensors {
		k = trimModule(k)
		if strings.HasPrefix(k, "tf1.") || strings.HasPrefix(k, "classifier.") {
			return true
		}
	}
	return false
}
