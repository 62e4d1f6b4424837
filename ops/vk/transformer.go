package vk

import (
	"fmt"

	"github.com/chnet/chnet/internal/vkrt"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/shaders"
	"github.com/chnet/chnet/tensor"
)

// The kernels of the attention baselines (ops.TransformerKernels).
var _ ops.TransformerKernels = (*Backend)(nil)

type matmulPush struct {
	DOff, DStride, AOff, AStride, BOff, BStride uint32
	M, N, K                                     uint32
	I0                                          uint32
}

type rowsPush struct {
	Rows, D, PerItem                            uint32
	OOff, OStride, Off1, Stride1, Off2, Stride2 uint32
}

type lnPush struct {
	Rows, D, PerItem, Chunk                       uint32
	OOff, OStride, XOff, XStride, GYOff, GYStride uint32
	GOff, BOff, MOff, IOff                        uint32
	Eps                                           float32
}

type permutePush struct {
	E0, Count, Rank, DOff, XOff uint32
	Dims, XS                    [6]uint32
}

// matOperand is a matmul factor: a batch-strided rank-3 tensor, or a rank-2 one shared by every
// item (stride 0).
func (b *Backend) matOperand(x *tensor.Tensor) (operand, int, int, error) {
	switch x.Rank() {
	case 3:
		o, err := b.operand(x)
		return o, x.Dim(1), x.Dim(2), err
	case 2:
		o, err := b.dense(x)
		o.stride = 0
		return o, x.Dim(0), x.Dim(1), err
	}
	return operand{}, 0, 0, fmt.Errorf("matmul: operand %v must be rank 2 or 3", x.Shape())
}

// bindMat binds items [i0,i1) of a matmul factor (all of a shared one).
func (b *Backend) bindMat(o operand, i0, i1 int64, write bool) (vkrt.Access, uint32) {
	if o.stride == 0 {
		acc, s := b.bind(o.buf, o.off, o.off+o.inner*o.n, write)
		return acc, uint32(o.off - s)
	}
	return b.bindItems(o, i0, i1, write)
}

