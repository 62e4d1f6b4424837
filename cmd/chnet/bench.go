package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"text/tabwriter"

	"github.com/chnet/chnet/bench"
	"github.com/chnet/chnet/train/data"
	"github.com/urfave/cli/v2"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure models: operation counts (the paper's Table 5) and speed",
		Subcommands: []*cli.Command{
			{
				Name:  "flops",
				Usage: "parameters and multiply-adds of every model, beside the paper's Table 5",
				Description: `Counts come from running each model's forward pass on a counting backend.
"MACs" are the multiply-adds of convolutions and matrix products, attention's included
(PyTorch's FlopCounter reports twice these as FLOPs); "thop" and "thop-old" apply thop's
per-module rules after and before its 2022 refactor: nn.Linear counts, torch.matmul,
softmax and interpolation do not, layer and batch norm count per element. The paper's
"GFLOPs" are thop multiply-adds: its CHNet row (7.1 G, 8.8 M) matches the v1b backbone with a
128-wide head at 256x256 under the old rules (docs: reference.md §5). The baselines (U-Net,
Attention U-Net, UTNet, TransUNet on the same backbone) are chnet/baselines' defaults; their
doc comments explain each configuration and its gap to the paper's row.`,
				Flags: []cli.Flag{
					&cli.IntSliceFlag{Name: "size", Value: cli.NewIntSlice(256, 352), Usage: "input sizes (square)"},
					&cli.StringFlag{Name: "format", Value: "table", Usage: "table, markdown or json"},
					&cli.BoolFlag{Name: "breakdown", Usage: "also print each model's cost per top-level part"},
				},
				Action: benchFlops,
			},
			{
				Name:  "speed",
				Usage: "training-step and inference throughput of a network on the chosen backend",
				Description: `Builds the network with random weights, runs --warmup untimed steps, then --repeat
timed ones on random inputs, each ending with a device synchronisation. Reports the median step
time with its range, images per second at the median, and peak memory (device arena on Vulkan,
process resident memory on the CPU).`,
				Flags: append([]cli.Flag{
					&cli.StringFlag{Name: "mode", Value: "both", Usage: "train, infer or both"},
					&cli.IntFlag{Name: "batch-size", Value: 16, Usage: "images per step"},
					batchAliasFlag(),
					&cli.IntFlag{Name: "size", Value: 352, Usage: "input size (square)"},
					&cli.IntFlag{Name: "warmup", Value: 2, Usage: "untimed steps first"},
					&cli.IntFlag{Name: "repeat", Value: 5, Usage: "timed steps"},
					&cli.BoolFlag{Name: "json", Usage: "print JSON"},
					&cli.BoolFlag{Name: "profile", Usage: "then time --repeat more steps per kernel with GPU timestamps (Vulkan)"},
				}, modelFlags()...),
				Action: benchSpeed,
			},
			benchPlanCommand(),
		},
	}
}

// maxSide is the largest square side within the default pixel limit (data.DefaultMaxPixels).
var maxSide = int(math.Sqrt(data.DefaultMaxPixels))

func benchSpeed(c *cli.Context) error {
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
	batch, batchFlag, err := benchBatch(c)
	if err != nil {
		return err
	}
	if c.Int("repeat") < 1 {
		return usagef("--repeat", "must be at least 1, got %d", c.Int("repeat"))
	}
	if c.Int("size") < 32 || int64(c.Int("size"))*int64(c.Int("size")) > data.DefaultMaxPixels {
		return usagef("--size", "must be in 32..%d, got %d", maxSide, c.Int("size"))
	}
	b, err := openBackend(c)
	if err != nil {
		return err
	}
	// Random inputs on the host and a step's tensors: refused before allocating if too big.
	for _, tr := range modes {
		size := c.Int("size")
		if err := checkFit(b, fitQuery{spec: spec, training: tr, batch: batch, size: size, batchFlag: batchFlag,
			what: fmt.Sprintf("%s %d at --size %d", batchFlag, batch, size), data: func(n int) int64 { return int64(n) * 16 * int64(size) * int64(size) }}, io.Discard); err != nil {
			return err
		}
	}
	var results []*bench.SpeedResult
	for _, tr := range modes {
		r, err := bench.MeasureSpeed(b, bench.SpeedConfig{Model: spec, Batch: batch, Size: c.Int("size"), Warmup: c.Int("warmup"), Repeat: c.Int("repeat"), Train: tr, Profile: c.Bool("profile")})
		if err != nil {
			return err
		}
		results = append(results, r)
		if !c.Bool("json") {
			inUse := ""
			if r.PeakInUse > 0 {
				inUse = fmt.Sprintf(", %.2f GiB at most in use", float64(r.PeakInUse)/(1<<30))
			}
			fmt.Fprintf(c.App.Writer, "%-5s %s b%d %dx%d on %s (%s): %.1f ms/step (min %.1f, max %.1f over %d), %.2f img/s, peak memory %.2f GiB (%s%s)\n",
				r.Mode, spec.Arch, r.Batch, r.Size, r.Size, r.Backend, r.Device, r.MedianMs, r.MinMs, r.MaxMs, len(r.Steps), r.ImagesPerS, float64(r.PeakMemory)/(1<<30), r.MemoryWhere, inUse)
			printProfile(c.App.Writer, r.Profile)
		}
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, results)
	}
	return nil
}

