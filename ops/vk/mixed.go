package vk

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"github.com/chnet/chnet/internal/vkrt"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/shaders"
	"github.com/chnet/chnet/tensor"
)

// Mixed precision, the foundation (issue 14). The tensor package has no dtype: tensors are fp32
// everywhere, and fp16 lives only here, in Half matrices that the backend owns. A mixed GEMM is
//
//	ToHalf(a16, a)  ToHalf(b16, b)  MatMulMixed(c, a16, b16)   // c fp32 = a16·b16, fp32 sums
//
// so callers keep fp32 tensors (master weights, activations) and choose where to round to fp16.
// A Half packs two values per 32-bit word (element 2i in the low half); it is always bound from
// its start, so its offset never needs fp16 alignment arithmetic.
//
// Kernels: half_from_float / half_to_float convert in integer arithmetic (round to nearest even,
// identical on every device); matmul_mixed is the fp32 matmul's tiling with fp16 operands widened
// as they are loaded (any device with 16-bit storage: lavapipe in CI); matmul_mixed_coopmat is the
// tensor-core form (GL_NV_cooperative_matrix), chosen when the device lists the 16×16×16
// fp16·fp16+fp32 shape with 32-wide subgroups. CHNET_VK_COOPMAT=0 forces the scalar kernel.

// ErrNoFP16 is returned by the mixed-precision entry points on a device without shaderFloat16
// and storageBuffer16BitAccess.
var ErrNoFP16 = errors.New("the device has no fp16 support (shaderFloat16 + storageBuffer16BitAccess)")

// Half is an fp16 array in device memory, row-major: a matrix for MatMulMixed (its first
// dimension by the product of the rest), an NCHW activation or OIHW weight for the mixed
// convolutions (conv2d_mixed.go).
type Half struct {
	buf   *vkrt.Buffer
	shape tensor.Shape
}

// Shape is the array's shape (not to be modified); Len its element count.
func (h *Half) Shape() tensor.Shape { return h.shape }
func (h *Half) Len() int            { return h.shape.Numel() }

// Rows and Cols view the array as a matrix: the first dimension, and the product of the rest.
func (h *Half) Rows() int { return h.shape[0] }
func (h *Half) Cols() int { return h.Len() / h.shape[0] }

// words is the buffer length in 32-bit words.
func (h *Half) words() int64 { return int64(h.Len()+1) / 2 }

// Free returns the array's memory; kernels already recorded may still read it (the recorder
// orders a later writer after them).
func (h *Half) Free() {
	if h.buf != nil {
		h.buf.Free()
		h.buf = nil
	}
}

func (h *Half) access(write bool) vkrt.Access {
	return vkrt.Access{Buf: h.buf, Off: 0, Size: 4 * h.words(), Write: write}
}

// MixedKernel names the GEMM kernel MatMulMixed uses on this device: shaders.MatmulMixedCoopmat,
// shaders.MatmulMixed, or "" (no fp16 support).
func (b *Backend) MixedKernel() string {
	info := b.dev.Info
	if !info.Float16 || !info.Storage16 {
		return ""
	}
	if os.Getenv("CHNET_VK_COOPMAT") != "0" && info.HasCoopMatNV(16, 16, 16) && info.SubgroupSize == 32 &&
		info.MaxWorkGroupInvocations >= 256 && info.MaxWorkGroupSize[0] >= 256 && info.MaxSharedMemory >= coopmatShared {
		return shaders.MatmulMixedCoopmat
	}
	return shaders.MatmulMixed
}

// coopmatShared is matmul_mixed_coopmat.comp's shared memory: the A and B tiles in fp16 and eight
// 16×16 fp32 staging tiles.
const coopmatShared = 2*(128*(32+8)+32*(128+8)) + 4*8*256

