package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chnet/chnet/internal/golden"
	"github.com/chnet/chnet/train"
)

func TestExperimentUsage(t *testing.T) {
	dataDir, testDir := tinyData(t, 4, 64, 1), tinyData(t, 2, 64, 2)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"experiment"}, "name an experiment"},
		{[]string{"experiment", "table9"}, "unknown experiment"},
		{[]string{"experiment", "table1", "polyp"}, "run them separately"},
		{[]string{"experiment", "--archs", "chnet,vit", "table1"}, "--archs"},
		{[]string{"experiment", "table1", "--epochs", "3"}, "put flags first"},
		{[]string{"experiment", "--data", dataDir, "--test", testDir, "--size", "40", "table1"}, "at least 51"},
		{[]string{"experiment", "--data", dataDir, "--test", dataDir, "--test", dataDir, "table1"}, "same name"},
	}
	for _, c := range cases {
		code, _, stderr := runCLI(t, c.args...)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %q; want %d and %q", c.args, code, stderr, exitUsage, c.want)
		}
	}
	out := filepath.Join(t.TempDir(), "exp")
	code, stdout, stderr := runCLI(t, "experiment", "--dry-run", "--out", out, "--data", dataDir, "--test", testDir, "--epochs", "7", "lung")
	if code != 0 || !strings.Contains(stdout, "21 runs") || !strings.Contains(stdout, "attunet-on-unet/seed0 (pending): chnet train") ||
		!strings.Contains(stdout, "--epochs 7") {
		t.Errorf("dry run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("the dry run created the experiment folder")
	}
}

// covidArgs are the settings of the real experiment tests: a few slices of the lung set at
// 56 px, three epochs.
func covidArgs(t *testing.T, out string) []string {
	return []string{"experiment", "--out", out, "--data", golden.Path(t, "data/covid/train"), "--test", golden.Path(t, "data/covid/test"),
		"--size", "56", "--epochs", "3", "--batch-size", "2", "--limit", "4", "--test-limit", "2", "--workers", "1"}
}

