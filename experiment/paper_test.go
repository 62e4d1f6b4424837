package experiment

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/chnet/chnet/internal/golden"
)

// Every transcribed row is on the paper.txt line it names, with its values in order.
func TestPaperTranscription(t *testing.T) {
	p, err := LoadPaper()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(golden.Path(t, "docs/paper.txt"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	rows := 0
	for _, tb := range p.Tables {
		for _, r := range tb.Rows {
			rows++
			if r.Line < 1 || r.Line > len(lines) {
				t.Errorf("%s, %s: line %d out of range", tb.Table, r.Method, r.Line)
				continue
			}
			line := lines[r.Line-1]
			rest := line
			for i, v := range r.Values {
				s := fmt.Sprintf("%.3f", v)
				j := strings.Index(rest, s)
				if j < 0 {
					t.Errorf("%s, %s, %s: %s not in line %d after the previous value: %q", tb.Table, r.Method, tb.Columns[i].Header, s, r.Line, line)
					break
				}
				rest = rest[j+len(s):]
			}
			if name := strings.Fields(strings.NewReplacer("$", " ", "^", " ", "[", " ", "(", " ", "{", " ", "†", " ").Replace(r.Method))[0]; !strings.Contains(line, name) {
				t.Errorf("%s: line %d does not name %s: %q", tb.Table, r.Line, name, line)
			}
		}
	}
	if rows != 7+7+7+3 {
		t.Errorf("%d rows transcribed, want Table 1, 3, 4 (7 each) and Table 6 (3)", rows)
	}
	for _, f := range p.Figures {
		if f.Numbers {
			t.Errorf("%s claims numbers, but paper.txt has none for the figures", f.Figure)
		}
	}
}
