package train

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Issue 11, point 1: nothing said how long a run would take. After its first steps a run logs,
// once, the measured time per step, per epoch and for the run; every epoch line but the last
// carries the run's total ETA; the terminal's bar shows it too.
func TestEstimateAndTotalETA(t *testing.T) {
	dir := t.TempDir()
	tr := newTinyTrainer(t, dir, newMemData(8, 32, 2), 3) // 4 steps per epoch
	var log, term bytes.Buffer
	tr.Log, tr.Term, tr.TTY, tr.Width = &log, &term, true, func() int { return 200 }
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	est := regexp.MustCompile(`estimate: \S+ per step \(measured on 2 steps after the first\) on cpu: \S+ per epoch of 4 steps, about \S+ left of this run of 3 epochs`)
	var estimates, epochs []string
	for _, l := range lines {
		switch {
		case strings.Contains(l, "estimate:"):
			estimates = append(estimates, l)
		case strings.Contains(l, "epoch ") && strings.Contains(l, " loss "):
			epochs = append(epochs, l)
		}
	}
	if len(estimates) != 1 || !est.MatchString(estimates[0]) {
		t.Fatalf("want one estimate line matching %v, got %q", est, estimates)
	}
	if strings.Index(log.String(), "estimate:") > strings.Index(log.String(), "epoch 1/3") {
		t.Error("the estimate comes after the first epoch's line")
	}
	// An epoch of 2 steps is too short for a mid-epoch measurement: its mean is used.
	var short bytes.Buffer
	tr2 := newTinyTrainer(t, t.TempDir(), newMemData(4, 32, 2), 1)
	tr2.Log = &short
	if err := tr2.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(short.String(), "per step (the mean of this epoch's 2 steps, warm-up included)") {
		t.Errorf("short epoch: %s", short.String())
	}
	if len(epochs) != 3 {
		t.Fatalf("epoch lines: %q", epochs)
	}
	for i, l := range epochs {
		if has := strings.Contains(l, "total ETA "); has != (i < 2) {
			t.Errorf("epoch %d line %q: total ETA shown %v, want %v", i+1, l, has, i < 2)
		}
	}
	if !strings.Contains(term.String(), "total ") || !strings.Contains(term.String(), "first step running") {
		t.Errorf("the bar shows no total ETA or no first frame: %q", term.String())
	}
}

// The run's remaining time is the epoch's remaining time plus whole epochs at the mean length
// of those measured (or, before any, at the current epoch's length).
func TestEpochLength(t *testing.T) {
	tr := &Trainer{}
	if got := tr.epochLength(7 * time.Second); got != 7*time.Second {
		t.Errorf("no epoch measured: %v, want the guess", got)
	}
	tr.epochTimes = []time.Duration{10 * time.Second, 20 * time.Second}
	if got := tr.epochLength(7 * time.Second); got != 15*time.Second {
		t.Errorf("measured 10 s and 20 s: %v, want 15 s", got)
	}
}
