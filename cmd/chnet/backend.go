package main

import (
	"fmt"
	"slices"

	"github.com/chnet/chnet/internal/vkrt"
	"github.com/chnet/chnet/ops"
	_ "github.com/chnet/chnet/ops/cpu" // registers "cpu"
	"github.com/urfave/cli/v2"
)

func backendFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "backend", Value: "auto", EnvVars: []string{"CHNET_BACKEND"}, Category: "device",
			Usage: "compute backend: auto (Vulkan if a device is found, else CPU), cpu, or vulkan"},
		&cli.StringFlag{Name: "device", EnvVars: []string{"CHNET_DEVICE"}, Category: "device",
			Usage: "Vulkan device: an index from 'chnet devices' or part of its name (default: the best one)"},
	}
}

// openBackend opens the backend chosen by the global flags. With "auto" a missing Vulkan device
// is one line on stderr and the CPU backend; an explicitly requested device that fails is an error.
func openBackend(c *cli.Context) (ops.Backend, error) {
	name, err := backendName(c)
	if err != nil {
		return nil, err
	}
	device := globalString(c, "device")
	switch name {
	case "cpu":
		return ops.Open("cpu", "")
	case "vulkan":
		if !slices.Contains(ops.Registered(), "vulkan") {
			return nil, deviceErr(fmt.Errorf("--backend vulkan: this binary was built without the Vulkan backend"))
		}
		b, err := ops.Open("vulkan", device)
		if err != nil {
			return nil, deviceErr(fmt.Errorf("--backend vulkan: %w", err))
		}
		return b, nil
	case "auto":
		if slices.Contains(ops.Registered(), "vulkan") {
			// A software Vulkan device (lavapipe) is slower than the native CPU backend: auto only
			// takes real GPUs, unless --device names one.
			if device == "" {
				devs, err := vkrt.Devices()
				if err != nil {
					fmt.Fprintf(c.App.ErrWriter, "chnet: no usable Vulkan device (%v); running on the CPU\n", err)
					return ops.Open("cpu", "")
				}
				if best, err := vkrt.Choose(devs, ""); err != nil || best.Type == vkrt.CPU {
					return ops.Open("cpu", "")
				}
			}
			b, err := ops.Open("vulkan", device)
			if err == nil {
				return b, nil
			}
			if device != "" {
				return nil, deviceErr(fmt.Errorf("--device %s: %w", device, err))
			}
			fmt.Fprintf(c.App.ErrWriter, "chnet: no usable Vulkan device (%v); running on the CPU\n", err)
		}
		return ops.Open("cpu", "")
	}
	return nil, usagef("--backend", "must be auto, cpu or vulkan, got %q", name)
}

// backendName is the --backend value, checked: commands that write files check it before
// creating any.
func backendName(c *cli.Context) (string, error) {
	switch name := globalString(c, "backend"); name {
	case "auto", "cpu", "vulkan":
		return name, nil
	default:
		return "", usagef("--backend", "must be auto, cpu or vulkan, got %q", name)
	}
}
