package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Issue 11, point 5: report.md's "Dice at 0.5" (the raw map thresholded) and per_image.csv's
// sample_bidice (PySODMetrics, min-max normalised) were two values called Dice for one image.
// Each definition has one name, and report.md says which is which; eval labels its results with
// the data set, not the prediction folder ("maps").
func TestDiceNamesAndEvalLabel(t *testing.T) {
	ckpt := initCheckpoint(t, 32)
	ds := tinyData(t, 3, 32, 41)
	out := filepath.Join(t.TempDir(), "out")
	if code, _, stderr := runCLI(t, "test", "-m", ckpt, "-o", out, ds); code != 0 {
		t.Fatalf("test: exit %d\n%s", code, stderr)
	}
	md, err := os.ReadFile(filepath.Join(out, "data", "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"## Which Dice is which",
		"- **Dice@0.5 of the raw map** (the samples below): the map as saved",
		"- **meandice** (the table's mDice): PySODMetrics:",
		"- **sample_bidice**: PySODMetrics: the map min-max normalised per image, then > 0.5",
		"## Samples (worst first, by Dice@0.5 of the raw map)",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	if regexp.MustCompile(`— Dice [0-9]`).Match(md) {
		t.Errorf("report.md still calls a sample's value plain \"Dice\":\n%s", md)
	}
	maps := filepath.Join(out, "data", "maps")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--gt", ds}, "data: 3 images"},
		{[]string{"--gt", filepath.Join(ds, "masks")}, "data: 3 images"},
		{[]string{"--gt", ds, "--name", "Kvasir"}, "Kvasir: 3 images"},
	} {
		code, stdout, stderr := runCLI(t, append([]string{"eval", "--pred", maps}, tc.args...)...)
		if code != 0 || !strings.HasPrefix(stdout, tc.want) {
			t.Errorf("eval %v: exit %d, output %q, want it to begin %q\n%s", tc.args, code, stdout, tc.want, stderr)
		}
	}
}
