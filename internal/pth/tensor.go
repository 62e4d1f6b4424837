package pth

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"

	"github.com/x448/float16"
)

// dtype is a storage element type.
type dtype struct {
	name  string // safetensors-style name: "F32", "I64", ...
	size  int64  // bytes per element
	float bool   // widened into Tensor.F32; otherwise into Tensor.I64
}

// storageDTypes maps torch's storage class names to element types. Complex and quantized
// storages are left out, so they are refused as unknown globals.
var storageDTypes = map[string]dtype{
	"FloatStorage":    {"F32", 4, true},
	"DoubleStorage":   {"F64", 8, true},
	"HalfStorage":     {"F16", 2, true},
	"BFloat16Storage": {"BF16", 2, true},
	"LongStorage":     {"I64", 8, false},
	"IntStorage":      {"I32", 4, false},
	"ShortStorage":    {"I16", 2, false},
	"CharStorage":     {"I8", 1, false},
	"ByteStorage":     {"U8", 1, false},
	"BoolStorage":     {"BOOL", 1, false},
}

// storageRef is one storage as a persistent id declares it: numel elements of dt. load returns
// its bytes (for a legacy storage view, the viewed part of the root storage), read once.
type storageRef struct {
	key   string
	dt    dtype
	numel int64
	err   error // the stored bytes disagree with the declaration; reported with the tensor
	load  func() ([]byte, error)
}

// tensorRef is a tensor as _rebuild_tensor* describes it: a strided view of a storage. Its
// bounds are checked in check, once the name it is stored under is known.
type tensorRef struct {
	storage *storageRef
	offset  int64
	size    []int64
	stride  []int64
	what    string // pickle and byte offset, to name a tensor outside the state dict
	at      int64
}

func mulOK(a, b int64) (int64, bool) {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, false
	}
	return int64(lo), true
}

// numel returns the element count of the view; check has already bounded it.
func (t *tensorRef) numel() int64 {
	n := int64(1)
	for _, d := range t.size {
		n *= d
	}
	return n
}

// check verifies the view lies inside its storage: non-negative sizes, strides and offset, and
// offset + Σ (size_i−1)·stride_i < storage elements, all with overflow checks.
func (t *tensorRef) check() error {
	s := t.storage
	if s.err != nil {
		return fmt.Errorf("storage %q: %w", s.key, s.err)
	}
	bad := func(why string) error {
		return errf(ErrCorrupt, "view (offset %d, size %v, stride %v) of storage %q (%d %s elements): %s",
			t.offset, t.size, t.stride, s.key, s.numel, s.dt.name, why)
	}
	if t.offset < 0 {
		return bad("negative storage offset")
	}
	n := int64(1)
	for i, d := range t.size {
		if d < 0 {
			return bad("negative size")
		}
		if t.stride[i] < 0 {
			return bad("negative stride")
		}
		var ok bool
		if n, ok = mulOK(n, d); !ok {
			return bad("element count overflows")
		}
	}
	if n == 0 {
		if t.offset > s.numel {
			return bad("offset past the end of the storage")
		}
		return nil
	}
	last := t.offset
	for i, d := range t.size {
		step, ok := mulOK(d-1, t.stride[i])
		if !ok || last > math.MaxInt64-step {
			return bad("extent overflows")
		}
		last += step
	}
	if last >= s.numel {
		return bad(fmt.Sprintf("reaches element %d, past the end of the storage", last))
	}
	return nil
}

// contiguous reports whether the view is row-major and dense, so it is one run of elements.
func (t *tensorRef) contiguous() bool {
	want := int64(1)
	for i := len(t.size) - 1; i >= 0; i-- {
		if t.size[i] != 1 && t.stride[i] != want {
			return false
		}
		want *= t.size[i]
	}
	return true
}

// outSize is the bytes one element takes in a Tensor.
func (t *tensorRef) outSize() int64 {
	if t.storage.dt.float {
		return 4
	}
	return 8
}

// gather copies the view out of the storage's bytes into a Tensor, in row-major order.
func (t *tensorRef) gather(data []byte) Tensor {
	dt := t.storage.dt
	n := t.numel()
	shape := make([]int, len(t.size))
	for i, d := range t.size {
		shape[i] = int(d)
	}
	out := Tensor{DType: dt.name, Shape: shape}
	var put func(i int64, e []byte)
	if dt.float {
		out.F32 = make([]float32, n)
		put = floatPut(dt.name, out.F32)
	} else {
		out.I64 = make([]int64, n)
		put = intPut(dt.name, out.I64)
	}
	sz := dt.size
	if t.contiguous() {
		for i := int64(0); i < n; i++ {
			j := (t.offset + i) * sz
			put(i, data[j:j+sz])
		}
		return out
	}
	if n == 0 {
		return out
	}
	// Odometer over the multi-index; pos is the storage element of the current index.
	idx := make([]int64, len(t.size))
	pos := t.offset
	for i := int64(0); i < n; i++ {
		put(i, data[pos*sz:pos*sz+sz])
		for d := len(idx) - 1; d >= 0; d-- {
			idx[d]++
			pos += t.stride[d]
			if idx[d] < t.size[d] {
				break
			}
			pos -= t.stride[d] * idx[d]
			idx[d] = 0
		}
	}
	return out
}

func floatPut(name string, out []float32) func(int64, []byte) {
	le := binary.LittleEndian
	switch name {
	case "F32":
		return func(i int64, e []byte) { out[i] = math.Float32frombits(le.Uint32(e)) }
	case "F64":
		return func(i int64, e []byte) { out[i] = float32(math.Float64frombits(le.Uint64(e))) }
	case "F16":
		return func(i int64, e []byte) { out[i] = float16.Frombits(le.Uint16(e)).Float32() }
	case "BF16": // bfloat16 is the top half of a float32
		return func(i int64, e []byte) { out[i] = math.Float32frombits(uint32(le.Uint16(e)) << 16) }
	}
	panic("pth: no float decoder for " + name) // unreachable: storageDTypes lists the floats
}

func intPut(name string, out []int64) func(int64, []byte) {
	le := binary.LittleEndian
	switch name {
	case "I64":
		return func(i int64, e []byte) { out[i] = int64(le.Uint64(e)) }
	case "I32":
		return func(i int64, e []byte) { out[i] = int64(int32(le.Uint32(e))) }
	case "I16":
		return func(i int64, e []byte) { out[i] = int64(int16(le.Uint16(e))) }
	case "I8":
		return func(i int64, e []byte) { out[i] = int64(int8(e[0])) }
	case "U8", "BOOL":
		return func(i int64, e []byte) { out[i] = int64(e[0]) }
	}
	panic("pth: no integer decoder for " + name) // unreachable: storageDTypes lists the ints
}
