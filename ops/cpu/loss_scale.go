package cpu

import (
	"math"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// CheckFinite implements ops.Backend: the found flag of state is set when x has a NaN or an
// infinity. Reference for loss_scale.comp LS_CHECK.
func (b *Backend) CheckFinite(state, x *tensor.Tensor) error {
	st, err := dense(state)
	if err != nil {
		return err
	}
	xs, err := dense(x)
	if err != nil {
		return err
	}
	for _, v := range xs {
		if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
			st[ops.LossScaleFound] = 1
			return nil
		}
	}
	return nil
}

// UpdateLossScale implements ops.Backend (GradScaler.update). Reference for loss_scale.comp
// LS_UPDATE.
func (b *Backend) UpdateLossScale(state *tensor.Tensor, p ops.LossScaleParams) error {
	st, err := dense(state)
	if err != nil {
		return err
	}
	if st[ops.LossScaleFound] != 0 {
		st[ops.LossScaleValue] *= p.Backoff
		st[ops.LossScaleGood] = 0
		st[ops.LossScaleSkipped]++
	} else {
		good := st[ops.LossScaleGood] + 1
		if good >= float32(p.Interval) {
			// As GradScaler: a scale that would overflow stays where it is.
			if g := st[ops.LossScaleValue] * p.Growth; !math.IsInf(float64(g), 0) {
				st[ops.LossScaleValue] = g
			}
			good = 0
		}
		st[ops.LossScaleGood] = good
	}
	st[ops.LossScaleFound] = 0
	return nil
}
