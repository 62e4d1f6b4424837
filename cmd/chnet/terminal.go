package main

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/term"
)

// termWriter is stderr on a terminal: it folds each line to the terminal's width at spaces,
// continuing with an indent, so that an epoch summary of 140 characters reads as two lines at
// 80 columns instead of wrapping mid-word. The log file gets the same lines whole (train.log is
// written separately). Text is held until its line ends.
type termWriter struct {
	mu    sync.Mutex
	w     io.Writer  // the terminal
	width func() int // its columns
	buf   []byte
}

// newStderr is the app's ErrWriter: stderr, folded to its width when it is a terminal.
func newStderr() io.Writer {
	if !term.IsTerminal(int(os.Stderr.Fd())) {
		return os.Stderr
	}
	return &termWriter{w: os.Stderr, width: func() int { return columns(os.Stderr) }}
}

// columns is a terminal's width: asked of the terminal each time (it may be resized), else
// $COLUMNS, else 80.
func columns(f *os.File) int {
	if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
		return w
	}
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return 80
}

// terminalOf says whether w is a terminal, and if so returns its width and the raw writer the
// progress line redraws on.
func terminalOf(w io.Writer) (tty bool, width func() int, raw io.Writer) {
	switch t := w.(type) {
	case *termWriter:
		return true, t.width, t.w
	case *os.File:
		if term.IsTerminal(int(t.Fd())) {
			return true, func() int { return columns(t) }, t
		}
	}
	return false, nil, w
}

func (t *termWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	for {
		i := bytes.IndexByte(t.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(t.buf[:i])
		t.buf = t.buf[i+1:]
		if _, err := io.WriteString(t.w, fold(line, t.width())+"\n"); err != nil {
			return len(p), err
		}
	}
}

// fold breaks line into lines of at most width characters, at spaces where it can (a word
// longer than a line is cut), continuing with a four-space indent.
func fold(line string, width int) string {
	const indent = "    "
	if width <= len(indent)+8 || utf8.RuneCountInString(line) <= width {
		return line
	}
	var lines []string
	var cur []rune
	hasWord := false
	for _, word := range strings.Fields(line) {
		r := []rune(word)
		if hasWord {
			if len(cur)+1+len(r) <= width {
				cur = append(append(cur, ' '), r...)
				continue
			}
			lines = append(lines, string(cur))
			cur, hasWord = []rune(indent), false
		}
		for len(cur)+len(r) > width {
			k := width - len(cur)
			lines = append(lines, string(cur)+string(r[:k]))
			cur, r = []rune(indent), r[k:]
		}
		cur, hasWord = append(cur, r...), true
	}
	if hasWord {
		lines = append(lines, string(cur))
	}
	return strings.Join(lines, "\n")
}
