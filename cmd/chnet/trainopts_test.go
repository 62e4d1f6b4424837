package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chnet/chnet/train"
)

// Issue 11, point 7: --limit (a seeded subset), --save-every and --val-every, --test-on, and
// the end of training saying which checkpoint it tests, where the reports are, with the test
// scores in train.log.
func TestTrainLimitEveryAndTestOn(t *testing.T) {
	dataDir, testDir := tinyData(t, 8, 32, 51), tinyData(t, 2, 32, 52)
	run := filepath.Join(t.TempDir(), "run")
	var saves []string
	trainHook = func(_ context.Context, p string) {
		if strings.HasPrefix(p, "save ") {
			saves = append(saves, p)
		}
	}
	defer func() { trainHook = nil }()
	code, stdout, stderr := runCLI(t, "train", "--data", dataDir, "--test", testDir, "--out", run, "--epochs", "3",
		"--batch-size", "2", "--size", "32", "--sizes", "32", "--val-fraction", "0.25", "--limit", "4",
		"--save-every", "2", "--val-every", "2", "--test-on", "best")
	if code != 0 {
		t.Fatalf("train: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{
		"--limit 4: training on a seeded sample of 4 of the 8 images",
		"data: 3 training and 1 validation images",
		"testing " + filepath.Join(run, train.BestName) + " (the best validation Dice's checkpoint",
		"done: reports " + filepath.Join(run, "test", "data", "report.md"),
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	rs, err := train.ReadRecords(filepath.Join(run, "metrics.jsonl"))
	if err != nil || len(rs) != 3 {
		t.Fatalf("metrics.jsonl: %d records, %v", len(rs), err)
	}
	for i, r := range rs {
		if validated := r.Val != nil; validated != (i >= 1) {
			t.Errorf("epoch %d validated: %v; want only epochs 2 and 3 (--val-every 2, and the last)", i+1, validated)
		}
	}
	// latest at epoch 2 (every 2, and the best so far) and 3 (the last); never at epoch 1.
	latest := 0
	for _, s := range saves {
		if s == "save "+train.LatestName {
			latest++
		}
	}
	if latest != 2 {
		t.Errorf("checkpoint_latest written %d times, want 2: %v", latest, saves)
	}
	log, _ := os.ReadFile(filepath.Join(run, "train.log"))
	if !strings.Contains(string(log), "  mDice") || !strings.Contains(stdout, "  mDice") {
		t.Errorf("the test scores are not in train.log and on stdout:\n%s\n%s", log, stdout)
	}
	// The subset and spacing are part of the run: resuming with others is refused.
	if code, _, stderr := runCLI(t, "train", "--out", run, "--resume", "--limit", "5"); code != exitUsage || !strings.Contains(stderr, "--limit") {
		t.Errorf("resume with another --limit: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := runCLI(t, "train", "--out", run, "--resume"); code != 0 || !strings.Contains(stderr, "already finished 3 epochs") {
		t.Errorf("resume: exit %d\n%s", code, stderr)
	}
}
