package ops

import (
	"fmt"

	"github.com/chnet/chnet/tensor"
)

// Permute is x.permute(perm).contiguous(): output dimension k is input dimension perm[k]. It
// moves between NCHW feature maps and token sequences ([B C H W] → [B H W C] is perm 0 2 3 1)
// and splits attention heads ([B T h d] → [B h T d] is 0 2 1 3). Its gradient is the inverse
// permutation of the output gradient.
func (t *Tape) Permute(x *tensor.Tensor, perm ...int) *tensor.Tensor {
	const op = "permute"
	if !t.ok(x) {
		return nil
	}
	if len(perm) != x.Rank() {
		t.Fail(fmt.Errorf("%s: %d axes %v for a rank-%d tensor %v", op, len(perm), perm, x.Rank(), x.Shape()))
		return nil
	}
	inv := make([]int, len(perm))
	seen := make([]bool, len(perm))
	for k, d := range perm {
		if d < 0 || d >= len(perm) || seen[d] {
			t.Fail(fmt.Errorf("%s: %v is not a permutation of 0..%d", op, perm, len(perm)-1))
			return nil
		}
		seen[d] = true
		inv[d] = k
	}
	if err := requireLayout(op, "input", x); err != nil {
		t.Fail(err)
		return nil
	}
	identity := true
	for k, d := range perm {
		identity = identity && k == d
	}
	if identity {
		return t.Contiguous(x)
	}
	k := t.transformer(op)
	if k == nil {
		return nil
	}
	shape := make(tensor.Shape, len(perm))
	for i, d := range perm {
		shape[i] = x.Dim(d)
	}
	perm = append([]int(nil), perm...) // the caller may reuse its slice
	y := t.alloc(shape, op)
	if y == nil || !t.check(k.Permute(y, x, perm), fmt.Sprintf("%s %v by %v", op, x.Shape(), perm)) {
		return nil
	}
	t.record(op, []*tensor.Tensor{y}, []*tensor.Tensor{x}, nil,
		func(gys []*tensor.Tensor) []*tensor.Tensor {
			gx := t.alloc(x.Shape(), op+" grad")
			if gx != nil {
				t.check(k.Permute(gx, gys[0], inv), fmt.Sprintf("%s grad %v by %v", op, gys[0].Shape(), inv))
			}
			return []*tensor.Tensor{gx}
		})
	return y
}
