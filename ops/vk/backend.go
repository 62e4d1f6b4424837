// Package vk is the Vulkan backend: every kernel of ops.Backend as a SPIR-V compute shader
// (shaders/), recorded through internal/vkrt. Kernels run asynchronously in call order;
// Download and Sync wait. It registers itself as "vulkan".
//
// Tensors are batch-strided views over arena ranges; each operand reaches a shader as a binding
// plus an element offset and a batch stride in push constants. Bindings never exceed the
// device's maxStorageBufferRange (128 MiB on lavapipe): larger tensors are processed in slices
// of batch items or of elements (slice.go).
package vk

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"github.com/chnet/chnet/internal/vkrt"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/shaders"
	"github.com/chnet/chnet/tensor"
)

func init() {
	ops.Register("vulkan", func(device string) (ops.Backend, error) {
		return Open(vkrt.Options{Device: device})
	})
}

// Backend runs ops on one Vulkan device.
type Backend struct {
	dev   *vkrt.Device
	tiles tileSet

	mu      sync.Mutex
	kernels map[kernelKey]*vkrt.Kernel
	tables  map[tableKey]tapTable // resize tap tables, kept for the backend's life

	counters    *vkrt.Buffer // batch norm's counter ring (bnCounterSlots)
	counterNext int64
	// splitRing is the ring of split-K tile counters (splitCounters), kept for the backend's
	// life; splitRingNext is where the next dispatch's range starts.
	splitRingMu   sync.Mutex
	splitRing     *tensor.Tensor
	splitRingNext int64
	// statsRing holds the partial statistics of Conv2DBatchStats, in consecutive ranges, so
	// that independent convolutions do not share (and wait on) one scratch range.
	statsRingMu   sync.Mutex
	statsRing     *tensor.Tensor
	statsRingNext int64
}

// kernelKey is comparable, so the per-dispatch lookup allocates nothing.
type kernelKey struct {
	name string
	n    int
	spec [12]uint32
}

// Open opens the Vulkan device chosen by opts (the best one by default).
func Open(opts vkrt.Options) (*Backend, error) {
	d, err := vkrt.Open(opts)
	if err != nil {
		return nil, err
	}
	b := &Backend{dev: d, kernels: map[kernelKey]*vkrt.Kernel{}, tables: map[tableKey]tapTable{}}
	b.tiles = chooseTiles(d.Info)
	if err := b.initCounters(); err != nil {
		d.Close()
		return nil, err
	}
	return b, nil
}

// OpenPlan returns a backend over a planning device (vkrt.OpenPlan) with info's capabilities:
// every op checks, chooses kernels and tiles, binds, allocates and records exactly as on such a
// device, but nothing runs and downloads read zeros. Its device's Stats and MemoryPeak count
// what a step would cost there.
func OpenPlan(info vkrt.DeviceInfo, opts vkrt.Options) (*Backend, error) {
	d, err := vkrt.OpenPlan(info, opts)
	if err != nil {
		return nil, err
	}
	b := &Backend{dev: d, kernels: map[kernelKey]*vkrt.Kernel{}, tables: map[tableKey]tapTable{}}
	b.tiles = chooseTiles(d.Info)
	if err := b.initCounters(); err != nil {
		d.Close()
		return nil, err
	}
	return b, nil
}

// Device is the backend's Vulkan device (capabilities, statistics, validation messages).
func (b *Backend) Device() *vkrt.Device { return b.dev }

// Close waits for outstanding work and releases the device. Tensors of the backend become
// invalid.
func (b *Backend) Close() error { return b.dev.Close() }

// Name implements ops.Backend.
func (b *Backend) Name() string { return "vulkan" }

// storage is a tensor's arena range. Alloc returns a new one each time, even for a reused range.
type storage struct {
	buf *vkrt.Buffer
	n   int
}

// Len implements tensor.Storage; a released storage has length 0, so any tensor still viewing
// it fails the operand bounds check instead of touching reused memory.
func (s *storage) Len() int { return s.n }

// Alloc implements ops.Backend.
func (b *Backend) Alloc(shape tensor.Shape) (*tensor.Tensor, error) {
	if err := shape.Validate(); err != nil {
		return nil, err
	}
	n := shape.Numel()
	buf, err := b.dev.Alloc(4 * int64(n))
	if err != nil {
		return nil, fmt.Errorf("allocate %v (%d bytes): %w", shape, 4*n, err)
	}
	st := &storage{buf: buf, n: n}
	// A backstop for storages nobody releases: return the range once st is unreachable. Free is
	// bookkeeping only (no Vulkan call), safe in the cleanup goroutine and after Release.
	runtime.AddCleanup(st, func(buf *vkrt.Buffer) { buf.Free() }, buf)
	return tensor.New(st, shape)
}

