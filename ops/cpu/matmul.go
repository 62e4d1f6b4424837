package cpu

import (
	"fmt"

	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// matOperand is one factor of a batched product: item i's matrix starts at data[off+i*stride]
// and is rows×cols, row-major; stride is 0 for a matrix shared by every item.
type matOperand struct {
	data                    []float32
	off, stride, rows, cols int
}

func (m matOperand) item(i int) []float32 { return m.data[m.off+i*m.stride:] }

// operand resolves a rank-3 batch-strided tensor or a rank-2 dense one.
func operand(x *tensor.Tensor) (matOperand, error) {
	switch x.Rank() {
	case 3:
		v, err := viewOf(x)
		if err != nil {
			return matOperand{}, err
		}
		return matOperand{data: v.data, off: v.off, stride: v.stride, rows: x.Dim(1), cols: x.Dim(2)}, nil
	case 2:
		d, err := dense(x)
		if err != nil {
			return matOperand{}, err
		}
		return matOperand{data: d, rows: x.Dim(0), cols: x.Dim(1)}, nil
	}
	return matOperand{}, fmt.Errorf("matmul: operand %v must be rank 2 or 3", x.Shape())
}

// Below this many multiply-adds per item, items run in parallel on one goroutine each (attention
// over many heads is many small products); above it, each product uses every worker.
const matMulItemParallelMax = 1 << 20

// MatMul implements ops.TransformerKernels with one gemm per batch item.
func (b *Backend) MatMul(dst, a, bm *tensor.Tensor, p ops.MatMulParams) error {
	if dst.Rank() != 3 {
		return fmt.Errorf("matmul: destination %v must be [B M N]", dst.Shape())
	}
	oa, err := operand(a)
	if err != nil {
		return err
	}
	ob, err := operand(bm)
	if err != nil {
		return err
	}
	vd, err := viewOf(dst)
	if err != nil {
		return err
	}
	batch, m, n := dst.Dim(0), dst.Dim(1), dst.Dim(2)
	am, ak := oa.rows, oa.cols
	if p.TransA {
		am, ak = ak, am
	}
	bk, bn := ob.rows, ob.cols
	if p.TransB {
		bk, bn = bn, bk
	}
	if am != m || bn != n || ak != bk {
		return fmt.Errorf("matmul: %v x %v (%v) does not give %v", a.Shape(), bm.Shape(), p, dst.Shape())
	}
	for _, x := range []*tensor.Tensor{a, bm} {
		if x.Rank() == 3 && x.Dim(0) != batch {
			return fmt.Errorf("matmul: operand %v does not have the destination's batch %d", x.Shape(), batch)
		}
	}
	k := ak
	one := func(be *Backend, i int) {
		c := vd.item(i)
		if k == 0 {
			clear(c)
			return
		}
		be.gemm(p.TransA, p.TransB, m, n, k, 1, oa.item(i), oa.cols, ob.item(i), ob.cols, 0, c, n)
	}
	if batch > 1 && m*n*k < matMulItemParallelMax {
		serial := &Backend{workers: 1}
		parallelFor(b.workers, batch, 1, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				one(serial, i)
			}
		})
		return nil
	}
	for i := 0; i < batch; i++ {
		one(b, i)
	}
	return nil
}

// The CPU backend runs the attention baselines.
var _ ops.TransformerKernels = (*Backend)(nil)
