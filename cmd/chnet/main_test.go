package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chnet/chnet/train"
	"github.com/chnet/chnet/train/data"
	"github.com/urfave/cli/v2"
)

// runCLI runs the CLI in-process and returns its exit code, stdout and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	app := newApp()
	var out, errb bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errb
	code := 0
	if err := app.Run(append([]string{"chnet", "--backend", "cpu"}, args...)); err != nil {
		errb.WriteString(message(err))
		code = exitCode(err)
	}
	checkFlagNames(t, args, errb.String())
	return code, out.String(), errb.String()
}

// tinyData writes n synthetic samples of size s to a temporary dataset folder.
func tinyData(t *testing.T, n, s int, seed uint64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if err := data.WriteSynthetic(dir, n, s, s, seed); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestTrainTestEvalPredict(t *testing.T) {
	dataDir, testDir := tinyData(t, 8, 64, 1), tinyData(t, 3, 64, 2)
	run := filepath.Join(t.TempDir(), "run")
	code, _, stderr := runCLI(t, "train", "--data", dataDir, "--test", testDir, "--out", run, "--epochs", "2",
		"--batch-size", "4", "--size", "64", "--sizes", "64", "--val-fraction", "0.25")
	if code != 0 {
		t.Fatalf("train exited %d: %s", code, stderr)
	}
	for _, f := range []string{"config.json", "train.log", "metrics.jsonl", "progress.png", "splits.json",
		train.LatestName, train.BestName, train.FinalName, "test/data/metrics.json", "test/data/report.md", "test/data/per_image.csv"} {
		if _, err := os.Stat(filepath.Join(run, f)); err != nil {
			t.Errorf("run folder lacks %s", f)
		}
	}
	if md, err := os.ReadFile(filepath.Join(run, "test", "data", "report.md")); err != nil || !strings.Contains(string(md), "| polyp metrics | value |\n|---|---:|\n| mDice |") {
		t.Errorf("report.md does not open with the polyp table: %v\n%s", err, md)
	}
	rs, err := train.ReadRecords(filepath.Join(run, "metrics.jsonl"))
	if err != nil || len(rs) != 2 || rs[1].Val["dice"] < 0 {
		t.Fatalf("metrics.jsonl: %v %v", rs, err)
	}
	if code, _, stderr := runCLI(t, "train", "--out", run, "--resume"); code != 0 || !strings.Contains(stderr, "already finished 2 epochs") {
		t.Errorf("resuming a finished run: exit %d, %q", code, stderr)
	}
	if code, _, stderr := runCLI(t, "train", "--out", run, "--resume", "--epochs", "3"); code != exitUsage || !strings.Contains(stderr, "--epochs") {
		t.Errorf("resuming with a different --epochs: exit %d, %q", code, stderr)
	}
	if code, _, stderr := runCLI(t, "train", "--data", dataDir, "--out", run); code != exitUsage || !strings.Contains(stderr, "--resume") {
		t.Errorf("training into an existing run without --resume: exit %d, %q", code, stderr)
	}

	// eval re-scores the saved maps to the numbers test printed.
	maps := filepath.Join(run, "test", "data", "maps")
	code, out, stderr := runCLI(t, "eval", "--pred", maps, "--gt", testDir, "--format", "csv")
	if code != 0 || !strings.Contains(out, "mDice") {
		t.Fatalf("eval exited %d: %s %s", code, out, stderr)
	}

	ckpt := filepath.Join(run, train.FinalName)
	pred := filepath.Join(t.TempDir(), "pred")
	code, out, stderr = runCLI(t, "predict", "-m", ckpt, "-o", pred, "--threshold", "0.5", "--overlay", filepath.Join(testDir, "images"))
	if code != 0 || strings.Count(out, "\n") != 3 {
		t.Fatalf("predict exited %d: %q %s", code, out, stderr)
	}
	for _, suffix := range []string{".png", "_mask.png", "_overlay.png"} {
		if _, err := os.Stat(filepath.Join(pred, "synth_0000"+suffix)); err != nil {
			t.Errorf("predict did not write synth_0000%s", suffix)
		}
	}
}

func TestUsageErrorsNameTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"train", "--epochs", "0"}, "--epochs"},
		{[]string{"train", "--size", "16"}, "--size"},
		{[]string{"train", "--loss", "dice"}, "--loss"},
		{[]string{"train", "--arch", "resnet"}, "--arch"},
		{[]string{"train", "--head-kernel", "5"}, "head kernel"},
		{[]string{"train", "--val-fraction", "1.5"}, "--val-fraction"},
		{[]string{"eval", "--pred", "x", "--gt", "y", "--convention", "bogus"}, "--convention"},
		{[]string{"bench", "flops", "--size", "10"}, "--size"},
		{[]string{"convert", "a.pth", "-o", "b"}, "put flags first"},
		// Issue 9, case 10: urfave's own errors exited 1, and NaN passed the range checks.
		{[]string{"train", "--momentum", "NaN"}, "--momentum"},
		{[]string{"train", "--weight-decay", "NaN"}, "--weight-decay"},
		{[]string{"train", "--weight-decay", "+Inf"}, "--weight-decay"},
		{[]string{"train", "--val-fraction", "NaN"}, "--val-fraction"},
		{[]string{"train", "--lr", "NaN"}, "--lr"},
		{[]string{"predict", "-m", "x", "--threshold", "NaN", "y"}, "--threshold"},
		{[]string{"train", "--bogus"}, "--bogus"},
		{[]string{"train", "--epochs", "x"}, "--epochs"},
		{[]string{"eval", "--pred"}, "--pred"},
		{[]string{"test", "dir"}, "missing --model"},
		{[]string{"bogus"}, "unknown command"},
		{[]string{"bench", "bogus"}, "unknown command"},
		{[]string{"train", "--max-pixels", "0"}, "--max-pixels"},
	} {
		code, _, stderr := runCLI(t, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, stderr, exitUsage, tc.want)
		}
	}
	// A refused command must not have written anything (such as a run folder).
	if _, err := os.Stat("runs"); err == nil {
		os.RemoveAll("runs")
		t.Error("a refused train command created ./runs")
	}
}

