package ops

import (
	"fmt"

	"github.com/chnet/chnet/tensor"
)

// BCEWithLogits is the elementwise binary cross-entropy of logits x against targets
// (reduction "none"); reduce it with Mean for PyTorch's default. Targets get no gradient.
func (t *Tape) BCEWithLogits(x, target *tensor.Tensor) *tensor.Tensor {
	const op = "bce_with_logits"
	if !t.ok(x, target) {
		return nil
	}
	if err := requireSameShape(op, x, target); err != nil {
		t.Fail(err)
		return nil
	}
	for _, v := range []*tensor.Tensor{x, target} {
		if err := requireLayout(op, "input", v); err != nil {
			t.Fail(err)
			return nil
		}
	}
	y := t.alloc(x.Shape(), op)
	if y == nil || !t.check(t.b.BCEWithLogits(y, x, target), fmt.Sprintf("%s %v", op, x.Shape())) {
		return nil
	}
	t.record(op, []*tensor.Tensor{y}, []*tensor.Tensor{x}, []*tensor.Tensor{x, target},
		func(gys []*tensor.Tensor) []*tensor.Tensor {
			gx := t.alloc(x.Shape(), op+" grad")
			if gx != nil {
				t.check(t.b.BCEWithLogitsGrad(gx, gys[0], x, target), op+" grad")
			}
			return []*tensor.Tensor{gx}
		})
	return y
}

// StructureLoss is the segmentation loss of F3Net/PraNet/CHNet (reference.md §3) of logits
// x [N 1 H W] against a soft mask of the same shape, as a [1] tensor. The weight map is
// 1 + 5·|avgpool31(mask) − mask| (count_include_pad, so borders divide by 961).
func (t *Tape) StructureLoss(x, mask *tensor.Tensor, form StructureLossForm) *tensor.Tensor {
	const op = "structure_loss"
	if !t.ok(x, mask) {
		return nil
	}
	if err := requireNCHW(op, "logits", x); err != nil {
		t.Fail(err)
		return nil
	}
	if err := requireLayout(op, "mask", mask); err != nil {
		t.Fail(err)
		return nil
	}
	if err := requireSameShape(op, x, mask); err != nil {
		t.Fail(err)
		return nil
	}
	if x.Dim(1) != 1 {
		t.Fail(fmt.Errorf("%s: logits must have one channel, got shape %v", op, x.Shape()))
		return nil
	}
	y := t.alloc(tensor.Shape{1}, op)
	if y == nil || !t.check(t.b.StructureLoss(y, x, mask, form), fmt.Sprintf("%s %v", op, x.Shape())) {
		return nil
	}
	t.record(op, []*tensor.Tensor{y}, []*tensor.Tensor{x}, []*tensor.Tensor{x, mask},
		func(gys []*tensor.Tensor) []*tensor.Tensor {
			gx := t.alloc(x.Shape(), op+" grad")
			if gx != nil {
				t.check(t.b.StructureLossGrad(gx, gys[0], x, mask, form), op+" grad")
			}
			return []*tensor.Tensor{gx}
		})
	return y
}
