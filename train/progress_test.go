package train

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Issue 11, point 2: at 80 columns every update of the bar printed a new wrapped line. Each
// frame is fitted to the width: with the widest values a run can show, no frame is wider than
// the terminal, the epoch and the run's total ETA stay, and a wide terminal shows everything.
func TestProgressFitsTheWidth(t *testing.T) {
	for _, width := range []int{24, 40, 60, 80, 100, 200} {
		var buf bytes.Buffer
		p := NewProgress(&buf, true, func() int { return width }, 200, 200, 99999, 0, 0)
		p.RunLeft = func(left, epoch time.Duration) time.Duration { return 400 * time.Hour }
		p.Start()
		for _, done := range []int{1, 5000, 99998, 99999} {
			p.last = time.Time{} // no throttling: every call draws
			p.start = time.Now().Add(-30 * time.Hour)
			p.Update(done, 12345.6789, 0.049019, done*1000)
		}
		p.Clear()
		frames := regexp.MustCompile("[\r\n]").Split(buf.String(), -1)
		if len(frames) < 5 {
			t.Fatalf("width %d: %d frames drawn", width, len(frames))
		}
		var last string
		for _, f := range frames {
			if n := utf8.RuneCountInString(f); n > width-1 {
				t.Errorf("width %d: a %d-character frame: %q", width, n, f)
			}
			if strings.HasPrefix(f, "epoch") {
				last = f
			}
		}
		if width >= 60 && (!strings.Contains(last, "epoch 200/200") || !strings.Contains(last, "total 16d16h")) {
			t.Errorf("width %d: the last frame lacks the epoch or the total ETA: %q", width, last)
		}
		if width >= 200 {
			for _, want := range []string{"[========================]", "99999/99999", "loss 12345.6789", "lr 0.04902", "img/s", "ETA 0.0s", "total 16d16h"} {
				if !strings.Contains(last, want) {
					t.Errorf("width %d: the last frame lacks %q: %q", width, want, last)
				}
			}
		}
	}
}

// A redirected stderr (no terminal) gets no frames at all.
func TestProgressSilentOffTerminal(t *testing.T) {
	var buf bytes.Buffer
	p := NewProgress(&buf, false, func() int { return 80 }, 1, 1, 2, 0, 0)
	p.Start()
	p.Update(2, 1, 0.01, 4)
	p.Clear()
	if buf.Len() != 0 {
		t.Fatalf("wrote %q off a terminal", buf.String())
	}
}
