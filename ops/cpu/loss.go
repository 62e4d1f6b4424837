package cpu

import (
	"fmt"
	"math"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// bce is binary cross-entropy with logits in its stable form.
func bce(x, t float32) float64 {
	xf := float64(x)
	return math.Max(xf, 0) - xf*float64(t) + math.Log1p(math.Exp(-math.Abs(xf)))
}

// BCEWithLogits implements ops.Backend.
func (b *Backend) BCEWithLogits(dst, x, target *tensor.Tensor) error {
	return b.forItems([]*tensor.Tensor{dst, x, target}, func(it [][]float32) {
		d, xs, ts := it[0], it[1][:len(it[0])], it[2][:len(it[0])]
		for i := range d {
			d[i] = float32(bce(xs[i], ts[i]))
		}
	})
}

// BCEWithLogitsGrad implements ops.Backend.
func (b *Backend) BCEWithLogitsGrad(gx, gy, x, target *tensor.Tensor) error {
	return b.forItems([]*tensor.Tensor{gx, gy, x, target}, func(it [][]float32) {
		d, g, xs, ts := it[0], it[1][:len(it[0])], it[2][:len(it[0])], it[3][:len(it[0])]
		for i := range d {
			d[i] = g[i] * (sigmoid(xs[i]) - ts[i])
		}
	})
}

// structureWeight writes the loss's weight map 1 + 5·|box31(mask) − mask| for one H×W image, with
// the 31×31 box sum done separably in float64 and divided by 961 (count_include_pad).
func structureWeight(wt []float64, mask []float32, h, w int) {
	const r = 15
	rows := make([]float64, h*w)
	for y := 0; y < h; y++ {
		row := mask[y*w : (y+1)*w]
		for x := 0; x < w; x++ {
			var s float64
			for k := max(x-r, 0); k <= min(x+r, w-1); k++ {
				s += float64(row[k])
			}
			rows[y*w+x] = s
		}
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var s float64
			for k := max(y-r, 0); k <= min(y+r, h-1); k++ {
				s += rows[k*w+x]
			}
			wt[y*w+x] = 1 + 5*math.Abs(s/961-float64(mask[y*w+x]))
		}
	}
}

// structureTerms holds one image's sums: Σw·bce, Σw, I = Σσ·g·w, U = Σ(σ+g)·w, Σbce.
type structureTerms struct{ wbce, wsum, inter, union, bce float64 }

func (b *Backend) structureTerms(x, mask *tensor.Tensor) ([]structureTerms, [][]float64, error) {
	vs, err := views(x, mask)
	if err != nil {
		return nil, nil, err
	}
	n, h, w := x.Dim(0), x.Dim(2), x.Dim(3)
	terms := make([]structureTerms, n)
	weights := make([][]float64, n)
	parallelFor(b.workers, n, 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			xs, ms := vs[0].item(i), vs[1].item(i)
			wt := make([]float64, h*w)
			structureWeight(wt, ms, h, w)
			var t structureTerms
			for j, xv := range xs {
				g, wj := float64(ms[j]), wt[j]
				l := bce(xv, ms[j])
				s := float64(sigmoid(xv))
				t.bce += l
				t.wbce += wj * l
				t.wsum += wj
				t.inter += s * g * wj
				t.union += (s + g) * wj
			}
			terms[i], weights[i] = t, wt
		}
	})
	return terms, weights, nil
}

// StructureLoss implements ops.Backend.
func (b *Backend) StructureLoss(dst, x, mask *tensor.Tensor, form ops.StructureLossForm) error {
	d, err := dense(dst)
	if err != nil {
		return err
	}
	if len(d) != 1 {
		return fmt.Errorf("structure_loss: destination %v must have one element", dst.Shape())
	}
	terms, _, err := b.structureTerms(x, mask)
	if err != nil {
		return err
	}
	n := float64(len(terms))
	var allBCE, loss float64
	for _, t := range terms {
		allBCE += t.bce
		wiou := 1 - (t.inter+1)/(t.union-t.inter+1)
		if form == ops.StructureLossWeighted {
			loss += (t.wbce/t.wsum + wiou) / n
		} else {
			loss += wiou / n
		}
	}
	if form == ops.StructureLossOfficial {
		loss += allBCE / float64(x.Numel())
	}
	d[0] = float32(loss)
	return nil
}

// StructureLossGrad implements ops.Backend. Per image, with D = U − I + 1 and s = σ(x):
// ∂wIoU/∂x = s(1−s)·w·((I+1) − (U+2)·g)/D²; the BCE term adds (s − g)/(N·H·W) (official) or
// w·(s − g)/Σw (weighted); everything is divided by N for the batch mean.
func (b *Backend) StructureLossGrad(gx, gLoss, x, mask *tensor.Tensor, form ops.StructureLossForm) error {
	gl, err := dense(gLoss)
	if err != nil {
		return err
	}
	terms, weights, err := b.structureTerms(x, mask)
	if err != nil {
		return err
	}
	vs, err := views(gx, x, mask)
	if err != nil {
		return err
	}
	n := len(terms)
	scale := float64(gl[0]) / float64(n)
	numel := float64(x.Numel())
	parallelFor(b.workers, n, 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			t, wt := terms[i], weights[i]
			dd := t.union - t.inter + 1
			a, c := (t.inter+1)/(dd*dd), (t.union+2)/(dd*dd)
			out, xs, ms := vs[0].item(i), vs[1].item(i), vs[2].item(i)
			for j, xv := range xs {
				s, g, wj := float64(sigmoid(xv)), float64(ms[j]), wt[j]
				grad := s * (1 - s) * wj * (a - c*g)
				if form == ops.StructureLossWeighted {
					grad += wj * (s - g) / t.wsum
				} else {
					grad += (s - g) * float64(n) / numel
				}
				out[j] = float32(grad * scale)
			}
		}
	})
	return nil
}