// AllocHalf allocates an uninitialised fp16 array of the given shape: rows, cols for a matrix;
// N, C, H, W or O, C/groups, KH, KW for a convolution's operand.
func (b *Backend) AllocHalf(dims ...int) (*Half, error) {
	shape := tensor.Shape(dims).Clone()
	if b.MixedKernel() == "" {
		return nil, fmt.Errorf("fp16 array %v: %s: %w", shape, b.dev.Info.Name, ErrNoFP16)
	}
	if len(shape) == 0 {
		return nil, fmt.Errorf("fp16 array: no shape given")
	}
	if err := shape.Validate(); err != nil {
		return nil, fmt.Errorf("fp16 array: %w", err)
	}
	h := &Half{shape: shape}
	if 4*h.words() > b.dev.MaxRange() {
		return nil, fmt.Errorf("fp16 array %v: %d bytes exceed the device's storage-buffer range (%d)", shape, 4*h.words(), b.dev.MaxRange())
	}
	buf, err := b.dev.Alloc(4 * h.words())
	if err != nil {
		return nil, fmt.Errorf("fp16 array %v: %w", shape, err)
	}
	h.buf = buf
	return h, nil
}

// halfPush mirrors half_convert.comp's push block.
type halfPush struct{ Off, N uint32 }

// mixedPush mirrors the push block of matmul_mixed.comp and matmul_mixed_coopmat.comp.
type mixedPush struct{ DOff, M, N, K uint32 }

// halfTensor checks an fp32 tensor that pairs with h: dense, as many elements, within one binding.
func (b *Backend) halfTensor(what string, t *tensor.Tensor, h *Half) (vkrt.Access, uint32, error) {
	if h == nil || h.buf == nil {
		return vkrt.Access{}, 0, fmt.Errorf("%s: fp16 array is nil or freed", what)
	}
	o, err := b.dense(t)
	if err != nil {
		return vkrt.Access{}, 0, fmt.Errorf("%s: %w", what, err)
	}
	if n := o.n * o.inner; n != int64(h.Len()) {
		return vkrt.Access{}, 0, fmt.Errorf("%s: tensor %v has %d elements, the fp16 array %v has %d", what, t.Shape(), n, h.shape, h.Len())
	}
	acc, off := b.bindAll(o, false)
	if acc.Size > b.dev.MaxRange() {
		return vkrt.Access{}, 0, fmt.Errorf("%s: tensor %v exceeds the device's storage-buffer range", what, t.Shape())
	}
	return acc, off, nil
}

// ToHalf rounds src (fp32, dense, h.Len() elements) into h, to nearest even.
func (b *Backend) ToHalf(dst *Half, src *tensor.Tensor) error {
	const what = "to fp16"
	acc, off, err := b.halfTensor(what, src, dst)
	if err != nil {
		return err
	}
	return b.convert(what, shaders.HalfFromFloat, []vkrt.Access{dst.access(true), acc}, off, dst)
}

// FromHalf widens h into dst (fp32, dense, h.Len() elements), exactly.
func (b *Backend) FromHalf(dst *tensor.Tensor, src *Half) error {
	const what = "from fp16"
	acc, off, err := b.halfTensor(what, dst, src)
	if err != nil {
		return err
	}
	acc.Write = true
	return b.convert(what, shaders.HalfToFloat, []vkrt.Access{acc, src.access(false)}, off, src)
}

func (b *Backend) convert(what, name string, binds []vkrt.Access, off uint32, h *Half) error {
	k, err := b.kernel(name)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	push := halfPush{Off: off, N: uint32(h.Len())}
	if err := b.dev.Dispatch(k, binds, pushBytes(&push), [3]uint32{b.groups(h.words(), 64), 1, 1}, what); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// UploadHalf writes fp16 bit patterns (len h.Len()) into h.
func (b *Backend) UploadHalf(dst *Half, bits []uint16) error {
	if len(bits) != dst.Len() {
		return fmt.Errorf("upload fp16: %d values for an array of %v", len(bits), dst.shape)
	}
	data := make([]uint16, 2*dst.words())
	copy(data, bits)
	return b.dev.Upload(dst.buf, []vkrt.Region{{Off: 0, Size: 4 * dst.words()}}, halfBytes(data))
}

// DownloadHalf reads h's fp16 bit patterns.
func (b *Backend) DownloadHalf(src *Half) ([]uint16, error) {
	data := make([]uint16, 2*src.words())
	if err := b.dev.Download(src.buf, []vkrt.Region{{Off: 0, Size: 4 * src.words()}}, halfBytes(data)); err != nil {
		return nil, fmt.Errorf("download fp16: %w", err)
	}
	return data[:src.Len()], nil
}

func halfBytes(v []uint16) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 2*len(v))
}

