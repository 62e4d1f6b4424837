package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 11, point 3: `chnet train --backend cpu` answered "Did you mean --backbone?". The global
// flags are taken after any command, and a value given there wins over one given before it
// (runCLI gives --backend cpu before the command).
func TestGlobalFlagsAfterTheCommand(t *testing.T) {
	for _, args := range [][]string{
		{"train", "--backend", "bogus", "--out", filepath.Join(t.TempDir(), "r")},
		{"test", "--backend=bogus", "-m", "x", "y"},
		{"predict", "--backend", "bogus", "-m", "x", "y"},
		{"bench", "speed", "--backend", "bogus"},
	} {
		code, _, stderr := runCLI(t, args...)
		if code != exitUsage || !strings.Contains(stderr, `--backend: must be auto, cpu or vulkan, got "bogus"`) {
			t.Errorf("%v: exit %d, %q; want the value given after the command read and refused", args, code, stderr)
		}
		if strings.Contains(stderr, "Did you mean") || strings.Contains(stderr, "USAGE") {
			t.Errorf("%v: printed a suggestion or help:\n%s", args, stderr)
		}
	}
	// A run refused for its --backend writes nothing.
	if _, err := os.Stat("runs"); err == nil {
		os.RemoveAll("runs")
		t.Error("a refused train command created ./runs")
	}
	// Given after the command, --backend cpu and --device are honoured (and a run completes).
	dataDir := tinyData(t, 4, 64, 5)
	run := filepath.Join(t.TempDir(), "run")
	code, _, stderr := runCLI(t, "train", "--backend", "cpu", "--device", "0", "--data", dataDir, "--out", run,
		"--epochs", "1", "--batch-size", "4", "--size", "64", "--sizes", "64", "--val-fraction", "0")
	if code != 0 || !strings.Contains(stderr, "with the cpu backend") {
		t.Fatalf("train --backend cpu after the command: exit %d\n%s", code, stderr)
	}
	// Every command's help lists them.
	for _, cmd := range [][]string{{"train"}, {"test"}, {"eval"}, {"predict"}, {"bench", "speed"}, {"devices"}} {
		_, out, _ := runCLI(t, append(cmd, "--help")...)
		if !strings.Contains(out, "--backend") || !strings.Contains(out, "--device") {
			t.Errorf("chnet %v --help does not list --backend and --device:\n%s", cmd, out)
		}
	}
}