// MatMul implements ops.TransformerKernels.
func (b *Backend) MatMul(dst, a, bm *tensor.Tensor, p ops.MatMulParams) error {
	const what = "matmul"
	if dst.Rank() != 3 {
		return fmt.Errorf("%s: destination %v must be [B M N]", what, dst.Shape())
	}
	do, err := b.operand(dst)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	oa, ar, ac, err := b.matOperand(a)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	ob, br, bc, err := b.matOperand(bm)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	batch, m, n := int64(dst.Dim(0)), dst.Dim(1), dst.Dim(2)
	am, ak := ar, ac
	if p.TransA {
		am, ak = ak, am
	}
	bk, bn := br, bc
	if p.TransB {
		bk, bn = bn, bk
	}
	if am != m || bn != n || ak != bk {
		return fmt.Errorf("%s: %v x %v (%v) does not give %v", what, a.Shape(), bm.Shape(), p, dst.Shape())
	}
	for _, x := range []*tensor.Tensor{a, bm} {
		if x.Rank() == 3 && int64(x.Dim(0)) != batch {
			return fmt.Errorf("%s: operand %v does not have the destination's batch %d", what, x.Shape(), batch)
		}
	}
	t := b.tiles.pick(int64(m), int64(n), batch)
	var ta, tb uint32
	if p.TransA {
		ta = 1
	}
	if p.TransB {
		tb = 1
	}
	avec := b.tiles.avec
	if t.tm%4 != 0 {
		avec = 0
	}
	k, err := b.kernel(shaders.Matmul, uint32(t.wg()), uint32(t.bm), uint32(t.bn), uint32(t.bk), uint32(t.tm), uint32(t.tn),
		1, 1, 1, avec, ta, tb)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	sliced := []operand{do}
	for _, o := range []operand{oa, ob} {
		if o.stride != 0 {
			sliced = append(sliced, o)
		}
	}
	chunks, err := b.itemChunks(what, batch, sliced...)
	if err != nil {
		return err
	}
	push := matmulPush{DStride: uint32(do.stride), AStride: uint32(oa.stride), BStride: uint32(ob.stride), M: uint32(m), N: uint32(n), K: uint32(ak)}
	for _, ch := range chunks {
		for i0 := ch[0]; i0 < ch[1]; i0 += 65535 {
			i1 := min(i0+65535, ch[1])
			da, doff := b.bindItems(do, i0, i1, true)
			aa, aoff := b.bindMat(oa, i0, i1, false)
			ba, boff := b.bindMat(ob, i0, i1, false)
			push.DOff, push.AOff, push.BOff, push.I0 = doff, aoff, boff, uint32(i0)
			groups := [3]uint32{uint32(ceilDiv(int64(n), t.bn)), uint32(ceilDiv(int64(m), t.bm)), uint32(i1 - i0)}
			macs := (i1 - i0) * int64(m) * int64(n) * int64(ak)
			if err := b.dev.DispatchMACs(k, []vkrt.Access{da, aa, ba}, pushBytes(&push), groups, what, macs); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
	}
	return nil
}

// rowOperands resolves same-shaped tensors viewed as rows of their last dimension: rows never
// straddle a batch item.
func (b *Backend) rowOperands(what string, ts ...*tensor.Tensor) ([]operand, int64, int64, int64, error) {
	x := ts[0]
	if x.Rank() < 2 {
		return nil, 0, 0, 0, fmt.Errorf("%s: tensor %v must have at least two dimensions", what, x.Shape())
	}
	for _, t := range ts[1:] {
		if !t.Shape().Equal(x.Shape()) {
			return nil, 0, 0, 0, fmt.Errorf("%s: shapes differ: %v and %v", what, x.Shape(), t.Shape())
		}
	}
	os, err := b.operands(ts...)
	if err != nil {
		return nil, 0, 0, 0, fmt.Errorf("%s: %w", what, err)
	}
	d := int64(x.Dim(x.Rank() - 1))
	for _, o := range os {
		if o.n*o.inner > b.maxElems() {
			return nil, 0, 0, 0, fmt.Errorf("%s: %v is larger than one binding (%d MiB)", what, x.Shape(), b.dev.MaxRange()>>20)
		}
	}
	return os, d, os[0].inner / d, int64(x.Numel()) / d, nil
}

const rowWorkGroup = 128

// rowGrid covers rows workgroups, folding into y beyond 65535.
func rowGrid(rows int64) [3]uint32 {
	gx := min(max(rows, 1), 65535)
	return [3]uint32{uint32(gx), uint32(ceilDiv(rows, gx)), 1}
}

func (b *Backend) rowsKernel(name, what string, ts []*tensor.Tensor) error {
	os, d, perItem, rows, err := b.rowOperands(what, ts...)
	if err != nil {
		return err
	}
	k, err := b.kernel(name, rowWorkGroup)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	push := rowsPush{Rows: uint32(rows), D: uint32(d), PerItem: uint32(perItem)}
	binds := make([]vkrt.Access, len(os))
	for i, o := range os {
		acc, off := b.bindAll(o, i == 0)
		binds[i] = acc
		switch i {
		case 0:
			push.OOff, push.OStride = off, uint32(o.stride)
		case 1:
			push.Off1, push.Stride1 = off, uint32(o.stride)
		case 2:
			push.Off2, push.Stride2 = off, uint32(o.stride)
		}
	}
	return b.dev.Dispatch(k, binds, pushBytes(&push), rowGrid(rows), what)
}

// Softmax implements ops.TransformerKernels.
func (b *Backend) Softmax(dst, x *tensor.Tensor) error {
	return b.rowsKernel(shaders.Softmax, "softmax", []*tensor.Tensor{dst, x})
}

// SoftmaxGrad implements ops.TransformerKernels; gx may alias gy.
func (b *Backend) SoftmaxGrad(gx, gy, y *tensor.Tensor) error {
	return b.rowsKernel(shaders.SoftmaxGrad, "softmax grad", []*tensor.Tensor{gx, gy, y})
}

// LayerNorm implements ops.TransformerKernels.
func (b *Backend) LayerNorm(dst, mean, invStd, x, gamma, beta *tensor.Tensor, p ops.LayerNormParams) error {
	const what = "layer_norm"
	os, d, perItem, rows, err := b.rowOperands(what, dst, x)
	if err != nil {
		return err
	}
	vs := make([]operand, 4)
	for i, t := range []*tensor.Tensor{gamma, beta, mean, invStd} {
		if vs[i], err = b.dense(t); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		want := d
		if i >= 2 {
			want = rows
		}
		if vs[i].n*vs[i].inner != want {
			return fmt.Errorf("%s: weight %v, bias %v, mean %v, inv_std %v do not fit input %v", what, gamma.Shape(), beta.Shape(), mean.Shape(), invStd.Shape(), x.Shape())
		}
	}
	k, err := b.kernel(shaders.LayerNorm, rowWorkGroup)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	push := lnPush{Rows: uint32(rows), D: uint32(d), PerItem: uint32(perItem), Eps: p.Eps}
	ya, yoff := b.bindAll(os[0], true)
	xa, xoff := b.bindAll(os[1], false)
	ga, goff := b.bindAll(vs[0], false)
	ba, boff := b.bindAll(vs[1], false)
	ma, moff := b.bindAll(vs[2], true)
	ia, ioff := b.bindAll(vs[3], true)
	push.OOff, push.OStride, push.XOff, push.XStride = yoff, uint32(os[0].stride), xoff, uint32(os[1].stride)
	push.GOff, push.BOff, push.MOff, push.IOff = goff, boff, moff, ioff
	return b.dev.Dispatch(k, []vkrt.Access{ya, xa, ga, ba, ma, ia}, pushBytes(&push), rowGrid(rows), what)
}

// LayerNormGrad implements ops.TransformerKernels.
func (b *Backend) LayerNormGrad(gx, gGamma, gBeta, gy, x, gamma, mean, invStd *tensor.Tensor) error {
	const what = "layer_norm grad"
	os, d, perItem, rows, err := b.rowOperands(what, gx, gy, x)
	if err != nil {
		return err
	}
	vs := make([]operand, 5)
	for i, t := range []*tensor.Tensor{gGamma, gBeta, gamma, mean, invStd} {
		if vs[i], err = b.dense(t); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		want := d
		if i >= 3 {
			want = rows
		}
		if vs[i].n*vs[i].inner != want {
			return fmt.Errorf("%s: parameter or statistics shapes do not fit input %v", what, x.Shape())
		}
	}
	rk, err := b.kernel(shaders.LayerNormGradRows, rowWorkGroup)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	const chunkRows = 64
	chunks := ceilDiv(rows, chunkRows)
	push := lnPush{Rows: uint32(rows), D: uint32(d), PerItem: uint32(perItem), Chunk: chunkRows}
	oa, ooff := b.bindAll(os[0], true)
	gya, gyoff := b.bindAll(os[1], false)
	xa, xoff := b.bindAll(os[2], false)
	ga, goff := b.bindAll(vs[2], false)
	ma, moff := b.bindAll(vs[3], false)
	ia, ioff := b.bindAll(vs[4], false)
	push.OOff, push.OStride, push.GYOff, push.GYStride, push.XOff, push.XStride = ooff, uint32(os[0].stride), gyoff, uint32(os[1].stride), xoff, uint32(os[2].stride)
	push.GOff, push.MOff, push.IOff = goff, moff, ioff
	if err := b.dev.Dispatch(rk, []vkrt.Access{oa, gya, xa, ga, ma, ia}, pushBytes(&push), rowGrid(rows), what); err != nil {
		return err
	}
	ck, err := b.kernel(shaders.LayerNormGradCols, 64)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	part, err := b.scratch(2 * chunks * d)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer part.Free()
	pa := vkrt.Access{Buf: part, Size: part.Size(), Write: true}
	if chunks > 65535 {
		return fmt.Errorf("%s: %d rows are too many", what, rows)
	}
	if err := b.dev.Dispatch(ck, []vkrt.Access{pa, gya, xa, ma, ia}, pushBytes(&push), [3]uint32{uint32(ceilDiv(d, 64)), uint32(chunks), 1}, what); err != nil {
		return err
	}
	pa.Write = false
	gga, ggoff := b.bindAll(vs[0], true)
	if err := b.sumRows(what, gga, pa, ggoff, 0, d, chunks, 2, 2*d, 1); err != nil {
		return err
	}
	gba, gboff := b.bindAll(vs[1], true)
	return b.sumRows(what, gba, pa, gboff, 1, d, chunks, 2, 2*d, 1)
}

// Permute implements ops.TransformerKernels.
func (b *Backend) Permute(dst, x *tensor.Tensor, perm []int) error {
	const what = "permute"
	r := x.Rank()
	if len(perm) != r || dst.Rank() != r {
		return fmt.Errorf("%s: %v by %v into %v", what, x.Shape(), perm, dst.Shape())
	}
	if r > 6 {
		return fmt.Errorf("%s: rank %d, at most 6", what, r)
	}
	for k, d := range perm {
		if d < 0 || d >= r || dst.Dim(k) != x.Dim(d) {
			return fmt.Errorf("%s: %v by %v does not give %v", what, x.Shape(), perm, dst.Shape())
		}
	}
	xo, err := b.operand(x)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	do, err := b.dense(dst)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if xo.n*xo.inner > b.maxElems() {
		return fmt.Errorf("%s: %v is larger than one binding", what, x.Shape())
	}
	var xs [6]int64
	acc := int64(1)
	for k := r - 1; k >= 1; k-- {
		xs[k] = acc
		acc *= int64(x.Dim(k))
	}
	xs[0] = xo.stride
	push := permutePush{Rank: uint32(r)}
	for k, d := range perm {
		push.Dims[k] = uint32(dst.Dim(k))
		push.XS[k] = uint32(xs[d])
	}
	k, err := b.kernel(shaders.Permute, ewWorkGroup)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	xa, xoff := b.bindAll(xo, false)
	push.XOff = xoff
	for _, pc := range b.elemPieces(do.n*do.inner, do) {
		da, s := b.bind(do.buf, do.off+pc[0], do.off+pc[1], true)
		push.DOff, push.E0, push.Count = uint32(do.off-s), uint32(pc[0]), uint32(pc[1]-pc[0])
		if err := b.dev.Dispatch(k, []vkrt.Access{da, xa}, pushBytes(&push), [3]uint32{b.groups(pc[1]-pc[0], ewWorkGroup), 1, 1}, what); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}
