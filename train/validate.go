package train

import (
	"context"
	"fmt"

	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
)

// HeldOut validates on a fixed set of batches (no augmentation): per image, Dice and IoU of the
// prediction thresholded at 0.5 against the mask binarised at 0.5, mean absolute error of the
// probabilities, and the structure loss; each averaged over images. It is the quick per-epoch
// check; `chnet test` computes the papers' metrics.
type HeldOut struct {
	Data TrainData
	Loss ops.StructureLossForm
}

// Validate implements Validator.
func (h HeldOut) Validate(ctx context.Context, b ops.Backend, m nn.Segmenter) (map[string]float64, error) {
	it, err := h.Data.Epoch(ctx, 0, 0)
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var sum struct{ dice, iou, mae, loss float64 }
	n := 0
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		batch, ok, err := it.Next()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		probs, loss, err := evalBatch(b, m, batch, h.Loss)
		if err != nil {
			return nil, err
		}
		sum.loss += loss * float64(batch.N)
		px := batch.Size * batch.Size
		for i := 0; i < batch.N; i++ {
			d, u, e := overlap(probs[i*px:(i+1)*px], batch.Masks[i*px:(i+1)*px])
			sum.dice += d
			sum.iou += u
			sum.mae += e
		}
		n += batch.N
	}
	if n == 0 {
		return nil, fmt.Errorf("validation set is empty")
	}
	f := float64(n)
	return map[string]float64{"dice": sum.dice / f, "iou": sum.iou / f, "mae": sum.mae / f, "loss": sum.loss / f}, nil
}

// evalBatch predicts one batch without gradients and returns probabilities and the loss.
func evalBatch(b ops.Backend, m nn.Segmenter, batch Batch, form ops.StructureLossForm) ([]float32, float64, error) {
	t := ops.NewTape(b)
	t.SetNoGrad(true)
	defer t.Release()
	x, err := ops.FromHost(b, batch.Images, batch.N, 3, batch.Size, batch.Size)
	if err != nil {
		return nil, 0, err
	}
	defer b.Release(x.Storage())
	y, err := ops.FromHost(b, batch.Masks, batch.N, 1, batch.Size, batch.Size)
	if err != nil {
		return nil, 0, err
	}
	defer b.Release(y.Storage())
	logits := m.Forward(t, x)
	loss := t.StructureLoss(logits, y, form)
	p := t.Sigmoid(logits)
	if err := t.Err(); err != nil {
		return nil, 0, err
	}
	probs, err := ops.ToHost(b, p)
	if err != nil {
		return nil, 0, err
	}
	l, err := ops.ToHost(b, loss)
	if err != nil {
		return nil, 0, err
	}
	return probs, float64(l[0]), nil
}

// overlap returns Dice and IoU of p > 0.5 against g > 0.5 (1 when both are empty) and the mean
// absolute error between p and the binarised g.
func overlap(p, g []float32) (dice, iou, mae float64) {
	var tp, fp, fn int
	for i, v := range p {
		pred, gt := v > 0.5, g[i] > 0.5
		switch {
		case pred && gt:
			tp++
		case pred:
			fp++
		case gt:
			fn++
		}
		t := float32(0)
		if gt {
			t = 1
		}
		d := float64(v - t)
		if d < 0 {
			d = -d
		}
		mae += d
	}
	mae /= float64(len(p))
	if tp+fp+fn == 0 {
		return 1, 1, mae
	}
	return 2 * float64(tp) / float64(2*tp+fp+fn), float64(tp) / float64(tp+fp+fn), mae
}
