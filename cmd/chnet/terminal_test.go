package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// runCLIOnTerminal runs the CLI in-process with stderr a terminal of the given width.
func runCLIOnTerminal(t *testing.T, width int, args ...string) (int, string) {
	t.Helper()
	app := newApp()
	var out, errb bytes.Buffer
	app.Writer = &out
	app.ErrWriter = &termWriter{w: &errb, width: func() int { return width }}
	code := 0
	if err := app.Run(append([]string{"chnet", "--backend", "cpu"}, args...)); err != nil {
		app.ErrWriter.Write([]byte(message(err) + "\n"))
		code = exitCode(err)
	}
	checkFlagNames(t, args, errb.String())
	return code, errb.String()
}

func TestFold(t *testing.T) {
	for _, tc := range []struct {
		line  string
		width int
		want  string
	}{
		{"short line", 80, "short line"},
		{"epoch 1/4  loss 0.8617  lr 0.02000  1.2s  3.45 img/s", 30, "epoch 1/4 loss 0.8617 lr\n    0.02000 1.2s 3.45 img/s"},
		{"a /very/long/path/that/does/not/fit end", 20, "a\n    /very/long/path/\n    that/does/not/fi\n    t end"},
	} {
		got := fold(tc.line, tc.width)
		if got != tc.want {
			t.Errorf("fold(%q, %d) = %q, want %q", tc.line, tc.width, got, tc.want)
		}
		for _, l := range strings.Split(got, "\n") {
			if utf8.RuneCountInString(l) > tc.width {
				t.Errorf("fold(%q, %d): line %q is too wide", tc.line, tc.width, l)
			}
		}
	}
}

// Issue 11, point 2, "what it must show": a training run on an 80-column terminal prints no line
// (and draws no progress frame) wider than 80 columns, while train.log keeps each line whole.
func TestTrainingOutputFits80Columns(t *testing.T) {
	dataDir, testDir := tinyData(t, 8, 32, 7), tinyData(t, 2, 32, 8)
	run := filepath.Join(t.TempDir(), "run-folder-with-a-rather-long-name-to-push-paths-past-eighty-columns")
	code, stderr := runCLIOnTerminal(t, 80, "train", "--data", dataDir, "--test", testDir, "--out", run, "--epochs", "2",
		"--batch-size", "2", "--size", "32", "--sizes", "32", "--val-fraction", "0.25")
	if code != 0 {
		t.Fatalf("train exited %d:\n%s", code, stderr)
	}
	frames := regexp.MustCompile("[\r\n]").Split(stderr, -1)
	bars := 0
	for _, f := range frames {
		if n := utf8.RuneCountInString(f); n > 80 {
			t.Errorf("a %d-column line at 80 columns: %q", n, f)
		}
		if strings.Contains(f, "[") && strings.HasPrefix(f, "epoch ") {
			bars++
		}
	}
	if bars == 0 {
		t.Errorf("no progress frame drawn on the terminal:\n%q", stderr)
	}
	log, err := os.ReadFile(filepath.Join(run, "train.log"))
	if err != nil {
		t.Fatal(err)
	}
	long := 0
	for _, l := range strings.Split(string(log), "\n") {
		if strings.Contains(l, "epoch 2/2") && strings.Contains(l, "val dice") && strings.Contains(l, "val mae") {
			long++
		}
		if strings.ContainsRune(l, '\r') || strings.HasPrefix(l, "    ") {
			t.Errorf("train.log holds a terminal frame or a folded line: %q", l)
		}
	}
	if long == 0 {
		t.Errorf("train.log lacks the whole epoch 2 summary on one line:\n%s", log)
	}
}
