package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/chnet/chnet/internal/golden"
	"github.com/chnet/chnet/internal/safetensors"
	"github.com/chnet/chnet/train"
)

// childEnv makes the test binary act as the chnet command, so tests can run (and kill) it as a
// separate process without building it first.
const childEnv = "CHNET_TEST_RUN_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		setChildFaults()
		os.Exit(run(os.Args))
	}
	os.Exit(m.Run())
}

// polypSlice links the first n image/mask pairs of the real PraNet training set into a fresh
// dataset folder.
func polypSlice(t *testing.T, n int) string {
	t.Helper()
	src := golden.Path(t, "data/polyp/train")
	names, err := os.ReadDir(filepath.Join(src, "images"))
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < n {
		t.Fatalf("%s holds %d images, want at least %d", src, len(names), n)
	}
	dst := filepath.Join(t.TempDir(), "polyp")
	for _, sub := range []string{"images", "masks"} {
		if err := os.MkdirAll(filepath.Join(dst, sub), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, e := range names[:n] {
			if err := os.Symlink(filepath.Join(src, sub, e.Name()), filepath.Join(dst, sub, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dst
}

// cliProcess starts the chnet command (this test binary in child mode) with stderr to a file.
func cliProcess(t *testing.T, args ...string) (*exec.Cmd, string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "stderr")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	cmd := exec.Command(os.Args[0], append([]string{"--backend", "cpu"}, args...)...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, logPath
}

// On a slice of the real polyp data, training lowers the loss, and a run killed with SIGKILL
// (no chance to save) and then resumed ends with exactly the weights of an uninterrupted run.
func TestRealPolypTrainingAndKillResume(t *testing.T) {
	if testing.Short() {
		t.Skip("trains three short runs")
	}
	dataDir := polypSlice(t, 16)
	args := func(out string) []string {
		return []string{"train", "--data", dataDir, "--out", out, "--epochs", "4", "--batch-size", "4",
			"--size", "64", "--sizes", "56,64", "--val-fraction", "0", "--seed", "3"}
	}

	full := filepath.Join(t.TempDir(), "full")
	cmd, logPath := cliProcess(t, args(full)...)
	if err := cmd.Wait(); err != nil {
		log, _ := os.ReadFile(logPath)
		t.Fatalf("uninterrupted run: %v\n%s", err, log)
	}
	rs, err := train.ReadRecords(filepath.Join(full, "metrics.jsonl"))
	if err != nil || len(rs) != 4 {
		t.Fatalf("metrics.jsonl: %d records, %v", len(rs), err)
	}
	if first, last := rs[0].TrainLoss, rs[len(rs)-1].TrainLoss; !(last < 0.9*first) {
		t.Errorf("training loss went from %.4f (epoch 1) to %.4f (epoch 4); want a drop of at least 10%%", first, last)
	}

	t.Logf("training loss by epoch: %.4f %.4f %.4f %.4f", rs[0].TrainLoss, rs[1].TrainLoss, rs[2].TrainLoss, rs[3].TrainLoss)
	want := readTensors(t, filepath.Join(full, train.FinalName))

	// SIGKILL (no handler runs, possibly mid-write) once a file appears: config.json means
	// epoch 1, before any checkpoint; checkpoint_latest means somewhere in epochs 2-4.
	for _, killAfter := range []string{"config.json", train.LatestName} {
		killed := filepath.Join(t.TempDir(), "killed")
		cmd, _ := cliProcess(t, args(killed)...)
		deadline := time.Now().Add(5 * time.Minute)
		for time.Now().Before(deadline) {
			if _, err := os.Stat(filepath.Join(killed, killAfter)); err == nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err == nil {
			t.Fatalf("kill after %s: the run finished before it could be killed", killAfter)
		}
		if _, err := os.Stat(filepath.Join(killed, train.FinalName)); err == nil {
			t.Fatalf("kill after %s: the killed run already wrote its final checkpoint", killAfter)
		}
		cmd, logPath := cliProcess(t, "train", "--out", killed, "--resume")
		if err := cmd.Wait(); err != nil {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("kill after %s: resumed run: %v\n%s", killAfter, err, log)
		}
		got := readTensors(t, filepath.Join(killed, train.FinalName))
		if len(got) != len(want) {
			t.Fatalf("kill after %s: resumed checkpoint holds %d tensors, uninterrupted %d", killAfter, len(got), len(want))
		}
		names := make([]string, 0, len(want))
		for k := range want {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			w, g := want[k], got[k]
			if len(g) != len(w) {
				t.Fatalf("kill after %s: %s: %d values resumed, %d uninterrupted", killAfter, k, len(g), len(w))
			}
			for i := range w {
				if g[i] != w[i] {
					t.Fatalf("kill after %s: %s[%d]: resumed %v, uninterrupted %v", killAfter, k, i, g[i], w[i])
				}
			}
		}
		if rs2, err := train.ReadRecords(filepath.Join(killed, "metrics.jsonl")); err != nil || len(rs2) != 4 {
			t.Errorf("kill after %s: resumed metrics.jsonl: %d records (%v), want 4", killAfter, len(rs2), err)
		}
	}
}

// readTensors returns every tensor of a checkpoint (model and optimiser state) as float32s.
func readTensors(t *testing.T, path string) map[string][]float32 {
	t.Helper()
	f, err := safetensors.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float32{}
	for _, name := range f.Names {
		v, _, err := f.Float32(name)
		if err != nil {
			t.Fatalf("%s: %s: %v", path, name, err)
		}
		out[name] = v
	}
	return out
}