func TestBadDataIsDataError(t *testing.T) {
	dir := tinyData(t, 4, 64, 3)
	// An orphan image: pairing must fail naming it, not drop it silently.
	if err := os.Remove(filepath.Join(dir, "masks", "synth_0001.png")); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "train", "--data", dir, "--out", filepath.Join(t.TempDir(), "r"), "--epochs", "1", "--size", "64")
	if code != exitData || !strings.Contains(stderr, "synth_0001") {
		t.Errorf("orphan image: exit %d, %q", code, stderr)
	}
	code, _, stderr = runCLI(t, "eval", "--pred", filepath.Join(dir, "images"), "--gt", filepath.Join(t.TempDir(), "missing"))
	if code == 0 {
		t.Errorf("eval of a missing folder succeeded: %q", stderr)
	}
}

// The decoupling study: a decoder trained on a frozen backbone taken from another run leaves
// that backbone's weights exactly as loaded.
func TestFrozenBackboneFromAnotherRun(t *testing.T) {
	dataDir := tinyData(t, 4, 64, 4)
	src := filepath.Join(t.TempDir(), "fcn")
	args := []string{"--data", dataDir, "--epochs", "1", "--batch-size", "4", "--size", "64", "--sizes", "64", "--val-fraction", "0"}
	if code, _, stderr := runCLI(t, append([]string{"train", "--arch", "fcn", "--out", src}, args...)...); code != 0 {
		t.Fatalf("train fcn: %s", stderr)
	}
	dst := filepath.Join(t.TempDir(), "chnet")
	if code, _, stderr := runCLI(t, append([]string{"train", "--out", dst, "--freeze-backbone", "--init-from", filepath.Join(src, train.FinalName)}, args...)...); code != 0 {
		t.Fatalf("train chnet on the frozen fcn backbone: %s", stderr)
	}
	a, err := train.LoadCheckpoint(filepath.Join(src, train.FinalName))
	if err != nil {
		t.Fatal(err)
	}
	b, err := train.LoadCheckpoint(filepath.Join(dst, train.FinalName))
	if err != nil {
		t.Fatal(err)
	}
	same, head := 0, 0
	for name, w := range b.Model.Tensors {
		if !strings.HasPrefix(name, "encode") {
			head++
			continue
		}
		v := a.Model.Tensors[name]
		if len(v.Data) != len(w.Data) {
			t.Fatalf("%s missing from the source run", name)
		}
		for i := range w.Data {
			if w.Data[i] != v.Data[i] {
				t.Fatalf("frozen backbone tensor %s changed at %d: %v -> %v", name, i, v.Data[i], w.Data[i])
			}
		}
		same++
	}
	if same == 0 || head == 0 {
		t.Fatalf("compared %d backbone and %d head tensors", same, head)
	}
}

var flagRef = regexp.MustCompile(`--([a-z][a-z0-9-]*)`)

// checkFlagNames fails the test when text names a flag that the command run with args does not
// have (issue 9, case 10: messages suggested --max-pixels, which did not exist, and --skip-bad
// to `test`, which has no such flag). Flags the user typed may be quoted back.
func checkFlagNames(t *testing.T, args []string, text string) {
	t.Helper()
	app := newApp()
	known := map[string]bool{"help": true, "version": true}
	add := func(fs []cli.Flag) {
		for _, f := range fs {
			for _, n := range f.Names() {
				known[n] = true
			}
		}
	}
	add(app.Flags)
	cmds := app.Commands
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--backend" || a == "--device" {
			i++
			continue
		}
		if strings.HasPrefix(a, "-") {
			known[strings.TrimLeft(strings.SplitN(a, "=", 2)[0], "-")] = true
			continue
		}
		for _, c := range cmds {
			if c.Name == a {
				add(c.Flags)
				cmds = c.Subcommands
				break
			}
		}
	}
	for _, m := range flagRef.FindAllStringSubmatch(text, -1) {
		if !known[m[1]] {
			t.Errorf("chnet %v names --%s, which it does not have:\n%s", args, m[1], text)
		}
	}
}
