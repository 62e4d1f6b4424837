package experiment

import (
	_ "embed"
	"encoding/json"
	"fmt"
)

// paper.json is the paper's numbers transcribed from shared/docs/paper.txt, each table and row
// with the lines it came from, so a summary can set them beside a run's.
//
//go:embed paper.json
var paperJSON []byte

// Paper is the transcription in paper.json.
type Paper struct {
	Source  string        `json:"source"`
	Tables  []PaperTable  `json:"tables"`
	Figures []PaperFigure `json:"figures"`
}

// PaperTable is one results table of the paper.
type PaperTable struct {
	Table   string        `json:"table"` // "Table 1"
	Caption string        `json:"caption"`
	TestSet string        `json:"test_set,omitempty"` // the test folder's name where a table is one of several sets
	Lines   string        `json:"lines"`
	Columns []PaperColumn `json:"columns"`
	Rows    []PaperRow    `json:"rows"`
}

// PaperColumn is a column header as printed and the task metric it reports ("" if unknown).
type PaperColumn struct {
	Header string `json:"header"`
	Metric string `json:"metric"`
	Note   string `json:"note,omitempty"`
}

// PaperRow is one method's line. Arch names the network chnet trains as it ("" for the
// medicine-specific methods chnet does not implement); HeadKernel tells Table 6's CHNet rows apart.
type PaperRow struct {
	Method     string    `json:"method"`
	Backbone   string    `json:"backbone,omitempty"`
	Arch       string    `json:"arch,omitempty"`
	HeadKernel int       `json:"head_kernel,omitempty"`
	Line       int       `json:"line"`
	Values     []float64 `json:"values"`
	Note       string    `json:"note,omitempty"`
}

// PaperFigure is what the text says a figure shows: the figures themselves are images whose
// numbers paper.txt does not hold.
type PaperFigure struct {
	Figure  string `json:"figure"`
	Lines   string `json:"lines"`
	Numbers bool   `json:"numbers"`
	Text    string `json:"text"`
}

// LoadPaper parses the embedded transcription and checks that every row has one value per column.
func LoadPaper() (*Paper, error) {
	var p Paper
	if err := json.Unmarshal(paperJSON, &p); err != nil {
		return nil, fmt.Errorf("paper.json: %w", err)
	}
	for _, t := range p.Tables {
		for _, r := range t.Rows {
			if len(r.Values) != len(t.Columns) {
				return nil, fmt.Errorf("paper.json: %s, %s: %d values for %d columns", t.Table, r.Method, len(r.Values), len(t.Columns))
			}
		}
	}
	return &p, nil
}

// Table returns the named table.
func (p *Paper) Table(name string) (*PaperTable, error) {
	for i := range p.Tables {
		if p.Tables[i].Table == name {
			return &p.Tables[i], nil
		}
	}
	return nil, fmt.Errorf("paper.json has no %s", name)
}

// Figure returns the named figure's description, or nil.
func (p *Paper) Figure(name string) *PaperFigure {
	for i := range p.Figures {
		if p.Figures[i].Figure == name {
			return &p.Figures[i]
		}
	}
	return nil
}

// Row finds the row for an architecture (and, for Table 6, a head kernel; 0 matches any).
func (t *PaperTable) Row(arch string, headKernel int) *PaperRow {
	for i := range t.Rows {
		r := &t.Rows[i]
		if r.Arch != "" && r.Arch == arch && (r.HeadKernel == 0 || headKernel == 0 || r.HeadKernel == headKernel) {
			return r
		}
	}
	return nil
}

// Value returns a row's value for a task metric ("mDice", "Sm", …), if the table reports it.
func (t *PaperTable) Value(r *PaperRow, metric string) (float64, bool) {
	if r == nil {
		return 0, false
	}
	for i, c := range t.Columns {
		if c.Metric != "" && c.Metric == metric {
			return r.Values[i], true
		}
	}
	return 0, false
}
