// Command torchref compares ops/cpu's convolution and SGEMM benchmarks with PyTorch on the same
// machine, in one invocation: for each benchmark that torchref.py lists, it runs `go test
// -bench` on ./ops/cpu (GOEXPERIMENT=simd unless -goexperiment says otherwise) and then
// torchref.py under Debian's python3-torch, and prints each layer's forward+backward time in
// both and the ratio Go/PyTorch.
//
// Run it from the module root:
//
//	go run ./bench/torchref [-only 'layer2'] [-count 3]
//
// Other processes on the machine skew both sides, PyTorch's OpenMP threads far more than Go's
// workers (its layer2 3x3 conv went from 23 ms to 250 ms with another process busy). So each
// run waits (up to -wait) until other processes have used under -quiet percent of the CPUs for
// three seconds, benchmarks go one at a time, alternating Go and PyTorch, and with -count above
// 1 each side keeps its fastest run. The Go column "CPU use" is the process's CPU time over its
// wall time: 2.0 means both cores worked for it throughout.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "torchref:", err)
		os.Exit(1)
	}
}

type options struct {
	only, benchtime, goexp, python string
	count, reps                    int
	quiet                          float64
	wait                           time.Duration
	root, script                   string
}

func run() error {
	var o options
	flag.StringVar(&o.only, "only", ".", "regexp selecting benchmark names (torchref.py -list)")
	flag.StringVar(&o.benchtime, "benchtime", "3x", "go test -benchtime")
	flag.IntVar(&o.count, "count", 1, "runs of each benchmark on each side; the fastest is kept")
	flag.IntVar(&o.reps, "reps", 3, "timed PyTorch repetitions per run (after one warm-up)")
	flag.StringVar(&o.goexp, "goexperiment", "simd", "GOEXPERIMENT for the Go benchmarks")
	flag.StringVar(&o.python, "python", "/usr/bin/python3", "interpreter with torch 1.13")
	flag.Float64Var(&o.quiet, "quiet", 10, "start a run only when other processes use under this percent of the CPUs")
	flag.DurationVar(&o.wait, "wait", 10*time.Minute, "longest wait for a quiet machine before each run (then it runs anyway)")
	flag.Parse()
	if o.count < 1 {
		return fmt.Errorf("-count: must be at least 1, got %d", o.count)
	}
	only, err := regexp.Compile(o.only)
	if err != nil {
		return fmt.Errorf("-only: %w", err)
	}
	if o.root, err = moduleRoot(); err != nil {
		return err
	}
	o.script = filepath.Join(o.root, "bench", "torchref", "torchref.py")
	all, err := listNames(o)
	if err != nil {
		return err
	}
	var names []string
	for _, n := range all {
		if only.MatchString(n) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("-only %q matches none of %v", o.only, all)
	}

	goRes, pyRes := map[string]result{}, map[string]result{}
	for i := 0; i < o.count; i++ {
		for _, n := range names {
			waitQuiet(o)
			r, err := runGo(o, n)
			if err != nil {
				return err
			}
			keepFastest(goRes, n, r)
			waitQuiet(o)
			if r, err = runPython(o, n); err != nil {
				return err
			}
			keepFastest(pyRes, n, r)
		}
	}
	fmt.Println()
	printTable(names, goRes, pyRes)
	return nil
}

// result is one benchmark's time per operation and, where known, its parts (Go: forward, grad
// input, grad weight; PyTorch: forward, backward), rate and CPU time.
type result struct {
	ms, cpuMS float64
	parts     []float64
	gflops    float64
}

func keepFastest(dst map[string]result, name string, r result) {
	if old, ok := dst[name]; !ok || r.ms < old.ms {
		dst[name] = r
	}
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run from inside the chnet module")
	}
	return filepath.Dir(mod), nil
}

func listNames(o options) ([]string, error) {
	out, err := exec.Command(o.python, o.script, "-list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s -list: %w", o.python, o.script, err)
	}
	return strings.Fields(string(out)), nil
}

// goBench is the go test -bench pattern of a torchref.py name: sgemm_1024 is SGEMM/1024, a
// layer is Conv2D/<layer>.
func goBench(name string) string {
	if n, ok := strings.CutPrefix(name, "sgemm_"); ok {
		return "^BenchmarkSGEMM$/^" + n + "$"
	}
	return "^BenchmarkConv2D$/^" + name + "$"
}

// benchLine matches `BenchmarkConv2D/layer2_3x3_b16-2   3   31147308 ns/op   145.2 GFLOP/s ...`.
var benchLine = regexp.MustCompile(`^Benchmark\S+\s+\d+\s+(.*)$`)

