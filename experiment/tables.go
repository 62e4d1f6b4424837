package experiment

import (
	"fmt"
	"slices"
	"strings"
)

// newSummary starts a summary with what every experiment reports.
func newSummary(name, title string, s Settings, res *Results, runs []RunSpec, p *Paper) *Summary {
	sum := &Summary{Experiment: name, Title: title, Settings: s, Reductions: s.Reductions(), PaperSource: p.Source,
		Runs: res.all(runs), Complete: true}
	for _, r := range sum.Runs {
		if r.State != StateDone {
			sum.Complete = false
		}
	}
	sum.Notes = append(sum.Notes, "Every network here is built on chnet's Res2Net-50 (v1 26w_4s through layer3, as CHNet's released code); "+
		"UTNet's and TransUNet's transformer layers sit on it (the paper's tables name their backbone R-50 + ViT-B16).")
	return sum
}

// archTable is a comparison table in the paper's row order: each of its methods that was run,
// with the paper's values beside ours, the methods not run as the paper's alone, then the
// runs the paper's table does not have.
func archTable(title string, pt *PaperTable, archs []string, res *Results, test string, cols []string) Table {
	t := Table{Title: title, Columns: cols}
	used := map[string]bool{}
	if pt != nil {
		t.Paper = fmt.Sprintf("%s, %s (%s)", pt.Table, pt.Caption, pt.Lines)
		for i := range pt.Rows {
			pr := &pt.Rows[i]
			if pr.Arch != "" && slices.Contains(archs, pr.Arch) && !used[pr.Arch] {
				used[pr.Arch] = true
				t.Rows = append(t.Rows, methodRow(oursLabel(pr.Arch), pr.Arch, res, test, cols).withPaper(pt, pr, cols))
				continue
			}
			t.Rows = append(t.Rows, paperOnlyRow(pt, pr, cols))
		}
	}
	for _, a := range archs {
		if !used[a] {
			t.Rows = append(t.Rows, methodRow(oursLabel(a), a, res, test, cols))
		}
	}
	return t
}

// oursLabel names a network in a comparison table, where the paper calls CHNet "Ours".
func oursLabel(a string) string {
	if a == "chnet" {
		return "CHNet (ours)"
	}
	return archLabel(a)
}

// chnetClaims: CHNet at least as good in mDice as each other network of the paper's table.
func chnetClaims(source string, pt *PaperTable, archs []string, res *Results, test string) []Claim {
	if pt == nil || !slices.Contains(archs, "chnet") {
		return nil
	}
	cv, ok := pt.Value(pt.Row("chnet", 0), "mDice")
	if !ok {
		return nil
	}
	var out []Claim
	for _, a := range archs {
		av, ok := pt.Value(pt.Row(a, 0), "mDice")
		if a == "chnet" || !ok {
			continue // a network the table does not have makes no claim
		}
		ours, verdict := compare("mDice", "CHNet", res.Stat("chnet", test, "mDice"), archLabel(a), res.Stat(a, test, "mDice"))
		out = append(out, Claim{Source: source, Paper: fmt.Sprintf("CHNet %.3f vs %s %.3f in mDice", cv, archLabel(a), av), Ours: ours, Verdict: verdict})
	}
	return out
}

// testLabel names a test set in a table's title.
func testLabel(res *Results, test string) string {
	if len(res.Tests) == 1 {
		return ""
	}
	return ", test set " + test
}

func summarizeTable1(s Settings, res *Results, p *Paper) (*Summary, error) {
	pt, err := p.Table("Table 1")
	if err != nil {
		return nil, err
	}
	e, _ := Lookup("table1")
	sum := newSummary(e.Name, e.Title, s, res, archRuns(s), p)
	cols := columns["lung"]
	for _, test := range res.Tests {
		t := archTable("Table 1: COVID-19 lung"+testLabel(res, test), pt, s.Archs, res, test, cols)
		if slices.Contains(s.Archs, "fcn") {
			t.Notes = append(t.Notes, "FCN-32s is not in the paper's Table 1: it is Table 6's baseline (mDice 0.666 there; see table6 for CHNet against it).")
		}
		sum.Tables = append(sum.Tables, t)
		sum.Claims = append(sum.Claims, chnetClaims("Table 1", pt, s.Archs, res, test)...)
	}
	sum.Notes = append(sum.Notes, "Inf-Net and BCS-Net (medicine-specific, †) are not implemented in chnet: their rows are the paper's alone. "+
		"The paper's lung set merges MedSeg and Zenodo 3757476 (894 training, 383 test images); the set here is Inf-Net's MedSeg split "+
		"(shared/data/covid: 50 training, 48 test slices), so the numbers are not directly comparable even at the full recipe.")
	return sum, nil
}

