package ops

import (
	"fmt"

	"github.com/chnet/chnet/tensor"
)

// Linear is torch.nn.functional.linear on token sequences: x [B T in], weight [out in] (PyTorch's
// layout) and an optional bias [out], giving x·weightᵀ + bias of shape [B T out]. It is a
// composition, MatMul with the weight shared by every batch item and transposed, then
// AddBroadcast of the bias, so it needs no kernel of its own and its gradients are theirs.
func (t *Tape) Linear(x, w, bias *tensor.Tensor) *tensor.Tensor {
	const op = "linear"
	if !t.ok(x, w) {
		return nil
	}
	if x.Rank() != 3 || w.Rank() != 2 {
		t.Fail(fmt.Errorf("%s: want input [B T in] and weight [out in], got %v and %v", op, x.Shape(), w.Shape()))
		return nil
	}
	if x.Dim(2) != w.Dim(1) {
		t.Fail(fmt.Errorf("%s: input has %d features, weight %v expects %d", op, x.Dim(2), w.Shape(), w.Dim(1)))
		return nil
	}
	if bias != nil {
		if err := requireVector(op, "bias", bias, w.Dim(0)); err != nil {
			t.Fail(err)
			return nil
		}
	}
	y := t.MatMul(x, w, MatMulParams{TransB: true})
	if bias == nil {
		return y
	}
	return t.AddBroadcast(y, bias)
}
