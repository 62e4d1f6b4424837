package cpu

import (
	"math"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// SGDStep implements ops.Backend with torch.optim.SGD's update order.
func (b *Backend) SGDStep(param, grad, momentum, loss, halt *tensor.Tensor, p ops.SGDParams) error {
	ds := make([][]float32, 3)
	for i, t := range []*tensor.Tensor{param, grad, momentum} {
		d, err := dense(t)
		if err != nil {
			return err
		}
		ds[i] = d
	}
	if loss != nil {
		l, err := dense(loss)
		if err != nil {
			return err
		}
		h, err := dense(halt)
		if err != nil {
			return err
		}
		if v := float64(l[0]); math.IsNaN(v) || math.IsInf(v, 0) || h[0] != 0 {
			h[0] = 1
			return nil
		}
	}
	lr := p.LR
	if p.LRFrom != nil {
		d, err := dense(p.LRFrom)
		if err != nil {
			return err
		}
		lr = d[0]
	}
	scaled, inv := false, float32(1)
	if p.ScaleFrom != nil {
		st, err := dense(p.ScaleFrom)
		if err != nil {
			return err
		}
		if st[ops.LossScaleFound] != 0 {
			return nil // overflowed: skipped; UpdateLossScale lowers the scale
		}
		scaled, inv = true, 1/st[ops.LossScaleValue]
	}
	w, g, buf := ds[0], ds[1], ds[2]
	parallelFor(b.workers, len(w), 1<<14, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			gr := g[i]
			if scaled {
				gr *= inv
			}
			gi := gr + p.WeightDecay*w[i]
			step := gi
			if p.Momentum != 0 {
				buf[i] = p.Momentum*buf[i] + gi
				step = buf[i]
				if p.Nesterov {
					step = gi + p.Momentum*buf[i]
				}
			}
			w[i] -= lr * step
		}
	})
	return nil
}
