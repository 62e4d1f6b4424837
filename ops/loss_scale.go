package ops

import (
	"fmt"

	"github.com/chnet/chnet/tensor"
)

// Dynamic loss scaling keeps its state on the device, four values, so that a captured step can
// skip an overflowed update and change the scale without the host reading anything:
const (
	LossScaleValue   = iota // the scale the loss gradient is seeded with
	LossScaleFound          // 1 while this step's gradients are known not to be all finite
	LossScaleGood           // finite steps since the scale last changed
	LossScaleSkipped        // steps skipped in all
	LossScaleStateLen
)

// LossScaleParams is torch.cuda.amp.GradScaler's update rule: after a step whose gradients were
// not all finite the scale is multiplied by Backoff; after Interval finite steps in a row, by
// Growth.
type LossScaleParams struct {
	Growth, Backoff float32
	Interval        int
}

// DefaultLossScale is GradScaler's defaults: start at 2¹⁶, ×2 every 2000 finite steps, ×½ on
// overflow.
var DefaultLossScale = struct {
	Init float32
	LossScaleParams
}{65536, LossScaleParams{Growth: 2, Backoff: 0.5, Interval: 2000}}

// CheckFinite sets state's found flag when any element of x is NaN or infinite.
func CheckFinite(b Backend, state, x *tensor.Tensor) error {
	if err := checkLossScaleState(state); err != nil {
		return fmt.Errorf("check finite: %w", err)
	}
	if !x.IsContiguous() {
		return fmt.Errorf("check finite: %v must be contiguous", x)
	}
	if err := b.CheckFinite(state, x); err != nil {
		return fmt.Errorf("check finite %v: %w", x, err)
	}
	return nil
}

// UpdateLossScale advances state after a step: found → scale·Backoff, else one more good step
// and, at Interval of them, scale·Growth; found is then cleared.
func UpdateLossScale(b Backend, state *tensor.Tensor, p LossScaleParams) error {
	if err := checkLossScaleState(state); err != nil {
		return fmt.Errorf("loss scale: %w", err)
	}
	if !(p.Growth >= 1) || !(p.Backoff > 0 && p.Backoff < 1) || p.Interval < 1 {
		return fmt.Errorf("loss scale: growth %v must be ≥ 1, backoff %v in (0, 1), interval %d ≥ 1", p.Growth, p.Backoff, p.Interval)
	}
	if err := b.UpdateLossScale(state, p); err != nil {
		return fmt.Errorf("loss scale: %w", err)
	}
	return nil
}

func checkLossScaleState(state *tensor.Tensor) error {
	if state == nil || state.Numel() != LossScaleStateLen || !state.IsContiguous() {
		return fmt.Errorf("the loss-scale state must be a contiguous tensor of %d values, not %v", LossScaleStateLen, state)
	}
	return nil
}
