package experiment

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/chnet/chnet/train"
)

// Names of the files a `chnet train` run folder holds.
const (
	finalCheckpoint = "checkpoint_final.safetensors"
	configFile      = "config.json"
	metricsFile     = "metrics.jsonl"
)

// RunState is where a run's seed stands.
type RunState string

const (
	StateNew      RunState = "pending"     // nothing started
	StatePartial  RunState = "interrupted" // started, not finished: resumed with train --resume
	StateDone     RunState = "done"        // trained and tested on every test set
	StateFailed   RunState = "failed"      // failed in this invocation (its train.log says why)
	StateBlocked  RunState = "blocked"     // its backbone's run did not finish
	testReportMD           = "report.md"   // written last by a test, so it marks a finished one
	testMetricsJS          = "metrics.json"
)

// runState inspects a run folder: done when its final checkpoint and every test set's report
// exist, interrupted when it has a config.json, else pending.
func runState(dir string, tests []string) RunState {
	if _, err := os.Stat(filepath.Join(dir, finalCheckpoint)); err == nil {
		done := true
		for _, t := range tests {
			if _, err := os.Stat(filepath.Join(dir, "test", t, testReportMD)); err != nil {
				done = false
			}
		}
		if done {
			return StateDone
		}
		return StatePartial
	}
	if _, err := os.Stat(filepath.Join(dir, configFile)); err == nil {
		return StatePartial
	}
	return StateNew
}

// RunResult is one seed of one run: its state, test metrics and training time.
type RunResult struct {
	ID     string   `json:"id"`
	Seed   int      `json:"seed"`
	Dir    string   `json:"dir"`
	State  RunState `json:"state"`
	Epochs int      `json:"epochs_done"`
	// TrainSeconds sums the epochs' recorded times (it leaves out model building and testing).
	TrainSeconds float64 `json:"train_seconds"`
	// Metrics[test set][column] holds the task's columns of each finished test.
	Metrics map[string]map[string]float64 `json:"metrics,omitempty"`
	Backend string                        `json:"backend,omitempty"`
}

// Results are every run of a folder that the experiments name, read from disk.
type Results struct {
	Runs  map[string][]RunResult // by run ID, one per seed
	Tests []string               // test set names
	Task  string
}

// collect reads the runs' folders.
// failed holds the runs ("<id>/seed<k>") that failed or were blocked in this invocation.
func collect(out string, runs []RunSpec, s Settings, failed map[string]RunState) (*Results, error) {
	res := &Results{Runs: map[string][]RunResult{}, Tests: s.TestNames(), Task: s.Task}
	for _, r := range runs {
		for seed := 0; seed < s.Seeds; seed++ {
			rr, err := readRun(RunDir(out, r.ID(), seed), res.Tests)
			if err != nil {
				return nil, err
			}
			rr.ID, rr.Seed = r.ID(), seed
			if st, ok := failed[runKey(r.ID(), seed)]; ok && rr.State != StateDone {
				rr.State = st
			}
			res.Runs[r.ID()] = append(res.Runs[r.ID()], rr)
		}
	}
	return res, nil
}

func runKey(id string, seed int) string { return fmt.Sprintf("%s/seed%d", id, seed) }

// readRun reads one run folder's state, epochs and test metrics.
func readRun(dir string, tests []string) (RunResult, error) {
	rr := RunResult{Dir: dir, State: runState(dir, tests), Metrics: map[string]map[string]float64{}}
	recs, err := train.ReadRecords(filepath.Join(dir, metricsFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return rr, fmt.Errorf("%s: %w", dir, err)
	}
	for _, r := range recs {
		rr.TrainSeconds += r.Seconds
		rr.Epochs = max(rr.Epochs, r.Epoch)
	}
	if b, err := os.ReadFile(filepath.Join(dir, configFile)); err == nil {
		var c struct {
			Backend string `json:"backend"`
		}
		if json.Unmarshal(b, &c) == nil {
			rr.Backend = c.Backend
		}
	}
	if rr.State != StateDone {
		return rr, nil
	}
	for _, t := range tests {
		path := filepath.Join(dir, "test", t, testMetricsJS)
		b, err := os.ReadFile(path)
		if err != nil {
			return rr, err
		}
		var m struct {
			Table []struct {
				Column string
				Value  float64
			} `json:"table"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			return rr, fmt.Errorf("%s: %w", path, err)
		}
		cols := map[string]float64{}
		for _, c := range m.Table {
			cols[c.Column] = c.Value
		}
		rr.Metrics[t] = cols
	}
	return rr, nil
}

// Stat is a metric over a run's seeds: the mean and sample standard deviation of the seeds that
// finished.
type Stat struct {
	Mean   float64   `json:"mean"`
	Std    float64   `json:"std"` // 0 with one value
	N      int       `json:"n"`   // finished seeds; 0: no value
	Values []float64 `json:"values,omitempty"`
}

// newStat summarises values.
func newStat(v []float64) Stat {
	s := Stat{N: len(v), Values: v}
	if s.N == 0 {
		return s
	}
	for _, x := range v {
		s.Mean += x
	}
	s.Mean /= float64(s.N)
	if s.N > 1 {
		var ss float64
		for _, x := range v {
			ss += (x - s.Mean) * (x - s.Mean)
		}
		s.Std = math.Sqrt(ss / float64(s.N-1))
	}
	return s
}

// Stat is a run's metric column on a test set over its finished seeds.
func (r *Results) Stat(id, test, column string) Stat {
	var v []float64
	for _, rr := range r.Runs[id] {
		if x, ok := rr.Metrics[test][column]; ok {
			v = append(v, x)
		}
	}
	return newStat(v)
}

// Status describes a run over its seeds: "done", or how many seeds stand where.
func (r *Results) Status(id string) string {
	rs := r.Runs[id]
	count := map[RunState]int{}
	for _, rr := range rs {
		count[rr.State]++
	}
	if count[StateDone] == len(rs) {
		return string(StateDone)
	}
	if len(rs) == 1 {
		return string(rs[0].State)
	}
	var parts []string
	for _, st := range []RunState{StateDone, StatePartial, StateFailed, StateBlocked, StateNew} {
		if count[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d of %d %s", count[st], len(rs), st))
		}
	}
	return strings.Join(parts, ", ")
}

// all returns every run result, in plan order then seed.
func (r *Results) all(runs []RunSpec) []RunResult {
	var out []RunResult
	for _, s := range runs {
		out = append(out, r.Runs[s.ID()]...)
	}
	return out
}

// columns are a task's metric columns in the order the paper prints them.
var columns = map[string][]string{
	"lung":  {"mDice", "Precision", "Recall", "Sm", "MAE"},
	"polyp": {"mDice", "mIoU", "wFm", "Sm", "maxEm", "MAE"},
}

// lowerIsBetter marks the metrics where smaller is better.
func lowerIsBetter(column string) bool { return slices.Contains([]string{"MAE"}, column) }