// Release implements ops.Backend. Kernels already recorded may still read the range; a later
// writer to it is ordered after them by the recorder's hazard tracking.
func (b *Backend) Release(s tensor.Storage) {
	if st, ok := s.(*storage); ok && st.buf != nil {
		st.buf.Free()
		st.buf, st.n = nil, 0
	}
}

// operand is a batch-strided tensor resolved to its buffer: n items of inner elements, item i at
// element off+i*stride of buf. Elements are fp32, or fp16 for a Half (half: halfOperand).
type operand struct {
	buf                   *vkrt.Buffer
	off, stride, n, inner int64
	half                  bool
}

// at is the element index of logical element i.
func (o operand) at(i int64) int64 {
	q := i / o.inner
	return o.off + q*o.stride + i - q*o.inner
}

func (b *Backend) operand(t *tensor.Tensor) (operand, error) {
	if t == nil {
		return operand{}, fmt.Errorf("vulkan backend: nil tensor")
	}
	st, ok := t.Storage().(*storage)
	if !ok {
		return operand{}, fmt.Errorf("vulkan backend: %v lives on another backend", t)
	}
	stride, ok := t.BatchStride()
	if !ok {
		return operand{}, fmt.Errorf("vulkan backend: %v is not batch-strided", t)
	}
	n := int64(1)
	if t.Rank() > 0 {
		n = int64(t.Dim(0))
	}
	inner := int64(t.Numel()) / n
	if st.buf == nil || int64(t.Offset())+(n-1)*int64(stride)+inner > int64(st.n) {
		return operand{}, fmt.Errorf("vulkan backend: %v extends past its storage (released?)", t)
	}
	if n > 1 && int64(stride) < inner {
		return operand{}, fmt.Errorf("vulkan backend: %v has overlapping batch items (stride %d < %d)", t, stride, inner)
	}
	if n == 1 {
		stride = int(inner)
	}
	return operand{buf: st.buf, off: int64(t.Offset()), stride: int64(stride), n: n, inner: inner}, nil
}

func (b *Backend) operands(ts ...*tensor.Tensor) ([]operand, error) {
	out := make([]operand, len(ts))
	for i, t := range ts {
		o, err := b.operand(t)
		if err != nil {
			return nil, err
		}
		out[i] = o
	}
	return out, nil
}

// dense checks that t is contiguous (a vector, a weight) and returns it.
func (b *Backend) dense(t *tensor.Tensor) (operand, error) {
	o, err := b.operand(t)
	if err == nil && o.n > 1 && o.stride != o.inner {
		err = fmt.Errorf("vulkan backend: %v must be contiguous", t)
	}
	return o, err
}

// bind returns the binding of elements [lo, hi) of buf, starting at the aligned-down offset, and
// the element index where the binding starts.
func (b *Backend) bind(buf *vkrt.Buffer, lo, hi int64, write bool) (vkrt.Access, int64) {
	align := b.dev.BindAlign()
	start := 4 * lo / align * align
	return vkrt.Access{Buf: buf, Off: start, Size: 4*hi - start, Write: write}, start / 4
}

// bindItems binds items [i0, i1) of o; the returned offset is o.off relative to the binding
// start, modulo 2^32 (shaders address off + i*stride + r with wrapping uint arithmetic).
func (b *Backend) bindItems(o operand, i0, i1 int64, write bool) (vkrt.Access, uint32) {
	if o.half {
		// A Half binds whole (AllocHalf keeps it within one binding): no fp16 offset to align.
		return vkrt.Access{Buf: o.buf, Size: o.buf.Size(), Write: write}, uint32(o.off)
	}
	acc, s := b.bind(o.buf, o.off+i0*o.stride, o.off+(i1-1)*o.stride+o.inner, write)
	if o.stride > o.inner && i1-i0 > 1 {
		// Kernels touch only the items: slices interleaved with this one are not hazards.
		acc.Items = &vkrt.Items{First: 4 * (o.off + i0*o.stride), Stride: 4 * o.stride, Inner: 4 * o.inner}
	}
	return acc, uint32(o.off - s)
}

