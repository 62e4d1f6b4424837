package train

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Progress shows a training epoch's progress. On a terminal it redraws one line (bar, loss, lr,
// images/s, the epoch's and the run's remaining time) at most every 200 ms, fitted to the
// terminal's width so that it never wraps; elsewhere (a log file, a pipe) it stays silent until
// the epoch's summary line, so redirected output holds no carriage-return frames.
type Progress struct {
	w      io.Writer
	tty    bool
	width  func() int // terminal columns; nil: no limit
	total  int
	epoch  int
	epochs int
	// RunLeft, if set, turns the time left in this epoch and the epoch's estimated length into
	// the time left in the whole run, shown as the total ETA.
	RunLeft func(epochLeft, epochLength time.Duration) time.Duration

	start      time.Time
	fromStep   int // the step the epoch was resumed at: speed counts only this process's steps
	fromImages int
	last       time.Time
	lineLen    int
}

// NewProgress starts an epoch's display of total steps, from step from (0 unless resumed) with
// images already seen. width reports the terminal's columns (nil: no limit).
func NewProgress(w io.Writer, tty bool, width func() int, epoch, epochs, total, from, images int) *Progress {
	return &Progress{w: w, tty: tty, width: width, total: total, epoch: epoch, epochs: epochs, start: time.Now(),
		fromStep: from, fromImages: images}
}

// Start draws the line before the first step finishes, which at large sizes on a CPU takes
// long enough to look like a hang.
func (p *Progress) Start() {
	if !p.tty {
		return
	}
	p.draw([]field{
		{text: fmt.Sprintf("epoch %d/%d", p.epoch, p.epochs)},
		{bar: true},
		{text: fmt.Sprintf("%d/%d", p.fromStep, p.total), drop: 2},
		{text: "first step running…", drop: 1},
	}, p.fromStep)
}

// Update redraws after step done (1-based) with the running mean loss, lr and the images seen
// in the epoch so far.
func (p *Progress) Update(done int, loss, lr float64, images int) {
	if !p.tty {
		return
	}
	now := time.Now()
	if now.Sub(p.last) < 200*time.Millisecond && done < p.total {
		return
	}
	p.last = now
	elapsed := now.Sub(p.start)
	steps := max(done-p.fromStep, 1)
	ips := float64(images-p.fromImages) / elapsed.Seconds()
	perStep := elapsed / time.Duration(steps)
	left := perStep * time.Duration(p.total-done)
	fs := []field{
		{text: fmt.Sprintf("epoch %d/%d", p.epoch, p.epochs)},
		{bar: true},
		{text: fmt.Sprintf("%d/%d", done, p.total), drop: 3},
		{text: fmt.Sprintf("loss %.4f", loss), drop: 4},
		{text: fmt.Sprintf("lr %.5f", lr), drop: 6},
		{text: fmt.Sprintf("%.1f img/s", ips), drop: 5},
		{text: "ETA " + FormatDuration(left.Round(time.Second)), drop: 2},
	}
	if p.RunLeft != nil {
		fs = append(fs, field{text: "total " + FormatDuration(p.RunLeft(left, perStep*time.Duration(p.total)).Round(time.Second)), drop: 1})
	}
	p.draw(fs, done)
}

// field is one part of the progress line; when the line is too wide the fields with the
// highest drop go first (0: never dropped). The bar takes the room the others leave.
type field struct {
	text string
	bar  bool
	drop int
}

// barMin and barMax bound the bar's width inside its brackets.
const barMin, barMax = 8, 24

// fit lays out fields in at most width columns: the bar is as wide as the room left allows
// (up to barMax), and fields are dropped, highest drop first, while even the narrowest bar
// would not fit; the bar itself goes before the fields that are never dropped are cut.
func fit(fs []field, width, done, total int) string {
	if width <= 0 {
		width = 1 << 20
	}
	keep := append([]field(nil), fs...)
	withBar := true
	for {
		textLen, nText := 0, 0
		for _, f := range keep {
			if !f.bar {
				textLen += utf8.RuneCountInString(f.text)
				nText++
			}
		}
		if withBar {
			// nText spaces around the bar and between the fields, 2 brackets.
			if room := width - textLen - nText - 2; room >= barMin {
				return layout(keep, true, min(room, barMax), done, total, width)
			}
		} else if textLen+nText-1 <= width {
			return layout(keep, false, 0, done, total, width)
		}
		worst := -1
		for i, f := range keep {
			if !f.bar && f.drop > 0 && (worst < 0 || f.drop > keep[worst].drop) {
				worst = i
			}
		}
		switch {
		case worst >= 0:
			keep = append(keep[:worst], keep[worst+1:]...)
		case withBar:
			withBar = false
		default:
			return layout(keep, false, 0, done, total, width)
		}
	}
}

// layout joins the fields with single spaces, drawing the bar barWidth wide, and cuts the line
// to width (only fields that are never dropped can still be too wide).
func layout(fs []field, withBar bool, barWidth, done, total, width int) string {
	var parts []string
	for _, f := range fs {
		switch {
		case !f.bar:
			parts = append(parts, f.text)
		case withBar:
			fill := barWidth * done / max(total, 1)
			bar := strings.Repeat("=", fill) + strings.Repeat(" ", barWidth-fill)
			if fill < barWidth && fill > 0 {
				bar = bar[:fill-1] + ">" + bar[fill:]
			}
			parts = append(parts, "["+bar+"]")
		}
	}
	line := strings.Join(parts, " ")
	if utf8.RuneCountInString(line) > width {
		line = string([]rune(line)[:width])
	}
	return line
}

// draw writes the line over the previous one. It stays one column short of the width: a line
// that fills the last column leaves some terminals wrapping on the next character.
func (p *Progress) draw(fs []field, done int) {
	width := 0
	if p.width != nil {
		width = p.width() - 1
	}
	line := fit(fs, width, done, p.total)
	n := utf8.RuneCountInString(line)
	pad := ""
	if n < p.lineLen {
		pad = strings.Repeat(" ", p.lineLen-n)
	}
	p.lineLen = n
	fmt.Fprintf(p.w, "\r%s%s", line, pad)
}

// Clear erases the progress line before a summary is printed.
func (p *Progress) Clear() {
	if p.tty && p.lineLen > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.lineLen))
		p.lineLen = 0
	}
}

// FormatDuration prints a duration compactly (2d03h, 1h02m, 3m04s, 12.3s).
func FormatDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
	case d >= time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}
