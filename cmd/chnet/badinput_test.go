package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chnet/chnet/internal/badinput"
	"github.com/chnet/chnet/train"
)

// The generated bad-input corpus through every command (issue 9, cases 6, 8, 11): training
// stops before its first epoch listing every bad file at once, or with --skip-bad leaves them
// out and counts them; test and predict do the good samples and list the bad; nothing hangs
// (a FIFO named like an image), nothing panics or runs out of memory (decompression bombs).
func TestBadInputCorpus(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bad")
	bad, err := badinput.WriteDataset(dir, 4, 32, 32)
	if err != nil {
		t.Fatal(err)
	}
	var header, decode []badinput.Bad
	for _, b := range bad {
		if b.Stage == badinput.Header {
			header = append(header, b)
		} else {
			decode = append(decode, b)
		}
	}
	// mentions checks that some line of text names each file with its defect.
	mentions := func(what, text string, bs []badinput.Bad) {
		t.Helper()
		lines := strings.Split(text, "\n")
		for _, b := range bs {
			found := false
			for _, l := range lines {
				if strings.Contains(l, b.Path) && strings.Contains(l, b.Want) {
					found = true
				}
			}
			if !found {
				t.Errorf("%s has no line naming %s (%s) with %q", what, b.Path, b.Kind, b.Want)
			}
		}
	}
	trainArgs := func(out string) []string {
		return []string{"train", "--data", dir, "--out", out, "--epochs", "1", "--batch-size", "2", "--size", "32", "--sizes", "32", "--val-fraction", "0"}
	}

	refused := filepath.Join(t.TempDir(), "refused")
	code, stderr, _ := childRun(t, "", trainArgs(refused)...)
	if code != exitData || !strings.Contains(stderr, "--skip-bad") {
		t.Fatalf("train on the corpus: exit %d, want %d suggesting --skip-bad\n%s", code, exitData, stderr)
	}
	mentions("train's refusal", stderr, header)
	if _, err := os.Stat(filepath.Join(refused, "config.json")); err == nil {
		t.Error("the refused run wrote config.json: it started")
	}

	run := filepath.Join(t.TempDir(), "run")
	code, stderr, _ = childRun(t, "", append(trainArgs(run), "--skip-bad")...)
	if code != 0 {
		t.Fatalf("train --skip-bad: exit %d\n%s", code, stderr)
	}
	mentions("train --skip-bad's log", stderr, bad)
	for _, want := range []string{"left out " + itoa(len(header)) + " samples", "left out " + itoa(len(decode)) + " training samples that do not decode",
		"data: 4 training and 0 validation images"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("train --skip-bad does not say %q:\n%s", want, stderr)
		}
	}
	ckpt := filepath.Join(run, train.FinalName)

	testOut := filepath.Join(t.TempDir(), "test")
	code, stderr, _ = childRun(t, "", "test", "-m", ckpt, "-o", testOut, dir)
	if code != exitData {
		t.Fatalf("test on the corpus: exit %d, want %d\n%s", code, exitData, stderr)
	}
	mentions("test's list", stderr, bad)
	var m struct {
		Images  int      `json:"images"`
		LeftOut []string `json:"left_out"`
	}
	if b, err := os.ReadFile(filepath.Join(testOut, "bad", "metrics.json")); err != nil || json.Unmarshal(b, &m) != nil || m.Images != 4 || len(m.LeftOut) != len(bad) {
		t.Errorf("test's metrics.json: %d images, %d left out (%v); want 4 and %d", m.Images, len(m.LeftOut), err, len(bad))
	}

	// predict reads only images: the bad ones are those on the image side, and the two images
	// sharing a name, whose maps would overwrite each other.
	var badImages []badinput.Bad
	for _, b := range bad {
		switch {
		case b.Kind == "ambiguous":
			twice := filepath.Join(dir, "images", "twice.png")
			badImages = append(badImages, badinput.Bad{Path: b.Path, Want: "would both write"}, badinput.Bad{Path: twice, Want: "would both write"})
		case filepath.Base(filepath.Dir(b.Path)) == "images" && b.Kind != "orphan-image":
			badImages = append(badImages, b)
		}
	}
	predOut := filepath.Join(t.TempDir(), "pred")
	code, stderr, _ = childRun(t, "", "predict", "-m", ckpt, "-o", predOut, filepath.Join(dir, "images"))
	if code != exitData {
		t.Fatalf("predict on the corpus: exit %d, want %d\n%s", code, exitData, stderr)
	}
	mentions("predict's list", stderr, badImages)
	if !strings.Contains(stderr, itoa(len(badImages))+" samples could not be used") {
		t.Errorf("predict does not count %d bad images:\n%s", len(badImages), stderr)
	}
	for i := 0; i < 4; i++ {
		if _, err := os.Stat(filepath.Join(predOut, "good_0"+itoa(i)+".png")); err != nil {
			t.Errorf("predict skipped a good image: %v", err)
		}
	}

	// eval of the masks against themselves: every bad mask is listed at once, nothing scored.
	code, stderr, _ = childRun(t, "", "eval", "--pred", filepath.Join(dir, "masks"), "--gt", filepath.Join(dir, "masks"))
	if code != exitData || !strings.Contains(stderr, "nothing was scored") {
		t.Errorf("eval of the corpus masks: exit %d, want %d\n%s", code, exitData, stderr)
	}
	for _, name := range []string{"mask_bomb.png", "labels.png", "mask_truncated.png"} {
		if !strings.Contains(stderr, name) {
			t.Errorf("eval does not name %s:\n%s", name, stderr)
		}
	}

	// Broken model files fail at once, naming the file.
	models := t.TempDir()
	ck, err := os.ReadFile(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	half := filepath.Join(models, "half.safetensors")
	text := filepath.Join(models, "text.pth")
	folder := filepath.Join(models, "folder.safetensors")
	os.WriteFile(half, ck[:len(ck)/2], 0o644)
	os.WriteFile(text, []byte("not a checkpoint"), 0o644)
	os.Mkdir(folder, 0o755)
	for _, tc := range []struct {
		model string
		code  int
	}{{half, exitData}, {text, exitData}, {folder, exitData}, {"/dev/zero", exitData}, {filepath.Join(models, "missing.safetensors"), exitNoInput}} {
		code, stderr, _ := childRun(t, "", "predict", "-m", tc.model, "-o", t.TempDir(), filepath.Join(dir, "images", "good_00.png"))
		if code != tc.code || !strings.Contains(stderr, tc.model) {
			t.Errorf("predict -m %s: exit %d, want %d naming the file\n%s", tc.model, code, tc.code, stderr)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
