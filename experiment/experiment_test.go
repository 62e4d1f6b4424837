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

// commands lists the fake's calls as "<run>/<seed> start|resume".
func (f *fakeTrain) commands() []string {
	var out []string
	for _, a := range f.calls {
		dir := flagValues(a, "--out")[0]
		verb := "start"
		if slices.Contains(a, "--resume") {
			verb = "resume"
		}
		out = append(out, filepath.Base(filepath.Dir(dir))+"/"+filepath.Base(dir)+" "+verb)
	}
	f.calls = nil
	return out
}

// An interrupted experiment stops at once; run again, it skips what finished, resumes the
// interrupted run with train --resume and starts the rest.
func TestInterruptedExperimentContinues(t *testing.T) {
	s := lungSettings(t)
	s.Archs, s.Seeds = []string{"chnet", "fcn", "unet"}, 2
	out := t.TempDir()
	fake := &fakeTrain{interrupt: map[string]bool{"fcn/seed0": true}}
	exps := experiments(t, "table1")
	_, err := Run(context.Background(), exps, Options{Out: out, Settings: s, Launcher: fake})
	if !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: err %v, want ErrInterrupted", err)
	}
	if got, want := fake.commands(), []string{"chnet/seed0 start", "fcn/seed0 start"}; !slices.Equal(got, want) {
		t.Errorf("first invocation ran %v, want %v", got, want)
	}
	md, _ := os.ReadFile(filepath.Join(out, "table1", "summary.md"))
	if !strings.Contains(string(md), "Incomplete") || !strings.Contains(string(md), "| fcn | 0 | interrupted |") {
		t.Errorf("the summary of an interrupted experiment does not say so:\n%s", md)
	}
	// Seeds go outer: every network's seed 0 before any seed 1.
	oc, err := Run(context.Background(), exps, Options{Out: out, Settings: s, Launcher: fake})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"fcn/seed0 resume", "unet/seed0 start", "chnet/seed1 start", "fcn/seed1 start", "unet/seed1 start"}
	if got := fake.commands(); !slices.Equal(got, want) {
		t.Errorf("continuation ran %v, want %v", got, want)
	}
	if oc.Started != 5 || !oc.Summaries[0].Complete {
		t.Errorf("started %d, complete %v", oc.Started, oc.Summaries[0].Complete)
	}
	// Two seeds give mean ± sample std.
	md, _ = os.ReadFile(filepath.Join(out, "table1", "summary.md"))
	a, b := fakeValue("unet/seed0", "test", "mDice"), fakeValue("unet/seed1", "test", "mDice")
	st := newStat([]float64{a, b})
	if want := fmt.Sprintf("%.3f ± %.3f", (a+b)/2, st.Std); !strings.Contains(string(md), want) {
		t.Errorf("summary.md lacks U-Net's %s", want)
	}
	// A third invocation has nothing left to do.
	if _, err := Run(context.Background(), exps, Options{Out: out, Settings: s, Launcher: fake}); err != nil || len(fake.commands()) != 0 {
		t.Errorf("finished experiment: err %v, ran again", err)
	}
}

// A failed run does not stop the others, but the runs on its backbone wait; the next
// invocation retries it. A command line chnet rejects stops the experiment at once.
func TestFailedRunsAndRejectedSettings(t *testing.T) {
	s := lungSettings(t)
	s.Archs = []string{"chnet", "unet", "fcn"}
	out := t.TempDir()
	fake := &fakeTrain{fail: map[string]bool{"unet/seed0": true}}
	exps := experiments(t, "decoupling")
	oc, err := Run(context.Background(), exps, Options{Out: out, Settings: s, Launcher: fake})
	if err == nil || !strings.Contains(err.Error(), "unet/seed0") || len(oc.Failed) != 1+3 {
		t.Fatalf("err %v, failed %v: want unet/seed0 failed and its three decoders blocked", err, oc.Failed)
	}
	got := fake.commands()
	if slices.Contains(got, "chnet-on-unet/seed0 start") || !slices.Contains(got, "unet-on-chnet/seed0 start") {
		t.Errorf("ran %v: want the runs on chnet's backbone and none on unet's", got)
	}
	md, _ := os.ReadFile(filepath.Join(out, "decoupling", "summary.md"))
	for _, want := range []string{"| unet | 0 | failed |", "| fcn-on-unet | 0 | blocked |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("summary.md lacks %q", want)
		}
	}
	if _, err := Run(context.Background(), exps, Options{Out: out, Settings: s, Launcher: fake}); err != nil {
		t.Fatal(err)
	}
	if got, want := fake.commands(), []string{"unet/seed0 resume", "chnet-on-unet/seed0 start", "fcn-on-unet/seed0 start", "unet-on-unet/seed0 start"}; !slices.Equal(got, want) {
		t.Errorf("retry ran %v, want %v", got, want)
	}

	rejected := &fakeTrain{reject: true}
	if _, err := Run(context.Background(), exps, Options{Out: t.TempDir(), Settings: s, Launcher: rejected}); !errors.Is(err, ErrRejected) || len(rejected.calls) != 1 {
		t.Errorf("rejected: err %v after %d runs, want ErrRejected after 1", err, len(rejected.calls))
	}
}

