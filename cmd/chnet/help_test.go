package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chnet/chnet/train"
	"github.com/urfave/cli/v2"
)

// helpOf is the --help output of every command and sub-command, by command line.
func helpOf(t *testing.T) map[string]string {
	t.Helper()
	helps := map[string]string{}
	var walk func(path []string, cmds []*cli.Command)
	walk = func(path []string, cmds []*cli.Command) {
		for _, c := range cmds {
			if c.Name == "help" {
				continue
			}
			p := append(append([]string{}, path...), c.Name)
			_, out, _ := runCLI(t, append(p, "--help")...)
			helps[strings.Join(p, " ")] = out
			walk(p, c.Subcommands)
		}
	}
	_, out, _ := runCLI(t, "--help")
	helps[""] = out
	walk(nil, newApp().Commands)
	return helps
}

var flagLine = regexp.MustCompile(`^\s+(--[a-z][a-z0-9-]*)((?:, -{1,2}[a-z-]+)*)( value)?\s*(.*)$`)

// Issue 11, point 10: the help showed "--device chnet devices" (a back-quoted placeholder),
// "(default: one per core) (default: 0)", and --momentum and --weight-decay without a word.
func TestHelpHasNoGlitches(t *testing.T) {
	for cmd, h := range helpOf(t) {
		if h == "" {
			t.Errorf("chnet %s --help printed nothing", cmd)
			continue
		}
		for _, line := range strings.Split(h, "\n") {
			m := flagLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			desc := m[4]
			if strings.Count(desc, "(default:") > 1 {
				t.Errorf("chnet %s --help: default printed twice: %q", cmd, line)
			}
			if strings.HasPrefix(strings.TrimSpace(desc), "(default:") || strings.TrimSpace(desc) == "" {
				t.Errorf("chnet %s --help: %s has no description: %q", cmd, m[1], line)
			}
			if m[3] == "" && m[1] != "--help" && m[1] != "--version" && !strings.Contains(h, m[1]+" ") {
				continue
			}
			if strings.Contains(line, m[1]+" chnet") {
				t.Errorf("chnet %s --help: placeholder glitch: %q", cmd, line)
			}
		}
	}
	h := helpOf(t)["train"]
	if !strings.Contains(h, "triangular") || !strings.Contains(h, "--epochs is odd") {
		t.Errorf("train --help does not say what the lr schedule does:\n%s", h)
	}
}

// bench speed and bench plan take --batch-size, as train does; --batch stays as an alias, and
// errors name the flag as typed.
func TestBenchBatchSize(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "speed", "--batch-size", "0"}, "--batch-size: must be at least 1"},
		{[]string{"bench", "speed", "--batch", "0"}, "--batch: must be at least 1"},
		{[]string{"bench", "plan", "--batch-size", "0"}, "--batch-size: must be at least 1"},
	} {
		code, _, stderr := runCLI(t, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, %q; want %d and %q", tc.args, code, stderr, exitUsage, tc.want)
		}
	}
	code, out, stderr := runCLI(t, "bench", "speed", "--batch-size", "1", "--size", "32", "--mode", "infer", "--warmup", "0", "--repeat", "1")
	if code != 0 || !strings.Contains(out, "b1 32x32") {
		t.Errorf("bench speed --batch-size 1: exit %d, %q %s", code, out, stderr)
	}
}

// The train log says what the learning-rate schedule does for this run (a 4-epoch run peaks at
// 0.04, not at --lr 0.05), and the finished run's final checkpoint is latest's file, not a copy.
func TestScheduleLoggedAndFinalLinked(t *testing.T) {
	dataDir := tinyData(t, 4, 32, 6)
	run := filepath.Join(t.TempDir(), "run")
	code, _, stderr := runCLI(t, "train", "--data", dataDir, "--out", run, "--epochs", "4", "--batch-size", "4",
		"--size", "32", "--sizes", "32", "--val-fraction", "0")
	if code != 0 {
		t.Fatalf("train: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "schedule: lr 0.02 in epoch 1, rising linearly to 0.04 in epochs 2-3, falling to 0.02 in epoch 4") {
		t.Errorf("no schedule line:\n%s", stderr)
	}
	a, err1 := os.Stat(filepath.Join(run, train.LatestName))
	b, err2 := os.Stat(filepath.Join(run, train.FinalName))
	if err1 != nil || err2 != nil || !os.SameFile(a, b) {
		t.Errorf("final is not latest's file: %v %v", err1, err2)
	}
	// And the run still resumes as finished and tests from final.
	if code, _, stderr := runCLI(t, "train", "--out", run, "--resume"); code != 0 || !strings.Contains(stderr, "already finished 4 epochs") {
		t.Errorf("resume: exit %d\n%s", code, stderr)
	}
}
