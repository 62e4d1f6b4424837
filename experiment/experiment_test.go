package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/chnet/chnet/train/data"
)

// fakeTrain stands in for `chnet train`: it writes the files of a run folder that the runner and
// the summaries read, with metric values derived from the run's folder name, and records every
// command. interrupt and fail name runs (folder name "<id>/seed<k>") to stop or fail once.
type fakeTrain struct {
	mu        sync.Mutex
	calls     [][]string
	interrupt map[string]bool
	fail      map[string]bool
	reject    bool
}

func flagValues(args []string, name string) []string {
	var v []string
	for i := 0; i+1 < len(args); i++ {
		if args[i] == name {
			v = append(v, args[i+1])
		}
	}
	return v
}

func (f *fakeTrain) Launch(ctx context.Context, args []string) error {
	f.mu.Lock()
	f.calls = append(f.calls, args)
	f.mu.Unlock()
	if f.reject {
		return fmt.Errorf("%w (fake)", ErrRejected)
	}
	dir := flagValues(args, "--out")[0]
	key := filepath.Base(filepath.Dir(dir)) + "/" + filepath.Base(dir)
	if !slices.Contains(args, "--resume") {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		cfg, _ := json.Marshal(map[string]any{"backend": "fake", "test": flagValues(args, "--test"), "epochs": flagValues(args, "--epochs")[0]})
		if err := os.WriteFile(filepath.Join(dir, configFile), cfg, 0o644); err != nil {
			return err
		}
	}
	if f.interrupt[key] {
		delete(f.interrupt, key)
		return ErrInterrupted
	}
	if f.fail[key] {
		delete(f.fail, key)
		return errors.New("fake failure")
	}
	var cfg struct {
		Test   []string `json:"test"`
		Epochs string   `json:"epochs"`
	}
	b, err := os.ReadFile(filepath.Join(dir, configFile))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return err
	}
	epochs, _ := strconv.Atoi(cfg.Epochs)
	var recs []string
	for e := 1; e <= epochs; e++ {
		recs = append(recs, fmt.Sprintf(`{"epoch":%d,"seconds":1.5,"train_loss":1}`, e))
	}
	if err := os.WriteFile(filepath.Join(dir, metricsFile), []byte(strings.Join(recs, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	for _, t := range cfg.Test {
		td := filepath.Join(dir, "test", filepath.Base(t))
		if err := os.MkdirAll(td, 0o755); err != nil {
			return err
		}
		var table []map[string]any
		for _, c := range []string{"mDice", "mIoU", "wFm", "Sm", "maxEm", "MAE", "Precision", "Recall"} {
			table = append(table, map[string]any{"Column": c, "Value": fakeValue(key, filepath.Base(t), c)})
		}
		js, _ := json.Marshal(map[string]any{"table": table})
		if err := os.WriteFile(filepath.Join(td, testMetricsJS), js, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(td, testReportMD), []byte("report"), 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, finalCheckpoint), []byte("weights"), 0o644)
}

// fakeValue is a metric value in [0.5, 0.9) that depends on the run, test set and column.
func fakeValue(key, test, col string) float64 {
	h := fnv.New32a()
	fmt.Fprint(h, key, test, col)
	return 0.5 + float64(h.Sum32()%4000)/10000
}

// fakeData writes a tiny dataset folder (n synthetic pairs) named name.
func fakeData(t *testing.T, name string, n int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := data.WriteSynthetic(dir, n, 8, 8, 1); err != nil {
		t.Fatal(err)
	}
	return dir
}

func lungSettings(t *testing.T) Settings {
	s := Defaults("lung")
	s.Data, s.Test = fakeData(t, "train", 6), []string{fakeData(t, "test", 3)}
	s.Epochs = 2
	return s
}

func experiments(t *testing.T, names ...string) []*Experiment {
	t.Helper()
	var out []*Experiment
	for _, n := range names {
		e, err := Lookup(n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func TestPlans(t *testing.T) {
	s := Defaults("lung")
	cases := []struct {
		exps []string
		runs int
	}{
		{[]string{"table1"}, 6},      // five of Table 1's networks and FCN-32s
		{[]string{"table6"}, 5},      // FCN-32s, 3×3 and 1×1 at widths 32 and 128
		{[]string{"decoupling"}, 15}, // 3 end to end + 3 backbones × 4 decoders
		{[]string{"table1", "table6", "decoupling"}, 21},
	}
	for _, c := range cases {
		runs := plan(experiments(t, c.exps...), s)
		if len(runs) != c.runs {
			t.Errorf("%v: %d runs, want %d", c.exps, len(runs), c.runs)
		}
		seen := map[string]int{}
		for i, r := range runs {
			if _, dup := seen[r.ID()]; dup {
				t.Errorf("%v: run %s twice", c.exps, r.ID())
			}
			seen[r.ID()] = i
			if r.Frozen != "" {
				if j, ok := seen[r.Frozen]; !ok || j > i {
					t.Errorf("%v: %s runs before its backbone's run %s", c.exps, r.ID(), r.Frozen)
				}
			}
		}
	}
	// Table 6 after the decoupling study still trains the backbones first.
	runs := plan(experiments(t, "decoupling", "table6"), s)
	if runs[0].ID() != "chnet" {
		t.Errorf("first run %s, want chnet", runs[0].ID())
	}
	s.BackboneWeights = "imagenet.pth"
	if n := len(decouplingRuns(s)); n != 16 {
		t.Errorf("decoupling with ImageNet weights: %d runs, want 16 (Fig. 4(b)'s ImageNet backbone added)", n)
	}
	p := Defaults("polyp")
	if n := len(plan(experiments(t, "polyp"), p)); n != 5 {
		t.Errorf("polyp: %d runs, want 5", n)
	}
	ids := map[string]string{}
	for _, r := range append(table6Runs(Defaults("lung")), decouplingRuns(s)...) {
		ids[r.ID()] = strings.Join(trainArgs(s, r, 0, "/out", "/d", []string{"/t"}), " ")
	}
	for id, want := range map[string]string{
		"chnet-k3-w128":       "--arch chnet --head-kernel 3 --head-width 128",
		"chnet":               "--arch chnet --head-kernel 1 --head-width 32 --backbone-weights imagenet.pth",
		"fcn-on-unet":         "--arch fcn --init-from /out/runs/unet/seed0/checkpoint_final.safetensors --freeze-backbone",
		"attunet-on-imagenet": "--arch attunet --backbone-weights imagenet.pth --freeze-backbone",
		"chnet-on-attunet":    "--arch chnet --head-kernel 1 --head-width 32 --init-from /out/runs/attunet/seed0/",
		"unet-on-chnet":       "--task lung --convention matlab --size 352 --epochs 200 --batch-size 16 --val-fraction 0 --seed 0",
		"attunet-on-attunet":  "train --out /out/runs/attunet-on-attunet/seed0 --data /d --test /t",
		"chnet-w128":          "--head-width 128",
	} {
		if !strings.Contains(ids[id], want) {
			t.Errorf("%s: command %q lacks %q", id, ids[id], want)
		}
	}
}

// Every experiment, at its default networks, writes a summary with every row and column of
// the paper's table, the paper's figures beside ours, and (decoupling) the figure.
func TestSummariesHaveEveryRowAndColumn(t *testing.T) {
	cases := []struct {
		exp   string
		task  string
		rows  []string
		cols  []string
		paper []string // figures of the paper that must appear
	}{
		{"table1", "lung", []string{"U-Net", "Atten-UNet", "UTNet", "TransUNet", "Inf-Net†", "BCS-Net†", "CHNet (ours)", "FCN-32s"},
			[]string{"mDice", "Precision", "Recall", "Sm", "MAE"}, []string{"0.725 | 0.744 | 0.810 | 0.819 | 0.010", "0.800 | 0.816 | 0.830 | 0.846 | 0.006"}},
		{"table6", "lung", []string{"Baseline (FCN-32s)", "CHNet (3×3 Conv), head width 32", "CHNet (1×1 Conv), head width 32",
			"CHNet (3×3 Conv), head width 128", "CHNet (1×1 Conv), head width 128"},
			[]string{"mDice", "Precision", "Recall", "Sm", "MAE"}, []string{"0.666 | — | — | 0.799 | —", "0.796 | — | — | 0.843", "0.601", "0.655"}},
		{"decoupling", "lung", []string{"backbone of end-to-end CHNet", "backbone of end-to-end U-Net", "backbone of end-to-end Atten-UNet", "end to end",
			"FCN-32s decoder on the frozen U-Net backbone", "Fig. 3(a)", "Fig. 3(b)", "Fig. 4(a)", "Fig. 4(b)"},
			[]string{"CHNet | FCN-32s | U-Net | Atten-UNet", "mDice", "MAE"}, nil},
		{"polyp", "polyp", []string{"Table 3: CVC-ClinicDB", "Table 4: Kvasir", "U-Net", "Atten-UNet", "UTNet", "TransUNet", "PraNet†", "SANet†", "CHNet (ours)"},
			[]string{"mDice", "mIoU", "wFm", "Sm", "maxEm", "MAE"}, []string{"0.926 | 0.882 | 0.915 | 0.946 | 0.969 | 0.009", "0.855 | 0.790 | 0.830 | 0.880 | 0.918 | 0.042"}},
	}
	for _, c := range cases {
		t.Run(c.exp, func(t *testing.T) {
			s := Defaults(c.task)
			s.Data, s.Epochs = fakeData(t, "train", 4), 3
			if c.task == "polyp" {
				s.Test = []string{fakeData(t, "CVC-ClinicDB", 2), fakeData(t, "Kvasir", 2)}
			} else {
				s.Test = []string{fakeData(t, "test", 2)}
			}
			out := t.TempDir()
			fake := &fakeTrain{}
			oc, err := Run(context.Background(), experiments(t, c.exp), Options{Out: out, Settings: s, Launcher: fake})
			if err != nil {
				t.Fatal(err)
			}
			if len(oc.Summaries) != 1 || !oc.Summaries[0].Complete {
				t.Fatalf("summaries %+v", oc.Summaries)
			}
			md, err := os.ReadFile(filepath.Join(out, c.exp, "summary.md"))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range append(append(c.rows, c.cols...), c.paper...) {
				if !strings.Contains(string(md), want) {
					t.Errorf("summary.md lacks %q", want)
				}
			}
			// Each run's first test value appears, formatted as the paper prints them.
			for _, r := range experiments(t, c.exp)[0].Runs(s) {
				v := fakeValue(r.ID()+"/seed0", filepath.Base(s.Test[0]), "mDice")
				if !strings.Contains(string(md), fmt.Sprintf("%.3f", v)) {
					t.Errorf("summary.md lacks %s's mDice %.3f", r.ID(), v)
				}
			}
			if strings.Contains(string(md), "Incomplete") {
				t.Error("summary.md says incomplete after every run finished")
			}
			var sum Summary
			b, err := os.ReadFile(filepath.Join(out, c.exp, "summary.json"))
			if err != nil || json.Unmarshal(b, &sum) != nil || len(sum.Tables) == 0 || len(sum.Reductions) == 0 {
				t.Errorf("summary.json: %v %+v", err, sum)
			}
			if c.exp == "decoupling" {
				if st, err := os.Stat(filepath.Join(out, c.exp, decouplingFigure)); err != nil || st.Size() < 1000 {
					t.Errorf("%s: %v", decouplingFigure, err)
				}
				if len(sum.Panels) != 4 {
					t.Errorf("%d panels, want Fig. 3(a), 3(b), 4(a), 4(b)", len(sum.Panels))
				}
			}
			if !strings.Contains(string(md), "3 epochs (paper: ") {
				t.Error("the epoch reduction is not listed")
			}
		})
	}
}
