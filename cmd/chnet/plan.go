package main

import (
	"fmt"

	"github.com/chnet/chnet/bench"
	"github.com/chnet/chnet/internal/vkrt"
	"github.com/chnet/chnet/ops/vk"
	"github.com/urfave/cli/v2"
)

func benchPlanCommand() *cli.Command {
	return &cli.Command{
		Name:  "plan",
		Usage: "count one training or inference step on a Vulkan device without running it",
		Description: `Runs a warm-up step and one counted step of the network on a planning Vulkan device:
the backend chooses kernels, binds, allocates and records exactly as on the target GPU
(--target), but nothing executes. It reports, per step, the dispatches, hazard barriers,
submissions and host waits, the bytes bound by memory-bound kernels (everything but
convolutions and matrix products), the multiply-adds of each compute kernel, and the
allocator's peak device memory. A test checks these counts against a real lavapipe step.`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "mode", Value: "both", Usage: "train, infer or both"},
			&cli.IntFlag{Name: "batch-size", Value: 16, Usage: "images per step"},
			batchAliasFlag(),
			&cli.IntFlag{Name: "size", Value: 352, Usage: "input size (square)"},
			&cli.StringFlag{Name: "target", Value: "h100", Usage: "device to plan for: h100, lavapipe, or local (this machine's chosen Vulkan device)"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
		}, modelFlags()...),
		Action: benchPlan,
	}
}

func benchPlan(c *cli.Context) error {
	spec, err := modelSpec(c)
	if err != nil {
		return err
	}
	var modes []bool
	switch c.String("mode") {
	case "train":
		modes = []bool{true}
	case "infer":
		modes = []bool{false}
	case "both":
		modes = []bool{true, false}
	default:
		return usagef("--mode", "must be train, infer or both, got %q", c.String("mode"))
	}
	batch, _, err := benchBatch(c)
	if err != nil {
		return err
	}
	if c.Int("size") < 32 {
		return usagef("--size", "must be at least 32, got %d", c.Int("size"))
	}
	var info vkrt.DeviceInfo
	if p := c.String("target"); p == "local" {
		devs, err := vkrt.Devices()
		if err != nil {
			return deviceErr(fmt.Errorf("--target local: %w", err))
		}
		if info, err = vkrt.Choose(devs, globalString(c, "device")); err != nil {
			return deviceErr(fmt.Errorf("--target local: %w", err))
		}
	} else if info, err = vkrt.Profile(p); err != nil {
		return usagef("--target", "%v", err)
	}
	var results []*bench.PlanResult
	for _, tr := range modes {
		// A fresh device per mode, so each counts its own network and arena.
		b, err := vk.OpenPlan(info, vkrt.Options{})
		if err != nil {
			return deviceErr(err)
		}
		r, err := bench.MeasurePlan(b, bench.PlanConfig{Model: spec, Batch: batch, Size: c.Int("size"), Train: tr})
		b.Close()
		if err != nil {
			return err
		}
		results = append(results, r)
		if !c.Bool("json") {
			fmt.Fprint(c.App.Writer, r)
		}
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, results)
	}
	return nil
}
