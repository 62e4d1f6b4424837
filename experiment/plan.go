// Package experiment runs the paper's experiments — Tables 1, 3/4 and 6 and the decoupling study
// of Section 4 — as sets of ordinary `chnet train` runs in one folder, and writes each
// experiment's summary in the paper's layout beside the paper's own figures.
//
// A folder's runs are named by what they train (runs/<id>/seed<k>), so experiments that need
// the same run share it: Table 1's CHNet is Table 6's 1×1 row and the decoupling study's
// end-to-end CHNet. Finished runs are skipped and interrupted ones resumed with
// `chnet train --resume`, so a killed experiment continues where it stopped.
package experiment

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
)

// The released CHNet head (reference.md §1.1): 1×1 convolutions, 32 wide.
const (
	releasedKernel = 1
	releasedWidth  = 32
)

// ImageNet names, in RunSpec.Frozen, the ImageNet backbone of --backbone-weights (Fig. 4(b)).
const ImageNet = "imagenet"

// RunSpec is one network to train. Its ID names its folder, so equal specs are one run.
type RunSpec struct {
	Arch       string
	HeadKernel int // CHNet only; 0 is the released 1
	HeadWidth  int // CHNet only; 0 is the released 32
	// Frozen, if set, names the run whose trained backbone this run loads and freezes, training
	// only its decoder from a random initialisation (Section 4), or ImageNet.
	Frozen string
}

func (r RunSpec) kernel() int {
	if r.HeadKernel == 0 {
		return releasedKernel
	}
	return r.HeadKernel
}

func (r RunSpec) width() int {
	if r.HeadWidth == 0 {
		return releasedWidth
	}
	return r.HeadWidth
}

// ID is the run's folder name: the architecture, CHNet's head where it is not the released
// one, and "-on-<backbone run>" for a decoder trained on a frozen backbone.
func (r RunSpec) ID() string {
	id := r.Arch
	if r.Arch == "chnet" {
		if k := r.kernel(); k != releasedKernel {
			id += "-k" + strconv.Itoa(k)
		}
		if w := r.width(); w != releasedWidth {
			id += "-w" + strconv.Itoa(w)
		}
	}
	if r.Frozen != "" {
		id += "-on-" + r.Frozen
	}
	return id
}

// Experiment is one table or figure of the paper.
type Experiment struct {
	Name    string // command-line name
	Title   string
	Dataset string // folder under shared/data with the paper's data for it
	Task    string // metric set
	// Runs lists the runs, in the order they are trained (a frozen run after its backbone's).
	Runs func(s Settings) []RunSpec
	// Summarize builds the summary from the runs' results.
	Summarize func(s Settings, res *Results, p *Paper) (*Summary, error)
}

// Experiments are the experiments by name, in the order `chnet experiment` lists them.
func Experiments() []*Experiment {
	return []*Experiment{
		{Name: "table1", Title: "Table 1: CHNet and the medicine-general baselines on the COVID-19 lung set", Dataset: "covid", Task: "lung",
			Runs: archRuns, Summarize: summarizeTable1},
		{Name: "table6", Title: "Table 6: ablation of CHNet's head on the COVID-19 lung set", Dataset: "covid", Task: "lung",
			Runs: table6Runs, Summarize: summarizeTable6},
		{Name: "decoupling", Title: "Section 4, Fig. 3 and 4: encoder-decoder decoupling on the COVID-19 lung set", Dataset: "covid", Task: "lung",
			Runs: decouplingRuns, Summarize: summarizeDecoupling},
		{Name: "polyp", Title: "Tables 3 and 4: CHNet and the baselines on the polyp benchmark (PraNet split)", Dataset: "polyp", Task: "polyp",
			Runs: archRuns, Summarize: summarizePolyp},
	}
}

// Lookup returns the named experiment.
func Lookup(name string) (*Experiment, error) {
	var names []string
	for _, e := range Experiments() {
		if e.Name == name {
			return e, nil
		}
		names = append(names, e.Name)
	}
	return nil, fmt.Errorf("unknown experiment %q (have %v)", name, names)
}

// archRuns trains each architecture of the settings end to end.
func archRuns(s Settings) []RunSpec {
	var r []RunSpec
	for _, a := range s.Archs {
		r = append(r, RunSpec{Arch: a})
	}
	return r
}

// table6Runs: the FCN-32s baseline, then CHNet with 3×3 and 1×1 heads at each head width.
func table6Runs(s Settings) []RunSpec {
	r := []RunSpec{{Arch: "fcn"}}
	for _, w := range s.HeadWidths {
		r = append(r, RunSpec{Arch: "chnet", HeadKernel: 3, HeadWidth: w}, RunSpec{Arch: "chnet", HeadKernel: 1, HeadWidth: w})
	}
	return r
}

