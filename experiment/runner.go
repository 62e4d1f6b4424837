package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chnet/chnet/internal/atomicfile"
	"github.com/chnet/chnet/internal/dirlock"
)

// Options say where and how experiments run.
type Options struct {
	Out      string // the experiments' folder: settings, data samples, runs/, one folder per summary
	Settings Settings
	Launcher Launcher  // starts chnet train (Exec)
	Log      io.Writer // progress; also appended to Out/experiment.log
	// DryRun prints each run's state and the command that would continue it; nothing is
	// trained or written.
	DryRun bool
	// SummaryOnly writes the summaries from the runs on disk without training anything.
	SummaryOnly bool
}

// Outcome is what a call to Run did.
type Outcome struct {
	Summaries []*Summary
	Started   int      // runs started or resumed
	Failed    []string // runs (id/seed) that failed or could not start
}

// Run trains every run of the experiments that has not finished — skipping finished ones,
// resuming interrupted ones — then writes each experiment's summary under Out/<name>. A run that
// fails is reported and the others go on (runs on its backbone are blocked); a run interrupted
// by a signal stops the whole experiment, which the same command continues later.
func Run(ctx context.Context, exps []*Experiment, o Options) (*Outcome, error) {
	s := o.Settings
	for _, e := range exps {
		if e.Task != s.Task {
			return nil, fmt.Errorf("experiment %s is scored as %s, the settings as %s: run it in a folder of its own", e.Name, e.Task, s.Task)
		}
		if len(e.Runs(s)) == 0 {
			return nil, fmt.Errorf("experiment %s has no runs with the architectures %v", e.Name, s.Archs)
		}
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := s.Absolute(); err != nil {
		return nil, err
	}
	out, err := filepath.Abs(o.Out)
	if err != nil {
		return nil, err
	}
	paper, err := LoadPaper()
	if err != nil {
		return nil, err
	}
	readOnly := o.DryRun || o.SummaryOnly
	if o.SummaryOnly {
		// The folder's runs define what to summarise: take its recorded settings, keeping the
		// choice of networks and the seeds asked for.
		if saved, err := readFolderSettings(out); err == nil {
			saved.Archs, saved.HeadWidths, saved.Seeds = s.Archs, s.HeadWidths, max(s.Seeds, saved.Seeds)
			s = saved
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	if !readOnly {
		if err := os.MkdirAll(out, 0o755); err != nil {
			return nil, err
		}
		unlock, err := dirlock.Lock(out)
		if err != nil {
			return nil, fmt.Errorf("experiment folder %s: %w", out, err)
		}
		defer unlock()
	}
	if err := checkFolderSettings(out, s, readOnly); err != nil {
		return nil, err
	}
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	if !readOnly {
		f, err := os.OpenFile(filepath.Join(out, "experiment.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		log = io.MultiWriter(log, f)
	}
	trainDir, testDirs, err := prepareData(out, s, readOnly)
	if err != nil {
		return nil, err
	}
	runs := plan(exps, s)
	names := make([]string, len(exps))
	for i, e := range exps {
		names[i] = e.Name
	}
	stamp := func() string { return time.Now().Format("2006-01-02 15:04:05") }
	fmt.Fprintf(log, "%s experiment %s in %s: %d runs × %d seed(s)\n", stamp(), strings.Join(names, ", "), out, len(runs), s.Seeds)

	oc := &Outcome{}
	failed := map[string]RunState{}
	// summarize rewrites the summaries; the figures, slower to draw, only when final.
	summarize := func(final bool) error {
		oc.Summaries = oc.Summaries[:0]
		for _, e := range exps {
			sum, err := writeSummary(out, e, s, paper, failed, !o.DryRun, final)
			if err != nil {
				return fmt.Errorf("summary of %s: %w", e.Name, err)
			}
			oc.Summaries = append(oc.Summaries, sum)
		}
		return nil
	}
	if o.SummaryOnly {
		return oc, summarize(true)
	}
	tests := s.TestNames()
	for seed := 0; seed < s.Seeds; seed++ {
		for _, r := range runs {
			if ctx.Err() != nil {
				if serr := summarize(true); serr != nil {
					fmt.Fprintf(log, "%v\n", serr)
				}
				return oc, ErrInterrupted
			}
			key, dir := runKey(r.ID(), seed), RunDir(out, r.ID(), seed)
			state := runState(dir, tests)
			if state == StateDone {
				fmt.Fprintf(log, "%s %s: finished, skipped\n", stamp(), key)
				continue
			}
			if r.Frozen != "" && r.Frozen != ImageNet {
				dep := runKey(r.Frozen, seed)
				if st, bad := failed[dep]; bad || (!o.DryRun && runState(RunDir(out, r.Frozen, seed), tests) != StateDone) {
					if !bad {
						st = StateNew
					}
					fmt.Fprintf(log, "%s %s: blocked: its backbone's run %s is %s\n", stamp(), key, dep, st)
					failed[key] = StateBlocked
					oc.Failed = append(oc.Failed, key)
					continue
				}
			}
			args := trainArgs(s, r, seed, out, trainDir, testDirs)
			verb := "starting"
			if state == StatePartial {
				args, verb = resumeArgs(s, r, seed, out), "resuming"
			}
			if o.DryRun {
				fmt.Fprintf(log, "%s (%s): chnet %s\n", key, state, strings.Join(args, " "))
				continue
			}
			fmt.Fprintf(log, "%s %s: %s\n", stamp(), key, verb)
			start := time.Now()
			oc.Started++
			err := o.Launcher.Launch(ctx, args)
			if err == nil && runState(dir, tests) != StateDone {
				err = fmt.Errorf("chnet train ended without %s and a test report for each of %v in %s", finalCheckpoint, tests, dir)
			}
			switch {
			case errors.Is(err, ErrInterrupted) || (err != nil && ctx.Err() != nil):
				fmt.Fprintf(log, "%s %s: interrupted after %s; the same command continues it\n", stamp(), key, time.Since(start).Round(time.Second))
				if serr := summarize(true); serr != nil {
					fmt.Fprintf(log, "%v\n", serr)
				}
				return oc, ErrInterrupted
			case errors.Is(err, ErrRejected):
				fmt.Fprintf(log, "%s %s: %v\n", stamp(), key, err)
				return oc, err
			case err != nil:
				fmt.Fprintf(log, "%s %s: FAILED after %s: %v (its train.log says more; the next invocation retries it)\n", stamp(), key, time.Since(start).Round(time.Second), err)
				failed[key] = StateFailed
				oc.Failed = append(oc.Failed, key)
			default:
				fmt.Fprintf(log, "%s %s: finished in %s\n", stamp(), key, time.Since(start).Round(time.Second))
			}
			if err := summarize(false); err != nil {
				return oc, err
			}
		}
	}
	if err := summarize(true); err != nil {
		return oc, err
	}
	if len(oc.Failed) > 0 {
		return oc, fmt.Errorf("%d run(s) failed or were blocked: %s", len(oc.Failed), strings.Join(oc.Failed, ", "))
	}
	return oc, nil
}

// writeSummary collects an experiment's runs and writes summary.md, summary.json and (with
// figure) its figure under out/<name>, when write is set.
func writeSummary(out string, e *Experiment, s Settings, p *Paper, failed map[string]RunState, write, figure bool) (*Summary, error) {
	res, err := collect(out, e.Runs(s), s, failed)
	if err != nil {
		return nil, err
	}
	sum, err := e.Summarize(s, res, p)
	if err != nil {
		return nil, err
	}
	if !write {
		return sum, nil
	}
	dir := filepath.Join(out, e.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(filepath.Join(dir, "summary.md"), []byte(sum.Markdown())); err != nil {
		return nil, err
	}
	js, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(filepath.Join(dir, "summary.json"), append(js, '\n')); err != nil {
		return nil, err
	}
	if sum.Figure != "" && figure {
		if err := PlotPanels(filepath.Join(dir, sum.Figure), sum.Panels); err != nil {
			return nil, err
		}
	}
	return sum, nil
}