// bindAll binds a whole dense operand.
func (b *Backend) bindAll(o operand, write bool) (vkrt.Access, uint32) {
	return b.bindItems(o, 0, o.n, write)
}

// kernel returns the pipeline of a shader variant with its specialization constants.
func (b *Backend) kernel(name string, spec ...uint32) (*vkrt.Kernel, error) {
	key := kernelKey{name: name, n: len(spec)}
	copy(key.spec[:], spec)
	b.mu.Lock()
	k, ok := b.kernels[key]
	b.mu.Unlock()
	if ok {
		return k, nil
	}
	code, err := shaders.SPIRV(name)
	if err != nil {
		return nil, err
	}
	k, err = b.dev.Kernel(vkrt.KernelSpec{Name: name, SPIRV: code, Bindings: shaders.Bindings[name], Spec: spec})
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.kernels[key] = k
	b.mu.Unlock()
	return k, nil
}

// pushBytes views a push-constant struct as bytes.
func pushBytes[T any](p *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), unsafe.Sizeof(*p))
}

// groups is the workgroup count for n invocations of size wg, capped so grid-stride loops cover
// the rest.
func (b *Backend) groups(n int64, wg int64) uint32 {
	g := (n + wg - 1) / wg
	return uint32(min(max(g, 1), int64(b.dev.Info.MaxWorkGroupCount[0]), 65535))
}

// itemRegions lists the byte regions of a batch-strided operand's items, merged when contiguous.
func itemRegions(o operand) []vkrt.Region {
	if o.n == 1 || o.stride == o.inner {
		return []vkrt.Region{{Off: 4 * o.off, Size: 4 * o.n * o.inner}}
	}
	r := make([]vkrt.Region, o.n)
	for i := range r {
		r[i] = vkrt.Region{Off: 4 * (o.off + int64(i)*o.stride), Size: 4 * o.inner}
	}
	return r
}

func floatBytes(v []float32) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
}

// Upload implements ops.Backend.
func (b *Backend) Upload(dst *tensor.Tensor, src []float32) error {
	o, err := b.operand(dst)
	if err != nil {
		return err
	}
	if int64(len(src)) != o.n*o.inner {
		return fmt.Errorf("upload: %d values for a tensor of %d", len(src), o.n*o.inner)
	}
	return b.dev.Upload(o.buf, itemRegions(o), floatBytes(src))
}

// Download implements ops.Backend.
func (b *Backend) Download(src *tensor.Tensor) ([]float32, error) {
	o, err := b.operand(src)
	if err != nil {
		return nil, err
	}
	out := make([]float32, o.n*o.inner)
	if err := b.dev.Download(o.buf, itemRegions(o), floatBytes(out)); err != nil {
		return nil, err
	}
	return out, nil
}

// ReadAsync implements ops.AsyncReader: the copy is recorded and everything recorded so far is
// submitted; the returned function waits for that submission alone.
func (b *Backend) ReadAsync(src *tensor.Tensor) (func() ([]float32, error), error) {
	o, err := b.operand(src)
	if err != nil {
		return nil, err
	}
	p, err := b.dev.ReadAsync(o.buf, itemRegions(o))
	if err != nil {
		return nil, err
	}
	if err := b.dev.Flush(); err != nil {
		return nil, err
	}
	return func() ([]float32, error) {
		raw, err := p.Wait()
		if err != nil {
			return nil, err
		}
		out := make([]float32, len(raw)/4)
		copy(floatBytes(out), raw)
		return out, nil
	}, nil
}

// Sync implements ops.Backend.
func (b *Backend) Sync() error { return b.dev.Sync() }

var (
	_ ops.Backend     = (*Backend)(nil)
	_ ops.AsyncReader = (*Backend)(nil)
)

// BeginCapture implements ops.Capturer (vkrt.Device.BeginCapture).
func (b *Backend) BeginCapture() error { return b.dev.BeginCapture() }

// EndCapture implements ops.Capturer.
func (b *Backend) EndCapture() (ops.Replay, error) {
	c, err := b.dev.EndCapture()
	if err != nil {
		return nil, err
	}
	return replay{b.dev, c}, nil
}

// replay is a vkrt.Capture as an ops.Replay.
type replay struct {
	d *vkrt.Device
	c *vkrt.Capture
}

func (r replay) Run() error     { return r.d.Replay(r.c) }
func (r replay) Release() error { return r.c.Release() }

var _ ops.Capturer = (*Backend)(nil)