// A folder's runs belong to the settings they were started with; more seeds may be added.
func TestFolderSettings(t *testing.T) {
	s := lungSettings(t)
	s.Archs = []string{"chnet"}
	out := t.TempDir()
	exps := experiments(t, "table1")
	if _, err := Run(context.Background(), exps, Options{Out: out, Settings: s, Launcher: &fakeTrain{}}); err != nil {
		t.Fatal(err)
	}
	other := s
	other.Epochs, other.Size = 5, 128
	_, err := Run(context.Background(), exps, Options{Out: out, Settings: other, Launcher: &fakeTrain{}})
	if !errors.Is(err, ErrSettingsDiffer) || !strings.Contains(err.Error(), "epochs was 2, now 5") || !strings.Contains(err.Error(), "size was 352, now 128") {
		t.Errorf("other settings: %v", err)
	}
	more := s
	more.Seeds = 2
	fake := &fakeTrain{}
	if _, err := Run(context.Background(), exps, Options{Out: out, Settings: more, Launcher: fake}); err != nil {
		t.Fatal(err)
	}
	if got := fake.commands(); !slices.Equal(got, []string{"chnet/seed1 start"}) {
		t.Errorf("adding a seed ran %v", got)
	}
	// A summary alone takes the folder's settings, whatever the scale flags say.
	os.Remove(filepath.Join(out, "table1", "summary.md"))
	oc, err := Run(context.Background(), exps, Options{Out: out, Settings: other, Launcher: fake, SummaryOnly: true})
	if err != nil || len(fake.calls) != 0 || !oc.Summaries[0].Complete || oc.Summaries[0].Settings.Epochs != 2 {
		t.Errorf("summary only: %v, %d runs started", err, len(fake.calls))
	}
	if _, err := os.Stat(filepath.Join(out, "table1", "summary.md")); err != nil {
		t.Error(err)
	}
	// The dry run writes nothing and starts nothing.
	dry := t.TempDir()
	var log strings.Builder
	if _, err := Run(context.Background(), experiments(t, "decoupling"), Options{Out: dry, Settings: s, Launcher: fake, DryRun: true, Log: &log}); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dry); len(ents) != 0 || len(fake.calls) != 0 || !strings.Contains(log.String(), "chnet-on-chnet/seed0 (pending): chnet train --out") {
		t.Errorf("dry run: wrote %d entries, ran %d, printed\n%s", len(ents), len(fake.calls), log.String())
	}
	bad := s
	bad.Size = 48
	if _, err := Run(context.Background(), exps, Options{Out: t.TempDir(), Settings: bad, Launcher: fake}); err == nil || !strings.Contains(err.Error(), "at least 51") {
		t.Errorf("size 48: %v", err)
	}
}

// A limit trains and tests on a seeded sample linked into the experiment folder, made once.
func TestSampledData(t *testing.T) {
	s := lungSettings(t)
	s.Archs, s.Limit, s.TestLimit = []string{"chnet"}, 4, 2
	out := t.TempDir()
	fake := &fakeTrain{}
	if _, err := Run(context.Background(), experiments(t, "table1"), Options{Out: out, Settings: s, Launcher: fake}); err != nil {
		t.Fatal(err)
	}
	args := fake.calls[0]
	trainDir, testDir := flagValues(args, "--data")[0], flagValues(args, "--test")[0]
	if trainDir != filepath.Join(out, "data", "train") || filepath.Base(testDir) != "test" || !strings.HasPrefix(testDir, out) {
		t.Fatalf("ran on %s and %s", trainDir, testDir)
	}
	for _, c := range []struct {
		dir, src string
		n        int
	}{{trainDir, s.Data, 4}, {testDir, s.Test[0], 2}} {
		ds, _, err := data.List(c.dir, data.ListOptions{})
		if err != nil || len(ds.Pairs) != c.n {
			t.Fatalf("%s: %v, want %d pairs", c.dir, err, c.n)
		}
		if target, err := os.Readlink(ds.Pairs[0].Image); err != nil || !strings.HasPrefix(target, c.src+string(filepath.Separator)) {
			t.Errorf("%s is not a link to the original (%q, %v)", ds.Pairs[0].Image, target, err)
		}
	}
	md, _ := os.ReadFile(filepath.Join(out, "table1", "summary.md"))
	for _, want := range []string{"at most 4 training images", "at most 2 images per test set"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("summary.md does not state %q", want)
		}
	}
}

func TestCompareVerdicts(t *testing.T) {
	one := func(v float64) Stat { return newStat([]float64{v}) }
	cases := []struct {
		col     string
		a, b    Stat
		verdict string
	}{
		{"mDice", one(0.8), one(0.7), agrees},
		{"mDice", one(0.7), one(0.8), disagrees},
		{"mDice", one(0.7001), one(0.7), tie},
		{"MAE", one(0.01), one(0.02), agrees}, // lower is better
		{"MAE", one(0.03), one(0.02), disagrees},
		{"mDice", Stat{}, one(0.7), noVerdict},
	}
	for _, c := range cases {
		if _, v := compare(c.col, "a", c.a, "b", c.b); v != c.verdict {
			t.Errorf("%s %v vs %v: %s, want %s", c.col, c.a.Values, c.b.Values, v, c.verdict)
		}
	}
	st := newStat([]float64{0.70, 0.74, 0.72})
	if st.N != 3 || st.Mean < 0.7199 || st.Mean > 0.7201 || st.Std < 0.01999 || st.Std > 0.02001 {
		t.Errorf("stat %+v: want mean 0.72, sample std 0.02", st)
	}
	if text, _ := compare("mDice", "a", newStat([]float64{0.70, 0.74}), "b", one(0.71)); !strings.Contains(text, "within one standard deviation") {
		t.Errorf("a gap inside the seeds' spread is not said so: %s", text)
	}
}
