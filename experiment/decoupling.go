package experiment

import (
	"fmt"
	"slices"
)

// decouplingFigure is the plot's file name, beside summary.md.
const decouplingFigure = "decoupling.png"

// Panel is one panel of the paper's Fig. 3 or 4: bars of mDice for runs.
type Panel struct {
	Figure string   `json:"figure"` // "Fig. 3(a)"
	Title  string   `json:"title"`
	Bars   []Bar    `json:"bars"`
	Paper  string   `json:"paper"` // what the paper's text says the panel shows
	Runs   []string `json:"runs"`
}

// Bar is one run in a panel.
type Bar struct {
	Label string `json:"label"`
	Run   string `json:"run"`
	Stat  Stat   `json:"mdice"`
}

// frozen is the run of decoder dec on the frozen backbone of run bb.
func frozen(dec, bb string) string { return RunSpec{Arch: dec, Frozen: bb}.ID() }

// decouplingPanels are the panels of Fig. 3 and 4, as Section 4 describes them, for the
// backbones and decoders the settings include.
func decouplingPanels(s Settings, res *Results, test string, p *Paper) []Panel {
	backbones, decoders := decouplingNets(s)
	panel := func(fig, title string, labels, runs []string) Panel {
		pn := Panel{Figure: fig, Title: title, Runs: runs}
		for i, r := range runs {
			pn.Bars = append(pn.Bars, Bar{Label: labels[i], Run: r, Stat: res.Stat(r, test, "mDice")})
		}
		if f := p.Figure(fig); f != nil {
			pn.Paper = f.Text
		}
		return pn
	}
	var panels []Panel
	for _, bb := range []struct{ fig, run string }{{"Fig. 3(a)", "unet"}, {"Fig. 3(b)", "attunet"}} {
		if !slices.Contains(backbones, bb.run) {
			continue
		}
		var labels, runs []string
		for _, dec := range decoders {
			labels, runs = append(labels, archLabel(dec)), append(runs, frozen(dec, bb.run))
		}
		panels = append(panels, panel(bb.fig, "decoders on the frozen "+archLabel(bb.run)+" backbone", labels, runs))
	}
	for _, dec := range []struct{ fig, run string }{{"Fig. 4(a)", "fcn"}, {"Fig. 4(b)", "attunet"}} {
		if !slices.Contains(decoders, dec.run) {
			continue
		}
		var labels, runs []string
		if dec.run == "attunet" && s.BackboneWeights != "" {
			labels, runs = append(labels, "ImageNet"), append(runs, frozen(dec.run, ImageNet))
		}
		for _, bb := range backbones {
			labels, runs = append(labels, archLabel(bb)), append(runs, frozen(dec.run, bb))
		}
		panels = append(panels, panel(dec.fig, archLabel(dec.run)+" decoder on each frozen backbone", labels, runs))
	}
	return panels
}

func summarizeDecoupling(s Settings, res *Results, p *Paper) (*Summary, error) {
	e, _ := Lookup("decoupling")
	runs := decouplingRuns(s)
	sum := newSummary(e.Name, e.Title, s, res, runs, p)
	cols := columns["lung"]
	test := res.Tests[0]
	if len(res.Tests) > 1 {
		sum.Notes = append(sum.Notes, fmt.Sprintf("Several test sets were given; the matrix, the figure and the claims use the first, %s; the table of every run has each.", test))
	}
	sum.Notes = append(sum.Notes, "The paper's Fig. 3 and 4 are images without numbers in paper.txt: the \"paper\" column of the claims quotes Section 4's text; no figure of the paper is set beside ours.")

	backbones, decoders := decouplingNets(s)
	var decLabels []string
	for _, d := range decoders {
		decLabels = append(decLabels, archLabel(d))
	}
	matrix := Table{Title: "mDice on " + test + ": frozen backbone (rows) × retrained decoder (columns)", Columns: decLabels,
		Notes: []string{"Each cell trains the decoder from a random initialisation on the backbone of the end-to-end run named by its row, frozen (weights and batch-norm statistics). The last row is the three networks trained end to end."}}
	if s.BackboneWeights != "" && slices.Contains(decoders, "attunet") {
		backbones = append([]string{ImageNet}, backbones...)
	}
	for _, bb := range backbones {
		r := Row{Backbone: ourBackbone, Run: bb}
		if bb == ImageNet {
			r.Label = "ImageNet backbone"
		} else {
			r.Label = "backbone of end-to-end " + archLabel(bb)
		}
		status := ""
		for _, dec := range decoders {
			id := frozen(dec, bb)
			if _, ok := res.Runs[id]; !ok {
				r.Ours = append(r.Ours, Stat{})
				continue
			}
			r.Ours = append(r.Ours, res.Stat(id, test, "mDice"))
			if st := res.Status(id); st != string(StateDone) && status == "" {
				status = "some " + st
			}
		}
		r.Status = string(StateDone)
		if status != "" {
			r.Status = status
		}
		matrix.Rows = append(matrix.Rows, r)
	}
	e2e := Row{Label: "end to end", Backbone: ourBackbone, Run: "end to end", Status: string(StateDone)}
	for _, dec := range decoders {
		if _, ok := res.Runs[dec]; !ok || dec == "fcn" {
			e2e.Ours = append(e2e.Ours, Stat{})
			continue
		}
		e2e.Ours = append(e2e.Ours, res.Stat(dec, test, "mDice"))
		if st := res.Status(dec); st != string(StateDone) {
			e2e.Status = "some " + st
		}
	}
	matrix.Rows = append(matrix.Rows, e2e)
	sum.Tables = append(sum.Tables, matrix)

	for _, t := range res.Tests {
		every := Table{Title: "Every run on " + t + ", the lung metrics", Columns: cols}
		for _, r := range runs {
			label := archLabel(r.Arch) + " end to end"
			if r.Frozen != "" {
				label = fmt.Sprintf("%s decoder on the frozen %s backbone", archLabel(r.Arch), archLabel(r.Frozen))
				if r.Frozen == ImageNet {
					label = archLabel(r.Arch) + " decoder on the frozen ImageNet backbone"
				}
			}
			every.Rows = append(every.Rows, methodRow(label, r.ID(), res, t, cols))
		}
		sum.Tables = append(sum.Tables, every)
	}

	panels := decouplingPanels(s, res, test, p)
	sum.Figure = decouplingFigure
	sum.Claims = decouplingClaims(res, test)
	sum.Panels = panels
	return sum, nil
}

