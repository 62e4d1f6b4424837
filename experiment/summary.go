package experiment

import (
	"fmt"
	"math"
	"strings"
)

// Summary is an experiment's results in the paper's layout, with the settings they were
// obtained under and the paper's figures beside them. It is written as summary.md and
// summary.json.
type Summary struct {
	Experiment  string      `json:"experiment"`
	Title       string      `json:"title"`
	Settings    Settings    `json:"settings"`
	Reductions  []string    `json:"reductions"`
	Notes       []string    `json:"notes,omitempty"`
	Tables      []Table     `json:"tables"`
	Claims      []Claim     `json:"claims,omitempty"`
	Figure      string      `json:"figure,omitempty"` // the plot's file name, beside summary.md
	Panels      []Panel     `json:"panels,omitempty"` // the figure's panels and their values
	Runs        []RunResult `json:"runs"`
	Complete    bool        `json:"complete"` // every run of every seed finished
	PaperSource string      `json:"paper_source"`
}

// Table is one results table: rows of methods (ours, and the paper's where it has them).
type Table struct {
	Title   string   `json:"title"`
	Paper   string   `json:"paper,omitempty"` // the paper's table and the lines it was transcribed from
	Columns []string `json:"columns"`
	Rows    []Row    `json:"rows"`
	Notes   []string `json:"notes,omitempty"`
}

// Row is a method: our runs' values (mean ± std over seeds) and the paper's, per column.
type Row struct {
	Label    string `json:"label"`
	Backbone string `json:"backbone,omitempty"`
	// Run is the run ID behind Ours; empty for a row of the paper only.
	Run    string `json:"run,omitempty"`
	Status string `json:"status,omitempty"`
	Ours   []Stat `json:"ours,omitempty"`
	// Paper holds the paper's value per column, nil where it gives none.
	Paper         []*float64 `json:"paper,omitempty"`
	PaperBackbone string     `json:"paper_backbone,omitempty"`
}

// Claim is a statement of the paper set against these runs.
type Claim struct {
	Source string `json:"source"` // "Table 1", "Fig. 4(a)"
	Paper  string `json:"paper"`  // what the paper says or shows
	Ours   string `json:"ours"`   // the same comparison in these runs
	// Verdict: "agrees" or "disagrees" with an ordering the paper states, "tie" (equal at the
	// paper's three decimals), or "no verdict" (a similarity the paper does not quantify, or
	// runs not finished).
	Verdict string `json:"verdict"`
}

const (
	agrees    = "agrees"
	disagrees = "disagrees"
	tie       = "tie"
	noVerdict = "no verdict"
)

// archLabels name the architectures as the paper's tables do.
var archLabels = map[string]string{
	"chnet": "CHNet", "unet": "U-Net", "attunet": "Atten-UNet", "utnet": "UTNet", "transunet": "TransUNet", "fcn": "FCN-32s",
}

// archLabel names an architecture, or returns it as given.
func archLabel(a string) string {
	if l, ok := archLabels[a]; ok {
		return l
	}
	return a
}

// ourBackbone is the backbone every chnet network is built on.
const ourBackbone = "R2-50"

// methodRow fills a row's values from a run's results on a test set.
func methodRow(label, id string, res *Results, test string, cols []string) Row {
	r := Row{Label: label, Backbone: ourBackbone, Run: id, Status: res.Status(id)}
	for _, c := range cols {
		r.Ours = append(r.Ours, res.Stat(id, test, c))
	}
	return r
}

// withPaper adds the paper's values of a row.
func (r Row) withPaper(t *PaperTable, pr *PaperRow, cols []string) Row {
	if pr == nil {
		return r
	}
	r.Paper = make([]*float64, len(cols))
	for i, c := range cols {
		if v, ok := t.Value(pr, c); ok {
			r.Paper[i] = &v
		}
	}
	r.PaperBackbone = pr.Backbone
	return r
}

// paperOnlyRow is a method of the paper's table that these runs do not include.
func paperOnlyRow(t *PaperTable, pr *PaperRow, cols []string) Row {
	r := Row{Label: pr.Method}.withPaper(t, pr, cols)
	r.Status = "paper only"
	return r
}

// compare sets two results side by side for an ordering claim "a is at least as good as b" on
// a column, with a verdict on the means; a gap within the larger of the seeds' standard
// deviations is said to be so.
func compare(column, aLabel string, a Stat, bLabel string, b Stat) (string, string) {
	if a.N == 0 || b.N == 0 {
		return fmt.Sprintf("%s %s vs %s %s: no result yet", aLabel, statText(a), bLabel, statText(b)), noVerdict
	}
	gap := a.Mean - b.Mean
	text := fmt.Sprintf("%s: %s %s vs %s %s (%+.4f)", column, aLabel, statText(a), bLabel, statText(b), gap)
	if spread := math.Max(a.Std, b.Std); spread > 0 && math.Abs(gap) < spread {
		text += ", a gap within one standard deviation of the seeds"
	}
	if math.Abs(gap) < 0.0005 {
		return text + ", equal at the paper's three decimals", tie
	}
	if (gap > 0) != lowerIsBetter(column) {
		return text, agrees
	}
	return text, disagrees
}

