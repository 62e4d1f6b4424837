package main

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/chnet/chnet/internal/vkrt"
	_ "github.com/chnet/chnet/ops/vk" // registers "vulkan"
	"github.com/urfave/cli/v2"
)

func devicesCommand() *cli.Command {
	return &cli.Command{
		Name:  "devices",
		Usage: "list the compute devices: the CPU and every Vulkan device with its capabilities",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "print every capability (limits, subgroups, extensions)"},
			&cli.BoolFlag{Name: "json", Usage: "print as JSON"},
		},
		Action: func(c *cli.Context) error {
			devs, err := vkrt.Devices()
			if c.Bool("json") {
				out := map[string]any{"cpu": map[string]any{"cores": runtime.NumCPU(), "arch": runtime.GOARCH}, "vulkan": devs}
				if err != nil {
					out["vulkan_error"] = err.Error()
				}
				return writeJSON(c.App.Writer, out)
			}
			w := c.App.Writer
			fmt.Fprintf(w, "cpu: %d cores (%s), always available (--backend cpu)\n", runtime.NumCPU(), runtime.GOARCH)
			if err != nil {
				if errors.Is(err, vkrt.ErrUnavailable) {
					fmt.Fprintf(w, "vulkan: no device (%v)\n", err)
					return nil
				}
				return deviceErr(err)
			}
			if len(devs) == 0 {
				fmt.Fprintln(w, "vulkan: the loader found no devices")
				return nil
			}
			best, _ := vkrt.Choose(devs, "")
			for _, d := range devs {
				mark := " "
				if d.Index == best.Index && best.Type != vkrt.CPU {
					mark = "*"
				}
				fmt.Fprintf(w, "%s vulkan %s\n", mark, d.Summary())
				fmt.Fprintf(w, "    mixed-precision GEMM: %s\n", d.Precision())
				if c.Bool("verbose") {
					fmt.Fprintln(w, d.Describe())
				}
			}
			if best.Type == vkrt.CPU {
				fmt.Fprintln(w, "--backend auto uses the CPU backend: the only Vulkan devices are software renderers (force one with --backend vulkan)")
			} else {
				fmt.Fprintln(w, "* = chosen by --backend auto; pick another with --device INDEX or a part of its name")
			}
			return nil
		},
	}
}