func runGo(o options, name string) (result, error) {
	args := []string{"test", "-run", "^$", "-bench", goBench(name), "-benchtime", o.benchtime, "./ops/cpu/"}
	cmd := exec.Command("go", args...)
	cmd.Dir = o.root
	cmd.Env = append(os.Environ(), "GOEXPERIMENT="+o.goexp)
	cmd.Stderr = os.Stderr
	fmt.Printf("$ GOEXPERIMENT=%s go %s\n", o.goexp, strings.Join(quoteArgs(args), " "))
	out, err := cmd.Output()
	if err != nil {
		os.Stdout.Write(out)
		return result{}, fmt.Errorf("go test: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		fmt.Println(sc.Text())
		metrics := map[string]float64{}
		f := strings.Fields(m[1])
		for i := 0; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				metrics[f[i+1]] = v
			}
		}
		r := result{ms: metrics["ms/op"], cpuMS: metrics["cpu-ms/op"], gflops: metrics["GFLOP/s"]}
		if _, ok := metrics["fwd-ms"]; ok {
			r.parts = []float64{metrics["fwd-ms"], metrics["gin-ms"], metrics["gw-ms"]}
		}
		return r, nil
	}
	return result{}, fmt.Errorf("go test printed no result for %s (is it in ops/cpu's benchmark list?)", name)
}

func quoteArgs(args []string) []string {
	q := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, "^$|*") {
			a = "'" + a + "'"
		}
		q[i] = a
	}
	return q
}

func runPython(o options, name string) (result, error) {
	args := []string{o.script, "-reps", strconv.Itoa(o.reps), "-only", name}
	fmt.Printf("$ %s %s\n", o.python, strings.Join(args, " "))
	cmd := exec.Command(o.python, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	os.Stdout.Write(out)
	if err != nil {
		return result{}, fmt.Errorf("%s: %w", o.python, err)
	}
	var r struct {
		Name   string  `json:"name"`
		MS     float64 `json:"ms"`
		Fwd    float64 `json:"fwd_ms"`
		Bwd    float64 `json:"bwd_ms"`
		GFLOPS float64 `json:"gflops"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &r); err != nil || r.Name != name {
		return result{}, fmt.Errorf("torchref.py -only %s printed %q", name, out)
	}
	x := result{ms: r.MS, gflops: r.GFLOPS}
	if r.Fwd != 0 {
		x.parts = []float64{r.Fwd, r.Bwd}
	}
	return x, nil
}

func printTable(names []string, goRes, pyRes map[string]result) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "benchmark\tGo ms\tGo fwd/gin/gw ms\tGo CPU use\tPyTorch ms\tPyTorch fwd/bwd ms\tGo/PyTorch")
	for _, n := range names {
		g, p := goRes[n], pyRes[n]
		gParts, pParts := joinMS(g.parts), joinMS(p.parts)
		if g.parts == nil {
			gParts = fmt.Sprintf("%.1f GFLOP/s", g.gflops)
		}
		if p.parts == nil {
			pParts = fmt.Sprintf("%.1f GFLOP/s", p.gflops)
		}
		use := "-"
		if g.cpuMS > 0 {
			use = fmt.Sprintf("%.2f", g.cpuMS/g.ms)
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%s\t%s\t%.1f\t%s\t%.2f\n", n, g.ms, gParts, use, p.ms, pParts, g.ms/p.ms)
	}
	tw.Flush()
}

func joinMS(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%.1f", x)
	}
	return strings.Join(s, "/")
}

// waitQuiet returns once other processes have used under o.quiet percent of the CPUs for three
// one-second samples in a row, or after o.wait, and says which.
func waitQuiet(o options) {
	deadline := time.Now().Add(o.wait)
	quiet := 0
	var last float64
	for quiet < 3 {
		l, err := otherLoad()
		if err != nil {
			fmt.Printf("other load: unknown (%v)\n", err)
			return
		}
		last = l
		if l < o.quiet {
			quiet++
		} else {
			quiet = 0
		}
		if time.Now().After(deadline) {
			fmt.Printf("other load: %.0f%% of all CPUs; waited %v for it to fall under %.0f%%, running anyway\n", l, o.wait, o.quiet)
			return
		}
	}
	fmt.Printf("other load: %.0f%% of all CPUs (under %.0f%% for 3 s)\n", last, o.quiet)
}

// otherLoad samples /proc/stat for a second and returns how busy the CPUs were, in percent:
// this program is asleep meanwhile, so all of it is other processes.
func otherLoad() (float64, error) {
	read := func() (busy, total float64, err error) {
		b, err := os.ReadFile("/proc/stat")
		if err != nil {
			return 0, 0, err
		}
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		if len(f) < 5 || f[0] != "cpu" {
			return 0, 0, fmt.Errorf("unexpected /proc/stat line %q", line)
		}
		// user nice system idle iowait irq softirq steal; guest time is already in user.
		for i, s := range f[1:min(len(f), 9)] {
			v, _ := strconv.ParseFloat(s, 64)
			total += v
			if i != 3 && i != 4 { // idle, iowait
				busy += v
			}
		}
		return busy, total, nil
	}
	b0, t0, err := read()
	if err != nil {
		return 0, err
	}
	time.Sleep(time.Second)
	b1, t1, err := read()
	if err != nil {
		return 0, err
	}
	if t1 == t0 {
		return 0, errors.New("no ticks in /proc/stat")
	}
	return 100 * (b1 - b0) / (t1 - t0), nil
}