// decouplingClaims are Section 4's statements about Fig. 3 and 4, each against these runs.
func decouplingClaims(res *Results, test string) []Claim {
	st := func(id string) Stat { return res.Stat(id, test, "mDice") }
	var out []Claim
	planned := func(a, b string) bool {
		_, okA := res.Runs[a]
		_, okB := res.Runs[b]
		return okA && okB
	}
	same := func(src, paper, aLabel, a, bLabel, b string) {
		if planned(a, b) {
			out = append(out, Claim{Source: src, Paper: paper, Ours: similar("mDice", aLabel, st(a), bLabel, st(b)), Verdict: noVerdict})
		}
	}
	order := func(src, paper, aLabel, a, bLabel, b string) {
		if planned(a, b) {
			ours, v := compare("mDice", aLabel, st(a), bLabel, st(b))
			out = append(out, Claim{Source: src, Paper: paper, Ours: ours, Verdict: v})
		}
	}
	same("Fig. 3(a)", "CHNet decoder ≈ U-Net decoder on the U-Net backbone", "CHNet dec.", frozen("chnet", "unet"), "U-Net dec.", frozen("unet", "unet"))
	order("Fig. 3(a)", "FCN-32s decoder poor on the U-Net backbone", "CHNet dec.", frozen("chnet", "unet"), "FCN dec.", frozen("fcn", "unet"))
	order("Fig. 3(a)", "Atten-UNet decoder poor on the U-Net backbone", "CHNet dec.", frozen("chnet", "unet"), "Atten-UNet dec.", frozen("attunet", "unet"))
	same("Fig. 3(b)", "CHNet decoder ≈ Atten-UNet decoder on the Atten-UNet backbone", "CHNet dec.", frozen("chnet", "attunet"), "Atten-UNet dec.", frozen("attunet", "attunet"))
	order("Fig. 3(b)", "U-Net decoder poor on the Atten-UNet backbone", "CHNet dec.", frozen("chnet", "attunet"), "U-Net dec.", frozen("unet", "attunet"))
	order("Fig. 4(a)", "with the FCN-32s decoder, CHNet's backbone much better than U-Net's", "CHNet bb.", frozen("fcn", "chnet"), "U-Net bb.", frozen("fcn", "unet"))
	order("Fig. 4(a)", "with the FCN-32s decoder, CHNet's backbone much better than Atten-UNet's", "CHNet bb.", frozen("fcn", "chnet"), "Atten-UNet bb.", frozen("fcn", "attunet"))
	order("Fig. 4(b)", "with the Atten-UNet decoder, the self-coupled backbone differs from the others (read here as: scores higher than CHNet's)", "Atten-UNet bb.", frozen("attunet", "attunet"), "CHNet bb.", frozen("attunet", "chnet"))
	order("Fig. 4(b)", "with the Atten-UNet decoder, the self-coupled backbone differs from the others (read here as: scores higher than U-Net's)", "Atten-UNet bb.", frozen("attunet", "attunet"), "U-Net bb.", frozen("attunet", "unet"))
	same("Fig. 4(b)", "with the Atten-UNet decoder, the other backbones give similar results", "CHNet bb.", frozen("attunet", "chnet"), "U-Net bb.", frozen("attunet", "unet"))
	same("Fig. 4(b)", "with the Atten-UNet decoder, even the ImageNet-only backbone is similar to the trained ones", "ImageNet bb.", frozen("attunet", ImageNet), "CHNet bb.", frozen("attunet", "chnet"))
	return out
}
