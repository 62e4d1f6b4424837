package train

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Progress shows a training epoch's progress. On a terminal it redraws one line (bar, loss, lr,
// images/s, ETA) at most every 200 ms; elsewhere (a log file, a pipe) it stays silent until the
// epoch's summary line, so redirected output holds no carriage-return frames.
type Progress struct {
	w        io.Writer
	tty      bool
	total    int
	epoch    int
	epochs   int
	start    time.Time
	last     time.Time
	lineLen  int
	finished int
}

// NewProgress starts an epoch's display of total steps.
func NewProgress(w io.Writer, tty bool, epoch, epochs, total int) *Progress {
	return &Progress{w: w, tty: tty, total: total, epoch: epoch, epochs: epochs, start: time.Now()}
}

// Update redraws after step done (1-based) with the running mean loss, lr and throughput.
// remainingEpochs estimates the time after this epoch from this epoch's speed.
func (p *Progress) Update(done int, loss, lr float64, images int) {
	p.finished = done
	if !p.tty {
		return
	}
	now := time.Now()
	if now.Sub(p.last) < 200*time.Millisecond && done < p.total {
		return
	}
	p.last = now
	elapsed := now.Sub(p.start)
	ips := float64(images) / elapsed.Seconds()
	eta := time.Duration(float64(elapsed) / float64(done) * float64(p.total-done))
	const width = 24
	fill := width * done / max(p.total, 1)
	bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
	if fill < width && fill > 0 {
		bar = bar[:fill-1] + ">" + bar[fill:]
	}
	line := fmt.Sprintf("epoch %d/%d [%s] %d/%d loss %.4f lr %.5f %.1f img/s ETA %s",
		p.epoch, p.epochs, bar, done, p.total, loss, lr, ips, eta.Round(time.Second))
	pad := ""
	if len(line) < p.lineLen {
		pad = strings.Repeat(" ", p.lineLen-len(line))
	}
	p.lineLen = len(line)
	fmt.Fprintf(p.w, "\r%s%s", line, pad)
}

// Clear erases the progress line before a summary is printed.
func (p *Progress) Clear() {
	if p.tty && p.lineLen > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.lineLen))
		p.lineLen = 0
	}
}

// FormatDuration prints a duration compactly (1h02m, 3m04s, 12.3s).
func FormatDuration(d time.Duration) string {
	switch {
	case d >= time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}