// The decoupling study's networks (Section 4): three trained end to end, whose backbones are
// frozen under every decoder.
var (
	decouplingBackbones = []string{"chnet", "unet", "attunet"}
	decouplingDecoders  = []string{"chnet", "fcn", "unet", "attunet"}
)

// decouplingNets are the study's backbones and decoders among the settings' architectures.
func decouplingNets(s Settings) (backbones, decoders []string) {
	for _, a := range decouplingBackbones {
		if slices.Contains(s.Archs, a) {
			backbones = append(backbones, a)
		}
	}
	for _, a := range decouplingDecoders {
		if slices.Contains(s.Archs, a) {
			decoders = append(decoders, a)
		}
	}
	return backbones, decoders
}

// decouplingRuns: CHNet, U-Net and Attention U-Net end to end; every decoder on each of their
// frozen backbones; with ImageNet weights, Attention U-Net's decoder on the ImageNet backbone.
// Networks left out of the settings' architectures are left out of the study.
func decouplingRuns(s Settings) []RunSpec {
	backbones, decoders := decouplingNets(s)
	var r []RunSpec
	for _, bb := range backbones {
		r = append(r, RunSpec{Arch: bb})
	}
	for _, bb := range backbones {
		for _, dec := range decoders {
			r = append(r, RunSpec{Arch: dec, Frozen: bb})
		}
	}
	if s.BackboneWeights != "" && slices.Contains(decoders, "attunet") {
		r = append(r, RunSpec{Arch: "attunet", Frozen: ImageNet})
	}
	return r
}

// RunDir is the folder of a run's seed.
func RunDir(out, id string, seed int) string {
	return filepath.Join(out, "runs", id, "seed"+strconv.Itoa(seed))
}

// trainArgs are the `chnet train` arguments that start a run. data and tests are the folders
// actually trained and tested on (subsets where the settings limit them).
func trainArgs(s Settings, r RunSpec, seed int, out, data string, tests []string) []string {
	a := []string{"train", "--out", RunDir(out, r.ID(), seed), "--data", data}
	for _, t := range tests {
		a = append(a, "--test", t)
	}
	epochs := s.Epochs
	if r.Frozen != "" && s.FrozenEpochs > 0 {
		epochs = s.FrozenEpochs
	}
	a = append(a, "--task", s.Task, "--convention", s.Convention,
		"--size", strconv.Itoa(s.Size), "--epochs", strconv.Itoa(epochs), "--batch-size", strconv.Itoa(s.BatchSize),
		"--val-fraction", strconv.FormatFloat(s.ValFraction, 'g', -1, 64), "--seed", strconv.Itoa(seed), "--arch", r.Arch)
	if r.Arch == "chnet" {
		a = append(a, "--head-kernel", strconv.Itoa(r.kernel()), "--head-width", strconv.Itoa(r.width()))
	}
	switch {
	case r.Frozen == ImageNet:
		a = append(a, "--backbone-weights", s.BackboneWeights, "--freeze-backbone")
	case r.Frozen != "":
		a = append(a, "--init-from", filepath.Join(RunDir(out, r.Frozen, seed), finalCheckpoint), "--freeze-backbone")
	case s.BackboneWeights != "":
		a = append(a, "--backbone-weights", s.BackboneWeights)
	}
	return append(a, workerArgs(s)...)
}

// resumeArgs continue a run: its folder's config.json holds everything else.
func resumeArgs(s Settings, r RunSpec, seed int, out string) []string {
	a := []string{"train", "--out", RunDir(out, r.ID(), seed), "--resume", "--task", s.Task, "--convention", s.Convention}
	return append(a, workerArgs(s)...)
}

func workerArgs(s Settings) []string {
	if s.Workers > 0 {
		return []string{"--workers", strconv.Itoa(s.Workers)}
	}
	return nil
}

// plan is the union of the experiments' runs in order, each once, with its dependency.
func plan(exps []*Experiment, s Settings) []RunSpec {
	var all []RunSpec
	for _, e := range exps {
		for _, r := range e.Runs(s) {
			if !slices.ContainsFunc(all, func(o RunSpec) bool { return o.ID() == r.ID() }) {
				all = append(all, r)
			}
		}
	}
	// A frozen run needs its backbone's run first; the experiments list them in that order, but
	// a union of two experiments might not.
	var ordered []RunSpec
	done := map[string]bool{}
	var visit func(r RunSpec)
	visit = func(r RunSpec) {
		if done[r.ID()] {
			return
		}
		done[r.ID()] = true
		if r.Frozen != "" && r.Frozen != ImageNet {
			visit(RunSpec{Arch: r.Frozen})
		}
		ordered = append(ordered, r)
	}
	for _, r := range all {
		visit(r)
	}
	return ordered
}
