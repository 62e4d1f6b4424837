package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chnet/chnet/train"
)

// Issue 11, point 4: config.json kept --data as typed (relative), so a run could not be resumed
// from another directory, and the absolute path was refused as a changed flag. Paths are
// stored resolved and compared by what they name.
func TestResumeFromAnotherDirectory(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, d := range []struct {
		name string
		seed uint64
	}{{"data", 21}, {"test", 22}} {
		src := tinyData(t, map[string]int{"data": 4, "test": 2}[d.name], 32, d.seed)
		if err := os.Rename(src, filepath.Join(a, d.name)); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(a)
	// Started with relative paths, and Ctrl-C'd after its first step (a child process).
	code, stderr, _ := childRun(t, "step#1:INT", "train", "--data", "data", "--test", "test", "--out", "run", "--epochs", "1",
		"--batch-size", "2", "--size", "32", "--sizes", "32", "--val-fraction", "0.25", "--seed", "4")
	if code != exitInterrupted {
		t.Fatalf("interrupted run: exit %d, want %d\n%s", code, exitInterrupted, stderr)
	}
	var rc runConfig
	if raw, err := os.ReadFile(filepath.Join(a, "run", "config.json")); err != nil || json.Unmarshal(raw, &rc) != nil {
		t.Fatalf("config.json: %v", err)
	}
	if rc.Data != filepath.Join(a, "data") || len(rc.Test) != 1 || rc.Test[0] != filepath.Join(a, "test") {
		t.Fatalf("config.json records data %q and test %q, want the absolute paths", rc.Data, rc.Test)
	}

	t.Chdir(b)
	os.Symlink(filepath.Join(a, "data"), filepath.Join(b, "link"))
	run := filepath.Join(a, "run")
	// Another folder is refused; the same folders written otherwise are the same run.
	for _, args := range [][]string{
		{"--data", filepath.Join(a, "test")},
		{"--test", filepath.Join(a, "data")},
	} {
		if code, _, stderr := runCLI(t, append([]string{"train", "--out", run, "--resume"}, args...)...); code != exitUsage || !strings.Contains(stderr, "was started with") {
			t.Errorf("resume with %v: exit %d, want %d refusing it\n%s", args, code, exitUsage, stderr)
		}
	}
	code, _, stderr = runCLI(t, "train", "--out", run, "--resume", "--data", "link", "--test", filepath.Join(a, "..", filepath.Base(a), "test")+"/")
	if code != 0 {
		t.Fatalf("resume from another directory, paths written otherwise: exit %d\n%s", code, stderr)
	}
	for _, f := range []string{train.FinalName, "test/test/metrics.json"} {
		if _, err := os.Stat(filepath.Join(run, f)); err != nil {
			t.Errorf("after resuming from another directory: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(b, "run")); err == nil {
		t.Error("resuming wrote a run folder into the current directory")
	}
}