// The lung experiments, run for real at a tiny size (two networks, one head width), write every
// summary; then Table 1 alone, killed mid-run (SIGKILL to the experiment: its training child
// must stop and save, not train on as an orphan) and run again, skips what finished, resumes the
// interrupted run and ends with exactly the weights of the uninterrupted experiment.
func TestExperimentRealRunsAndKill(t *testing.T) {
	if testing.Short() {
		t.Skip("trains six small runs")
	}
	t.Setenv(childEnv, "1") // the experiment's runs are this test binary as the chnet command
	full := filepath.Join(t.TempDir(), "full")
	code, stdout, stderr := runCLI(t, append(covidArgs(t, full), "--archs", "chnet,fcn", "--head-widths", "32", "lung")...)
	if code != 0 {
		t.Fatalf("lung experiments exited %d: %s", code, stderr)
	}
	for _, run := range []string{"chnet", "fcn", "chnet-k3", "chnet-on-chnet", "fcn-on-chnet"} {
		dir := filepath.Join(full, "runs", run, "seed0")
		for _, f := range []string{"config.json", "metrics.jsonl", train.FinalName, "test/test/metrics.json", "test/test/report.md"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("run %s lacks %s", run, f)
			}
		}
	}
	for exp, want := range map[string][]string{
		"table1":     {"| CHNet (ours) | R2-50 | ours | 0.", "| FCN-32s | R2-50 | ours | 0.", "| Inf-Net† |", "mDice | Precision | Recall | Sm | MAE", "3 epochs (paper: 200 for lung)"},
		"table6":     {"| Baseline (FCN-32s) | R2-50 | ours | 0.", "| CHNet (3×3 Conv) | R2-50 | ours | 0.", "| CHNet (1×1 Conv) | R2-50 | ours | 0.", "| 0.796 | — | — | 0.843 |"},
		"decoupling": {"| backbone of end-to-end CHNet | R2-50 | ours | 0.", "CHNet | FCN-32s |", "| FCN-32s decoder on the frozen CHNet backbone | R2-50 | ours | 0."},
	} {
		md, err := os.ReadFile(filepath.Join(full, exp, "summary.md"))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(string(md), w) {
				t.Errorf("%s/summary.md lacks %q", exp, w)
			}
		}
		if strings.Contains(string(md), "Incomplete") || !strings.Contains(stdout, "# "+strings.SplitN(string(md), "\n", 2)[0][2:]) {
			t.Errorf("%s: incomplete, or its summary not printed", exp)
		}
	}
	if _, err := os.Stat(filepath.Join(full, "decoupling", "decoupling.png")); err != nil {
		t.Error(err)
	}

	killed := filepath.Join(t.TempDir(), "killed")
	args := append(covidArgs(t, killed), "--archs", "chnet,fcn", "table1")
	cmd, logPath := cliProcess(t, args...)
	latest := filepath.Join(killed, "runs", "chnet", "seed0", train.LatestName)
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(latest); err == nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	children := childPIDs(cmd.Process.Pid)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if len(children) != 1 {
		log, _ := os.ReadFile(logPath)
		t.Fatalf("the experiment had %d child processes when killed, want its one training run\n%s", len(children), log)
	}
	for !exited(children[0]) {
		if time.Now().After(deadline) {
			t.Fatalf("training process %d still running after its experiment was killed", children[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(killed, "runs", "chnet", "seed0", "test", "test", "report.md")); err == nil {
		t.Fatal("the run finished although its experiment was killed: the child outlived its parent, or the kill came too late")
	}
	code, _, stderr = runCLI(t, args...)
	if code != 0 {
		t.Fatalf("continuing the killed experiment exited %d: %s", code, stderr)
	}
	elog, _ := os.ReadFile(filepath.Join(killed, "experiment.log"))
	for _, w := range []string{"chnet/seed0: resuming", "fcn/seed0: starting", "fcn/seed0: finished"} {
		if !strings.Contains(string(elog), w) {
			t.Errorf("experiment.log lacks %q:\n%s", w, elog)
		}
	}
	for _, run := range []string{"chnet", "fcn"} {
		want := readTensors(t, filepath.Join(full, "runs", run, "seed0", train.FinalName))
		got := readTensors(t, filepath.Join(killed, "runs", run, "seed0", train.FinalName))
		if len(got) != len(want) {
			t.Fatalf("%s: %d tensors, uninterrupted %d", run, len(got), len(want))
		}
		for k, w := range want {
			g := got[k]
			if len(g) != len(w) {
				t.Fatalf("%s: %s has %d values, uninterrupted %d", run, k, len(g), len(w))
			}
			for i := range w {
				if g[i] != w[i] {
					t.Fatalf("%s: %s[%d] = %v after the kill, %v uninterrupted", run, k, i, g[i], w[i])
				}
			}
		}
	}
	if rs, err := train.ReadRecords(filepath.Join(killed, "runs", "chnet", "seed0", "metrics.jsonl")); err != nil || len(rs) != 3 {
		t.Errorf("resumed run's metrics.jsonl: %d records (%v), want 3", len(rs), err)
	}
}

// The polyp experiment scores every run on both test sets, as the paper's Tables 3 and 4.
func TestExperimentPolyp(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a small run")
	}
	t.Setenv(childEnv, "1")
	out := filepath.Join(t.TempDir(), "polyp")
	test := golden.Path(t, "data/polyp/test")
	code, _, stderr := runCLI(t, "experiment", "--out", out, "--data", golden.Path(t, "data/polyp/train"),
		"--test", filepath.Join(test, "CVC-ClinicDB"), "--test", filepath.Join(test, "Kvasir"), "--size", "56", "--epochs", "1",
		"--batch-size", "2", "--limit", "4", "--test-limit", "2", "--workers", "1", "--archs", "chnet", "polyp")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	md, err := os.ReadFile(filepath.Join(out, "polyp", "summary.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"## Table 3: CVC-ClinicDB", "## Table 4: Kvasir", "mDice | mIoU | wFm | Sm | maxEm | MAE",
		"| CHNet (ours) | R2-50 | ours | 0.", "| U-Net | R2-50 | paper | 0.890 |", "| SANet† |"} {
		if !strings.Contains(string(md), w) {
			t.Errorf("summary.md lacks %q\n%s", w, md)
		}
	}
	if strings.Count(string(md), "| CHNet (ours) | R2-50 | ours | 0.") != 2 {
		t.Error("CHNet's results are not in both tables")
	}
}

// childPIDs lists a process's children (Linux /proc).
func childPIDs(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "task", "*", "children"))
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(s); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// exited reports whether a process is gone or a zombie.
func exited(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return true
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	if !dead(string(b)) {
		return false
	}
	// A zombie thread-group leader can wait for its other threads, which still hold the
	// process's files (and so its run folder's flock): only when every thread is dead has it
	// let go of everything.
	stats, _ := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "task", "*", "stat"))
	for _, f := range stats {
		if b, err := os.ReadFile(f); err == nil && !dead(string(b)) {
			return false
		}
	}
	return true
}

// dead reports whether a /proc stat line shows a zombie or dead task.
func dead(stat string) bool {
	i := strings.LastIndexByte(stat, ')')
	return i > 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X')
}