// similar sets two results side by side for a claim that they are alike; the paper does not
// say how alike, so there is no verdict.
func similar(column, aLabel string, a Stat, bLabel string, b Stat) string {
	if a.N == 0 || b.N == 0 {
		return fmt.Sprintf("%s %s vs %s %s: no result yet", aLabel, statText(a), bLabel, statText(b))
	}
	return fmt.Sprintf("%s: %s %s vs %s %s (%+.4f)", column, aLabel, statText(a), bLabel, statText(b), a.Mean-b.Mean)
}

// statText prints a result as the paper does (three decimals), with ± std over seeds.
func statText(s Stat) string {
	switch {
	case s.N == 0:
		return "—"
	case s.N == 1:
		return fmt.Sprintf("%.3f", s.Mean)
	}
	return fmt.Sprintf("%.3f ± %.3f", s.Mean, s.Std)
}

// Markdown renders the summary.
func (s *Summary) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", s.Title)
	if !s.Complete {
		b.WriteString("**Incomplete: some runs have not finished (their state is listed under Runs); the tables show what has.**\n\n")
	}
	fmt.Fprintf(&b, "Task metrics: %s, %s convention, on %s. Training: %s, %d×%d, %d epochs, batch %d, %d seed(s).\n\n",
		s.Settings.Task, s.Settings.Convention, strings.Join(s.Settings.TestNames(), ", "), s.Settings.Data,
		s.Settings.Size, s.Settings.Size, s.Settings.Epochs, s.Settings.BatchSize, s.Settings.Seeds)
	if len(s.Reductions) > 0 {
		b.WriteString("Departures from the paper's recipe:\n\n")
		for _, r := range s.Reductions {
			fmt.Fprintf(&b, "- %s\n", r)
		}
		b.WriteString("\n")
	}
	for _, n := range s.Notes {
		fmt.Fprintf(&b, "%s\n\n", n)
	}
	for _, t := range s.Tables {
		t.markdown(&b)
	}
	if s.Figure != "" {
		fmt.Fprintf(&b, "![%s](%s)\n\n", s.Figure, s.Figure)
	}
	if len(s.Claims) > 0 {
		b.WriteString("## The paper's claims against these runs\n\n| source | the paper | these runs | verdict |\n|---|---|---|---|\n")
		for _, c := range s.Claims {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", c.Source, c.Paper, c.Ours, c.Verdict)
		}
		b.WriteString("\n")
	}
	b.WriteString("## Runs\n\n| run | seed | state | epochs | training time | backend | folder |\n|---|---:|---|---:|---:|---|---|\n")
	for _, r := range s.Runs {
		fmt.Fprintf(&b, "| %s | %d | %s | %d | %s | %s | %s |\n", r.ID, r.Seed, r.State, r.Epochs, duration(r.TrainSeconds), r.Backend, r.Dir)
	}
	fmt.Fprintf(&b, "\nThe paper's figures: %s.\n", s.PaperSource)
	return b.String()
}

func (t *Table) markdown(b *strings.Builder) {
	fmt.Fprintf(b, "## %s\n\n", t.Title)
	if t.Paper != "" {
		fmt.Fprintf(b, "Paper: %s.\n\n", t.Paper)
	}
	fmt.Fprintf(b, "| method | backbone | source | %s |\n|---|---|---|%s\n", strings.Join(t.Columns, " | "), strings.Repeat("---:|", len(t.Columns)))
	for _, r := range t.Rows {
		if r.Run != "" {
			src := "ours"
			if r.Status != string(StateDone) {
				src += " (" + r.Status + ")"
			}
			cells := make([]string, len(t.Columns))
			for i := range cells {
				cells[i] = "—"
				if i < len(r.Ours) {
					cells[i] = statText(r.Ours[i])
				}
			}
			fmt.Fprintf(b, "| %s | %s | %s | %s |\n", r.Label, r.Backbone, src, strings.Join(cells, " | "))
		}
		if r.Paper != nil {
			cells := make([]string, len(t.Columns))
			for i := range cells {
				cells[i] = "—"
				if i < len(r.Paper) && r.Paper[i] != nil {
					cells[i] = fmt.Sprintf("%.3f", *r.Paper[i])
				}
			}
			label := ""
			if r.Run == "" {
				label = r.Label
			}
			fmt.Fprintf(b, "| %s | %s | paper | %s |\n", label, r.PaperBackbone, strings.Join(cells, " | "))
		}
	}
	b.WriteString("\n")
	for _, n := range t.Notes {
		fmt.Fprintf(b, "%s\n\n", n)
	}
}

// duration prints seconds as h:mm:ss.
func duration(sec float64) string {
	s := int(math.Round(sec))
	return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
}