// MatMulMixed computes dst (fp32, [M N] dense) = op(a)·op(b), where op transposes when p says so:
// a is M×K (K×M stored, TransA), b is K×N (N×K stored, TransB), each viewed as a matrix (Rows,
// Cols). Products are summed in fp32.
func (b *Backend) MatMulMixed(dst *tensor.Tensor, a, bm *Half, p ops.MatMulParams) error {
	return b.matMulMixed(dst, a, bm, p, b.MixedKernel())
}

// matMulMixed runs MatMulMixed with the kernel name; tests also pass
// shaders.MatmulMixedCoopmatEmulated.
func (b *Backend) matMulMixed(dst *tensor.Tensor, a, bm *Half, p ops.MatMulParams, name string) error {
	const what = "mixed matmul"
	if name == "" || b.MixedKernel() == "" {
		return fmt.Errorf("%s: %s: %w", what, b.dev.Info.Name, ErrNoFP16)
	}
	if dst.Rank() != 2 {
		return fmt.Errorf("%s: destination %v must be [M N]", what, dst.Shape())
	}
	if a == nil || a.buf == nil || bm == nil || bm.buf == nil {
		return fmt.Errorf("%s: an fp16 operand is nil or freed", what)
	}
	m, n := dst.Dim(0), dst.Dim(1)
	am, ak := a.Rows(), a.Cols()
	if p.TransA {
		am, ak = ak, am
	}
	bk, bn := bm.Rows(), bm.Cols()
	if p.TransB {
		bk, bn = bn, bk
	}
	if am != m || bn != n || ak != bk {
		return fmt.Errorf("%s: %d×%d x %d×%d (%+v) does not give %v", what, a.Rows(), a.Cols(), bm.Rows(), bm.Cols(), p, dst.Shape())
	}
	do, err := b.dense(dst)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	da, doff := b.bindAll(do, true)
	if da.Size > b.dev.MaxRange() {
		return fmt.Errorf("%s: destination %v exceeds the device's storage-buffer range", what, dst.Shape())
	}
	var ta, tb uint32
	if p.TransA {
		ta = 1
	}
	if p.TransB {
		tb = 1
	}
	var k *vkrt.Kernel
	var groups [3]uint32
	if name == shaders.MatmulMixedCoopmat || name == shaders.MatmulMixedCoopmatEmulated {
		spec := make([]uint32, 12) // constant_id 10, 11: TA, TB
		spec[10], spec[11] = ta, tb
		k, err = b.kernel(name, spec...)
		groups = [3]uint32{uint32(ceilDiv(int64(n), 128)), uint32(ceilDiv(int64(m), 128)), 1}
	} else {
		t := b.tiles.pick(int64(m), int64(n), 1)
		avec := b.tiles.avec
		if t.tm%4 != 0 {
			avec = 0
		}
		k, err = b.kernel(name, uint32(t.wg()), uint32(t.bm), uint32(t.bn), uint32(t.bk), uint32(t.tm), uint32(t.tn), 1, 1, 1, avec, ta, tb)
		groups = [3]uint32{uint32(ceilDiv(int64(n), t.bn)), uint32(ceilDiv(int64(m), t.bm)), 1}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if groups[0] > 65535 || groups[1] > 65535 {
		return fmt.Errorf("%s: %v needs %v workgroups, more than a dispatch allows", what, dst.Shape(), groups)
	}
	push := mixedPush{DOff: doff, M: uint32(m), N: uint32(n), K: uint32(ak)}
	macs := int64(m) * int64(n) * int64(ak)
	if err := b.dev.DispatchMACs(k, []vkrt.Access{da, a.access(false), bm.access(false)}, pushBytes(&push), groups, what, macs); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// The push blocks fit the 128 bytes every pipeline layout declares (as in push.go).
var (
	_ [vkrt.MaxPush - unsafe.Sizeof(halfPush{})]byte
	_ [vkrt.MaxPush - unsafe.Sizeof(mixedPush{})]byte
)