func summarizePolyp(s Settings, res *Results, p *Paper) (*Summary, error) {
	e, _ := Lookup("polyp")
	sum := newSummary(e.Name, e.Title, s, res, archRuns(s), p)
	cols := columns["polyp"]
	for _, test := range res.Tests {
		var pt *PaperTable
		for i := range p.Tables {
			if p.Tables[i].TestSet == test {
				pt = &p.Tables[i]
			}
		}
		title := "test set " + test + " (no table of the paper has it)"
		source := test
		if pt != nil {
			title = fmt.Sprintf("%s: %s", pt.Table, test)
			source = pt.Table
		}
		sum.Tables = append(sum.Tables, archTable(title, pt, s.Archs, res, test, cols))
		sum.Claims = append(sum.Claims, chnetClaims(source, pt, s.Archs, res, test)...)
	}
	sum.Notes = append(sum.Notes, "PraNet and SANet (medicine-specific, †) are not implemented in chnet: their rows are the paper's alone.")
	return sum, nil
}

// table6Label names a Table 6 row of ours.
func table6Label(r RunSpec, widths int) string {
	if r.Arch == "fcn" {
		return "Baseline (FCN-32s)"
	}
	l := fmt.Sprintf("CHNet (%d×%d Conv)", r.kernel(), r.kernel())
	if widths > 1 || r.width() != releasedWidth {
		l += fmt.Sprintf(", head width %d", r.width())
	}
	return l
}

func summarizeTable6(s Settings, res *Results, p *Paper) (*Summary, error) {
	pt, err := p.Table("Table 6")
	if err != nil {
		return nil, err
	}
	e, _ := Lookup("table6")
	runs := table6Runs(s)
	sum := newSummary(e.Name, e.Title, s, res, runs, p)
	cols := columns["lung"]
	for _, test := range res.Tests {
		t := Table{Title: "Table 6: COVID-19 lung" + testLabel(res, test), Columns: cols,
			Paper: fmt.Sprintf("%s, %s (%s)", pt.Table, pt.Caption, pt.Lines)}
		for _, r := range runs {
			k := 0
			if r.Arch == "chnet" {
				k = r.kernel()
			}
			t.Rows = append(t.Rows, methodRow(table6Label(r, len(s.HeadWidths)), r.ID(), res, test, cols).withPaper(pt, pt.Row(r.Arch, k), cols))
		}
		t.Notes = append(t.Notes, table6Unmapped(pt), "The paper does not state Table 6's head width: the released code's is 32; "+
			"the paper's Table 5 counts imply 128 (reference.md §0). Its figures are set beside each width's row.")
		sum.Tables = append(sum.Tables, t)

		for _, w := range s.HeadWidths {
			k1, k3 := RunSpec{Arch: "chnet", HeadWidth: w}, RunSpec{Arch: "chnet", HeadKernel: 3, HeadWidth: w}
			p1, _ := pt.Value(pt.Row("chnet", 1), "mDice")
			p3, _ := pt.Value(pt.Row("chnet", 3), "mDice")
			pf, _ := pt.Value(pt.Row("fcn", 0), "mDice")
			ours, v := compare("mDice", "1×1", res.Stat(k1.ID(), test, "mDice"), "3×3", res.Stat(k3.ID(), test, "mDice"))
			sum.Claims = append(sum.Claims, Claim{Source: fmt.Sprintf("Table 6 (width %d)", w),
				Paper: fmt.Sprintf("1×1 head %.3f ≥ 3×3 head %.3f in mDice", p1, p3), Ours: ours, Verdict: v})
			ours, v = compare("mDice", "CHNet 1×1", res.Stat(k1.ID(), test, "mDice"), "FCN-32s", res.Stat("fcn", test, "mDice"))
			sum.Claims = append(sum.Claims, Claim{Source: fmt.Sprintf("Table 6 (width %d)", w),
				Paper: fmt.Sprintf("CHNet 1×1 %.3f > FCN-32s baseline %.3f in mDice", p1, pf), Ours: ours, Verdict: v})
		}
	}
	return sum, nil
}

// table6Unmapped describes the paper's Table 6 columns whose metric is unknown, with their values.
func table6Unmapped(pt *PaperTable) string {
	var cols []string
	for i, c := range pt.Columns {
		if c.Metric != "" {
			continue
		}
		var vals []string
		for _, r := range pt.Rows {
			vals = append(vals, fmt.Sprintf("%s %.3f", r.Method, r.Values[i]))
		}
		cols = append(cols, fmt.Sprintf("%q (%s)", c.Header, strings.Join(vals, ", ")))
	}
	if len(cols) == 0 {
		return ""
	}
	return "The paper's Table 6 has columns whose metric paper.txt does not name: " + strings.Join(cols, "; ") +
		". They are not set beside any of ours. Its last column, unnamed, is taken as S_α: CHNet (1×1)'s 0.846 is Table 1's S_α."
}