// printProfile prints bench speed's per-kernel table.
func printProfile(w io.Writer, rows []bench.ProfileRow) {
	if len(rows) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kernel\tcalls/step\tms/step\tshare\tGFLOP/s\tGB/s\t")
	var ms float64
	for _, r := range rows {
		rate := func(v float64) string {
			if v == 0 {
				return ""
			}
			return fmt.Sprintf("%.1f", v)
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.3f\t%.1f%%\t%s\t%s\t\n", r.Name, r.Calls, r.Ms, 100*r.Share, rate(r.GFLOPs), rate(r.GBs))
		ms += r.Ms
	}
	fmt.Fprintf(tw, "total\t\t%.3f\t\t\t\t\n", ms)
	tw.Flush()
}

func benchFlops(c *cli.Context) error {
	format := c.String("format")
	if format != "table" && format != "markdown" && format != "json" {
		return usagef("--format", "must be table, markdown or json, got %q", format)
	}
	var rows []bench.CostRow
	for _, size := range c.IntSlice("size") {
		if size < 32 || size%32 != 0 || size > maxSide {
			return usagef("--size", "sizes must be multiples of 32 in 32..%d, got %d", maxSide, size)
		}
		for _, m := range bench.CostModels() {
			r, err := bench.MeasureCost(m, size)
			if err != nil {
				return err
			}
			rows = append(rows, r)
		}
	}
	w := c.App.Writer
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	printCostTable(w, rows, format == "markdown", c.Bool("breakdown"))
	return nil
}

func printCostTable(w io.Writer, rows []bench.CostRow, markdown, breakdown bool) {
	header := []string{"model", "input", "params (M)", "MACs (G)", "thop (G)", "thop-old (G)", "paper GFLOPs", "paper params (M)"}
	line := func(tw io.Writer, cells []string) {
		if markdown {
			fmt.Fprint(tw, "|")
			for _, c := range cells {
				fmt.Fprintf(tw, " %s |", c)
			}
			fmt.Fprintln(tw)
			return
		}
		for i, c := range cells {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, c)
		}
		fmt.Fprintln(tw)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	out := io.Writer(tw)
	if markdown {
		out = w
	}
	line(out, header)
	if markdown {
		fmt.Fprintln(out, "|---|---|---:|---:|---:|---:|---:|---:|")
	}
	for _, r := range rows {
		paperG, paperP := "", ""
		if r.Paper != nil {
			paperG, paperP = fmt.Sprintf("%.1f", r.Paper.GFLOPs), fmt.Sprintf("%.1f", r.Paper.MParams)
		}
		line(out, []string{r.Model, fmt.Sprintf("%dx%d", r.Size, r.Size), fmt.Sprintf("%.3f", float64(r.Params)/1e6),
			fmt.Sprintf("%.3f", float64(r.MACs)/1e9), fmt.Sprintf("%.3f", float64(r.ThopNew)/1e9), fmt.Sprintf("%.3f", float64(r.ThopOld)/1e9), paperG, paperP})
		if breakdown {
			for _, p := range r.ByPart {
				line(out, []string{"  " + p.Scope, "", "", fmt.Sprintf("%.3f", float64(p.MACs)/1e9), fmt.Sprintf("%.3f", float64(p.ThopNew)/1e9), fmt.Sprintf("%.3f", float64(p.ThopOld)/1e9), "", ""})
			}
		}
	}
	tw.Flush()
	if !markdown {
		fmt.Fprintln(w, "\npaper: Table 5 of Wei et al. (input size not stated; its figures match 256x256 under the thop-old rules).")
	}
}

// batchAliasFlag is bench's former name for --batch-size, kept so that scripts go on working.
// It is a flag of its own rather than an alias, so that messages can quote the name typed.
func batchAliasFlag() cli.Flag {
	return &cli.IntFlag{Name: "batch", Hidden: true, Usage: "the same as --batch-size"}
}

// benchBatch is the batch size of bench speed and bench plan and the flag that set it.
func benchBatch(c *cli.Context) (int, string, error) {
	n, flag := c.Int("batch-size"), "--batch-size"
	if c.IsSet("batch") {
		if c.IsSet("batch-size") && c.Int("batch") != n {
			return 0, "", usagef("--batch", "is %d but --batch-size is %d; give one", c.Int("batch"), n)
		}
		n, flag = c.Int("batch"), "--batch"
	}
	if n < 1 {
		return 0, "", usagef(flag, "must be at least 1, got %d", n)
	}
	return n, flag, nil
}
