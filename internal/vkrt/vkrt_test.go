package vkrt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/chnet/chnet/shaders"
)

// openTest opens the default device, skipping when there is none unless CHNET_REQUIRE_VULKAN=1.
func openTest(tb testing.TB, opts Options) *Device {
	tb.Helper()
	d, err := Open(opts)
	if err != nil {
		if os.Getenv("CHNET_REQUIRE_VULKAN") != "1" && (errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNoValidationLayer)) {
			tb.Skipf("no Vulkan device (set CHNET_REQUIRE_VULKAN=1 to fail instead): %v", err)
		}
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := d.Close(); err != nil {
			tb.Error(err)
		}
	})
	return d
}

// ewPush mirrors elementwise.comp's push block.
type ewPush struct {
	Start, End, Inner, Op uint32
	Off, Stride           [4]uint32
	Alpha, Beta           float32
	HW, C, Dense          uint32
}

func pushBytes[T any](p *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), unsafe.Sizeof(*p))
}

func kernel(tb testing.TB, d *Device, name string, spec ...uint32) *Kernel {
	tb.Helper()
	code, err := shaders.SPIRV(name)
	if err != nil {
		tb.Fatal(err)
	}
	k, err := d.Kernel(KernelSpec{Name: name, SPIRV: code, Bindings: shaders.Bindings[name], Spec: spec})
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func floats(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func floatBytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

func TestDevices(t *testing.T) {
	devs, err := Devices()
	if err != nil {
		if os.Getenv("CHNET_REQUIRE_VULKAN") != "1" && errors.Is(err, ErrUnavailable) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	for _, d := range devs {
		t.Log("\n" + d.Describe())
		if d.MaxStorageBufferRange == 0 || d.SubgroupSize == 0 || d.MaxPushConstants < 128 {
			t.Errorf("%s: implausible capabilities %+v", d.Name, d)
		}
	}
	if _, err := Choose(devs, "no such device name"); err == nil {
		t.Error("Choose accepted a name no device has")
	}
	if got, err := Choose(devs, "0"); err != nil || got.Index != 0 {
		t.Errorf("Choose(0) = %v, %v", got.Index, err)
	}
}

func TestUploadDownload(t *testing.T) {
	d := openTest(t, Options{})
	b, err := d.Alloc(4000)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Free()
	in := make([]byte, 1000)
	for i := range in {
		in[i] = byte(i * 7)
	}
	// Two regions out of order.
	if err := d.Upload(b, []Region{{2000, 500}, {0, 500}}, in); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 1000)
	if err := d.Download(b, []Region{{2000, 500}, {0, 500}}, out); err != nil {
		t.Fatal(err)
	}
	for i := range in {
		if in[i] != out[i] {
			t.Fatalf("byte %d: got %d want %d", i, out[i], in[i])
		}
	}
}

func TestDispatchAndBarriers(t *testing.T) {
	d := openTest(t, Options{})
	fill := kernel(t, d, shaders.ElementwiseFill, 64)
	unary := kernel(t, d, shaders.ElementwiseUnary, 64)
	const n = 1000
	a, _ := d.Alloc(4 * n)
	b, _ := d.Alloc(4 * n)
	c, _ := d.Alloc(4 * n)
	defer a.Free()
	defer b.Free()
	defer c.Free()
	all := func(buf *Buffer, w bool) Access { return Access{Buf: buf, Off: 0, Size: 4 * n, Write: w} }
	groups := [3]uint32{(n + 63) / 64, 1, 1}
	p := ewPush{End: n, Inner: n, Stride: [4]uint32{n, n}, Dense: 1, Alpha: 3}
	before := d.Stats()
	if err := d.Dispatch(fill, []Access{all(a, true)}, pushBytes(&p), groups, "fill a"); err != nil {
		t.Fatal(err)
	}
	p.Alpha = 5
	if err := d.Dispatch(fill, []Access{all(b, true)}, pushBytes(&p), groups, "fill b"); err != nil {
		t.Fatal(err)
	}
	if got := d.Stats().Barriers - before.Barriers; got != 0 {
		t.Errorf("independent fills recorded %d barriers, want 0", got)
	}
	// c = 2a - c (axpby reading a): RAW on a needs a barrier.
	p = ewPush{End: n, Inner: n, Stride: [4]uint32{n, n}, Dense: 1, Op: 6, Alpha: 2, Beta: 0}
	if err := d.Dispatch(unary, []Access{all(c, true), all(a, false)}, pushBytes(&p), groups, "axpby"); err != nil {
		t.Fatal(err)
	}
	if got := d.Stats().Barriers - before.Barriers; got != 1 {
		t.Errorf("dependent axpby: %d barriers, want 1", got)
	}
	out := make([]byte, 4*n)
	if err := d.Download(c, []Region{{0, 4 * n}}, out); err != nil {
		t.Fatal(err)
	}
	for i, v := range floats(out) {
		if v != 6 {
			t.Fatalf("c[%d] = %v, want 6", i, v)
		}
	}
	if err := d.Download(b, []Region{{0, 4 * n}}, out); err != nil {
		t.Fatal(err)
	}
	if v := floats(out)[n-1]; v != 5 {
		t.Fatalf("b = %v, want 5", v)
	}
}

func TestDispatchErrors(t *testing.T) {
	d := openTest(t, Options{})
	fill := kernel(t, d, shaders.ElementwiseFill, 64)
	a, _ := d.Alloc(64)
	p := ewPush{End: 16, Inner: 16, Dense: 1}
	if err := d.Dispatch(fill, []Access{{Buf: a, Off: 0, Size: 1 << 20, Write: true}}, pushBytes(&p), [3]uint32{1, 1, 1}, "too big"); err == nil {
		t.Error("a range past the buffer was accepted")
	}
	if err := d.Dispatch(fill, []Access{{Buf: a, Off: 0, Size: 64, Write: true}}, pushBytes(&p), [3]uint32{1 << 30, 1, 1}, "grid"); err == nil {
		t.Error("a grid beyond maxComputeWorkGroupCount was accepted")
	}
	a.Free()
	if err := d.Dispatch(fill, []Access{{Buf: a, Off: 0, Size: 64, Write: true}}, pushBytes(&p), [3]uint32{1, 1, 1}, "freed"); err == nil {
		t.Error("a freed buffer was accepted")
	}
	if _, err := d.Kernel(KernelSpec{Name: "garbage", SPIRV: []byte("not spir-v at all...."), Bindings: 1}); err == nil {
		t.Error("garbage SPIR-V was accepted")
	}
}

func TestArenaReuse(t *testing.T) {
	d := openTest(t, Options{})
	x, _ := d.Alloc(1000)
	y, _ := d.Alloc(3000)
	xo := x.off
	x.Free()
	z, _ := d.Alloc(900)
	if z.blk != x.blk || z.off != xo {
		t.Errorf("freed range not reused: got offset %d, freed %d", z.off, xo)
	}
	x.Free() // double free is a no-op
	y.Free()
	z.Free()
	if d.arena.inUse != 0 {
		t.Errorf("arena reports %d bytes in use after freeing everything", d.arena.inUse)
	}
	if n := len(d.arena.blocks[0].free); n != 1 {
		t.Errorf("free list not coalesced: %v", d.arena.blocks[0].free)
	}
	if _, err := d.Alloc(1 << 50); !errors.Is(err, ErrOutOfDeviceMemory) {
		t.Errorf("a 1 PiB allocation: %v, want ErrOutOfDeviceMemory", err)
	}
}

func TestNoPushDescriptorFallback(t *testing.T) {
	d := openTest(t, Options{NoPushDescriptor: true, MaxDispatchesPerSubmit: 3})
	if d.PushDescriptors() {
		t.Fatal("push descriptors still on")
	}
	fill := kernel(t, d, shaders.ElementwiseFill, 64)
	a, _ := d.Alloc(4 * 64)
	defer a.Free()
	// More dispatches than one pool holds and several submissions.
	for i := 0; i < 300; i++ {
		p := ewPush{End: 64, Inner: 64, Dense: 1, Alpha: float32(i)}
		if err := d.Dispatch(fill, []Access{{Buf: a, Size: 256, Write: true}}, pushBytes(&p), [3]uint32{1, 1, 1}, "fill"); err != nil {
			t.Fatal(err)
		}
	}
	out := make([]byte, 256)
	if err := d.Download(a, []Region{{0, 256}}, out); err != nil {
		t.Fatal(err)
	}
	if v := floats(out)[63]; v != 299 {
		t.Errorf("last fill wrote %v, want 299", v)
	}
}

func TestTimeoutIsAnError(t *testing.T) {
	d := openTest(t, Options{Timeout: time.Nanosecond})
	fill := kernel(t, d, shaders.ElementwiseFill, 64)
	const n = 1 << 24
	a, err := d.Alloc(4 * n)
	if err != nil {
		t.Fatal(err)
	}
	p := ewPush{End: n, Inner: n, Dense: 1}
	for i := 0; i < 20; i++ {
		if err := d.Dispatch(fill, []Access{{Buf: a, Size: 4 * n, Write: true}}, pushBytes(&p), [3]uint32{1024, 1, 1}, "slow fill"); err != nil {
			t.Fatal(err)
		}
	}
	err = d.Sync()
	if err == nil {
		t.Skip("64 MiB x 20 fills finished within 1 ns; cannot provoke a timeout")
	}
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
	t.Log(err)
	// Let the work finish so Close can release everything.
	d.mu.Lock()
	d.timeout = time.Minute
	d.err = nil
	d.mu.Unlock()
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	a.Free()
}

// BenchmarkRecordDispatch measures the host cost of recording one small dispatch (barrier
// elision, push descriptors, push constants, one cgo call); GPU time is excluded by timing
// only the recording of batches that are then waited for off the clock.
func BenchmarkRecordDispatch(b *testing.B) {
	for _, tc := range []struct {
		name    string
		opts    Options
		barrier bool
	}{
		{"push_descriptors", Options{MaxDispatchesPerSubmit: 1 << 30}, false},
		{"push_descriptors_barrier_each", Options{MaxDispatchesPerSubmit: 1 << 30}, true},
		{"pooled_sets", Options{MaxDispatchesPerSubmit: 1 << 30, NoPushDescriptor: true}, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			d := openTest(b, tc.opts)
			unary := kernel(b, d, shaders.ElementwiseUnary, 64)
			x, _ := d.Alloc(256)
			y, _ := d.Alloc(256)
			p := ewPush{End: 64, Inner: 64, Dense: 1, Op: 1}
			binds := []Access{{Buf: y, Size: 256, Write: true}, {Buf: x, Size: 256}}
			if !tc.barrier {
				binds[0].Write = false // read-only on both: never a hazard, never a barrier
				binds[0].Buf = x
			}
			const batch = 1000
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%batch == 0 && i > 0 {
					b.StopTimer()
					if err := d.Sync(); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				if tc.barrier {
					binds[0], binds[1] = binds[1], binds[0]
					binds[0].Write, binds[1].Write = true, false
				}
				if err := d.Dispatch(unary, binds, pushBytes(&p), [3]uint32{1, 1, 1}, "copy"); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if err := d.Sync(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// Device loss and memory exhaustion from any Vulkan call are recognisable with errors.Is, and
// a lost device makes the error sticky (later calls report it too).
func TestTypedErrors(t *testing.T) {
	lost := check(-4, "vkQueueSubmit") // VK_ERROR_DEVICE_LOST
	if !errors.Is(lost, ErrDeviceLost) || errors.Is(lost, ErrOutOfDeviceMemory) {
		t.Errorf("%v: not (only) ErrDeviceLost", lost)
	}
	if oom := check(-2, "vkAllocateMemory"); !errors.Is(oom, ErrOutOfDeviceMemory) {
		t.Errorf("%v: not ErrOutOfDeviceMemory", oom)
	}
	if err := check(0, "ok"); err != nil {
		t.Errorf("VK_SUCCESS became %v", err)
	}
	d := openTest(t, Options{})
	d.mu.Lock()
	d.fail(fmt.Errorf("submit: %w", lost))
	d.mu.Unlock()
	if err := d.Sync(); !errors.Is(err, ErrDeviceLost) {
		t.Errorf("Sync after device loss: %v", err)
	}
	if _, err := d.Alloc(64); !errors.Is(err, ErrDeviceLost) {
		t.Errorf("Alloc after device loss: %v", err)
	}
	d.mu.Lock()
	d.err = nil // let Close release the (healthy) device
	d.mu.Unlock()
}

// The bisecting switches: a full barrier before every command, a wait after every command, no
// reuse of freed ranges; each leaves results unchanged, and $CHNET_VK_DEBUG turns them on.
func TestDebugSwitches(t *testing.T) {
	run := func(opts Options) (Stats, []float32) {
		d := openTest(t, opts)
		fill := kernel(t, d, shaders.ElementwiseFill, 64)
		unary := kernel(t, d, shaders.ElementwiseUnary, 64)
		const n = 1000
		a, _ := d.Alloc(4 * n)
		c, _ := d.Alloc(4 * n)
		defer a.Free()
		defer c.Free()
		all := func(buf *Buffer, w bool) Access { return Access{Buf: buf, Off: 0, Size: 4 * n, Write: w} }
		groups := [3]uint32{(n + 63) / 64, 1, 1}
		before := d.Stats()
		p := ewPush{End: n, Inner: n, Stride: [4]uint32{n, n}, Dense: 1, Alpha: 3}
		if err := d.Dispatch(fill, []Access{all(a, true)}, pushBytes(&p), groups, "fill a"); err != nil {
			t.Fatal(err)
		}
		if err := d.Dispatch(fill, []Access{all(c, true)}, pushBytes(&p), groups, "fill c"); err != nil {
			t.Fatal(err)
		}
		p = ewPush{End: n, Inner: n, Stride: [4]uint32{n, n}, Dense: 1, Op: 6, Alpha: 2}
		if err := d.Dispatch(unary, []Access{all(c, true), all(a, false)}, pushBytes(&p), groups, "axpby"); err != nil {
			t.Fatal(err)
		}
		st := d.Stats()
		st.Dispatches -= before.Dispatches
		st.Barriers -= before.Barriers
		st.Submits -= before.Submits
		out := make([]byte, 4*n)
		if err := d.Download(c, []Region{{0, 4 * n}}, out); err != nil {
			t.Fatal(err)
		}
		// Reuse: a freed range comes back for the next allocation of its size unless disabled.
		x, _ := d.Alloc(4096)
		off := x.off
		x.Free()
		y, _ := d.Alloc(4096)
		defer y.Free()
		if reused := y.blk == x.blk && y.off == off; reused == opts.DebugNoReuse {
			t.Errorf("%+v: freed range reused: %v", opts, reused)
		}
		return st, floats(out)
	}
	for _, c := range []struct {
		opts              Options
		barriers, submits int
	}{
		{Options{}, 1, 0},
		{Options{DebugBarrierEach: true}, 3, 0},
		{Options{DebugSyncEach: true}, 0, 3},
		{Options{DebugNoReuse: true}, 1, 0},
	} {
		st, got := run(c.opts)
		if st.Barriers != c.barriers || st.Submits != c.submits {
			t.Errorf("%+v: %d barriers, %d submits before the download; want %d, %d", c.opts, st.Barriers, st.Submits, c.barriers, c.submits)
		}
		for i, v := range got {
			if v != 6 {
				t.Fatalf("%+v: c[%d] = %v, want 6", c.opts, i, v)
			}
		}
	}

	t.Setenv("CHNET_VK_DEBUG", "barrier, noreuse")
	d := openTest(t, Options{})
	if !d.barEach || d.syncEach || !d.arena.noReuse {
		t.Errorf("CHNET_VK_DEBUG=barrier,noreuse: barrier %v, sync %v, noreuse %v", d.barEach, d.syncEach, d.arena.noReuse)
	}
	t.Setenv("CHNET_VK_DEBUG", "nobarrier")
	if d, err := Open(Options{}); err == nil || !strings.Contains(err.Error(), `unknown switch "nobarrier"`) {
		if err == nil {
			d.Close()
		}
		t.Errorf("CHNET_VK_DEBUG=nobarrier: %v", err)
	}
}

// runSequence records a small fixed sequence (fills, a dependent axpby, an asynchronous read
// overtaken by more work, a download) and returns what the device counted and read.
func runSequence(t *testing.T, d *Device) (Stats, int64, []float32, []float32) {
	t.Helper()
	fill := kernel(t, d, shaders.ElementwiseFill, 64)
	unary := kernel(t, d, shaders.ElementwiseUnary, 64)
	const n = 1000
	a, _ := d.Alloc(4 * n)
	c, _ := d.Alloc(4 * n)
	defer a.Free()
	defer c.Free()
	all := func(buf *Buffer, w bool) Access { return Access{Buf: buf, Off: 0, Size: 4 * n, Write: w} }
	groups := [3]uint32{(n + 63) / 64, 1, 1}
	d.ResetMemoryPeak()
	before := d.Stats()
	p := ewPush{End: n, Inner: n, Stride: [4]uint32{n, n}, Dense: 1, Alpha: 3}
	for _, b := range []*Buffer{a, c} {
		if err := d.Dispatch(fill, []Access{all(b, true)}, pushBytes(&p), groups, "fill"); err != nil {
			t.Fatal(err)
		}
	}
	p = ewPush{End: n, Inner: n, Stride: [4]uint32{n, n}, Dense: 1, Op: 6, Alpha: 2}
	if err := d.DispatchMACs(unary, []Access{all(c, true), all(a, false)}, pushBytes(&p), groups, "axpby", 7); err != nil {
		t.Fatal(err)
	}
	pend, err := d.ReadAsync(c, []Region{{0, 4 * n}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	// Work recorded after the read overwrites c; the read must still see the axpby's result.
	p = ewPush{End: n, Inner: n, Stride: [4]uint32{n, n}, Dense: 1, Alpha: 9}
	if err := d.Dispatch(fill, []Access{all(c, true)}, pushBytes(&p), groups, "refill"); err != nil {
		t.Fatal(err)
	}
	got, err := pend.Wait()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 4*n)
	if err := d.Download(c, []Region{{0, 4 * n}}, out); err != nil {
		t.Fatal(err)
	}
	peak, _ := d.MemoryPeak()
	return d.Stats().Sub(before), peak, floats(got), floats(out)
}

// A planning device counts what the real one does for the same calls, and reads zeros.
func TestPlanMatchesDevice(t *testing.T) {
	d := openTest(t, Options{})
	want, wantPeak, async, final := runSequence(t, d)
	if async[0] != 6 || async[len(async)-1] != 6 || final[0] != 9 {
		t.Errorf("device read %v asynchronously and %v at the end, want 6 and 9", async[0], final[0])
	}
	if want.HostWaits != 2 || want.Submits != 2 || want.Kernels[shaders.ElementwiseUnary].MACs != 7 {
		t.Errorf("device counts %+v, want 2 host waits, 2 submits, 7 MACs", want)
	}
	p, err := OpenPlan(d.Info, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	got, gotPeak, async, final := runSequence(t, p)
	if !reflect.DeepEqual(got, want) || gotPeak != wantPeak {
		t.Errorf("plan counted %+v (peak %d), device %+v (peak %d)", got, gotPeak, want, wantPeak)
	}
	if async[0] != 0 || final[0] != 0 {
		t.Errorf("a planning device read %v and %v, want zeros", async[0], final[0])
	}
}

// The host records ahead while command buffers run, creating new ones up to maxFrames; past
// that it waits for the oldest (counted as a host wait) and reuses it.
func TestFramePool(t *testing.T) {
	d := openTest(t, Options{MaxDispatchesPerSubmit: 1})
	fill := kernel(t, d, shaders.ElementwiseFill, 64)
	a, _ := d.Alloc(256)
	defer a.Free()
	before := d.Stats()
	p := ewPush{End: 64, Inner: 64, Dense: 1, Alpha: 1}
	for i := 0; i < maxFrames+3; i++ {
		if err := d.Dispatch(fill, []Access{{Buf: a, Size: 256, Write: true}}, pushBytes(&p), [3]uint32{1, 1, 1}, "fill"); err != nil {
			t.Fatal(err)
		}
	}
	st := d.Stats().Sub(before)
	if len(d.frames) != maxFrames || st.Submits != maxFrames+3 || st.HostWaits != 3 {
		t.Errorf("%d frames, %d submits, %d host waits; want %d, %d, 3", len(d.frames), st.Submits, st.HostWaits, maxFrames, maxFrames+3)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
}

// Profiling times every dispatch with timestamps: each kernel's calls are counted and its time
// is positive; without StartProfile nothing is collected.
func TestProfile(t *testing.T) {
	d := openTest(t, Options{MaxDispatchesPerSubmit: 5})
	if err := d.StartProfile(); err != nil {
		t.Skip(err)
	}
	fill := kernel(t, d, shaders.ElementwiseFill, 64)
	unary := kernel(t, d, shaders.ElementwiseUnary, 64)
	const n = 1 << 16
	a, _ := d.Alloc(4 * n)
	c, _ := d.Alloc(4 * n)
	defer a.Free()
	defer c.Free()
	all := func(buf *Buffer, w bool) Access { return Access{Buf: buf, Off: 0, Size: 4 * n, Write: w} }
	groups := [3]uint32{n / 64, 1, 1}
	for i := 0; i < 12; i++ {
		p := ewPush{End: n, Inner: n, Stride: [4]uint32{n, n}, Dense: 1, Alpha: float32(i)}
		if err := d.Dispatch(fill, []Access{all(a, true)}, pushBytes(&p), groups, "fill"); err != nil {
			t.Fatal(err)
		}
		p = ewPush{End: n, Inner: n, Stride: [4]uint32{n, n}, Dense: 1, Op: 6, Alpha: 2}
		if err := d.DispatchMACs(unary, []Access{all(c, true), all(a, false)}, pushBytes(&p), groups, "axpby", 3); err != nil {
			t.Fatal(err)
		}
	}
	prof, err := d.StopProfile()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]KernelTime{}
	for _, k := range prof {
		got[k.Name] = k
		t.Logf("%-20s %3d calls %8.3f ms", k.Name, k.Calls, k.Ns/1e6)
	}
	f, u := got[shaders.ElementwiseFill], got[shaders.ElementwiseUnary]
	if f.Calls != 12 || u.Calls != 12 || u.MACs != 36 || u.Bytes != 12*8*n || f.Ns <= 0 || u.Ns <= 0 {
		t.Errorf("profile %+v", prof)
	}
	if err := d.Dispatch(fill, []Access{all(a, true)}, pushBytes(&ewPush{End: n, Inner: n, Dense: 1}), groups, "fill"); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil || d.profile != nil {
		t.Errorf("after StopProfile: %v, profile %v", err, d.profile)
	}
}

// captureSequence captures out = 6·in through an intermediate, replays it for three more
// inputs uploaded in between, and checks results, the reserved workspace and the pinned output.
func captureSequence(t *testing.T, d *Device) Stats {
	t.Helper()
	unary := kernel(t, d, shaders.ElementwiseUnary, 64)
	fill := kernel(t, d, shaders.ElementwiseFill, 64)
	const n = 1000
	all := func(buf *Buffer, w bool) Access { return Access{Buf: buf, Off: 0, Size: 4 * n, Write: w} }
	groups := [3]uint32{(n + 63) / 64, 1, 1}
	scale := func(dst, src *Buffer, a float32) {
		p := ewPush{End: n, Inner: n, Stride: [4]uint32{n, n}, Dense: 1, Op: 6, Alpha: a}
		if err := d.Dispatch(unary, []Access{all(dst, true), all(src, false)}, pushBytes(&p), groups, "axpby"); err != nil {
			t.Fatal(err)
		}
	}
	input := func(k float32) []byte {
		v := make([]float32, n)
		for i := range v {
			v[i] = k + float32(i)
		}
		return floatBytes(v)
	}
	check := func(out *Buffer, k float32) {
		t.Helper()
		got := make([]byte, 4*n)
		if err := d.Download(out, []Region{{0, 4 * n}}, got); err != nil {
			t.Fatal(err)
		}
		if d.Planning() {
			return
		}
		for i, v := range floats(got) {
			if want := 6 * (k + float32(i)); v != want {
				t.Fatalf("out[%d] = %v, want %v", i, v, want)
			}
		}
	}
	in, _ := d.Alloc(4 * n)
	defer in.Free()
	if err := d.Upload(in, []Region{{0, 4 * n}}, input(1)); err != nil {
		t.Fatal(err)
	}
	before := d.Stats()
	if err := d.BeginCapture(); err != nil {
		t.Fatal(err)
	}
	tmp, _ := d.Alloc(4 * n)
	mid, _ := d.Alloc(4 * n)
	scale(tmp, in, 2)
	scale(mid, tmp, 3)
	tmpOff := tmp.off
	tmp.Free()
	// The output takes the first intermediate's range: it must be pinned, not reserved.
	out, _ := d.Alloc(4 * n)
	if out.blk != tmp.blk || out.off != tmpOff {
		t.Fatalf("best fit put the output at %d, not at the freed %d", out.off, tmpOff)
	}
	scale(out, mid, 1)
	mid.Free()
	c, err := d.EndCapture()
	if err != nil {
		t.Fatal(err)
	}
	check(out, 1)
	// The workspace stays reserved: a new range never lands on the intermediate's.
	other, _ := d.Alloc(4 * n)
	if other.blk == mid.blk && other.off < mid.off+mid.size && mid.off < other.off+other.size {
		t.Errorf("a new range [%d, %d) overlaps the capture's workspace at %d", other.off, other.off+other.size, mid.off)
	}
	p := ewPush{End: n, Inner: n, Dense: 1, Alpha: 7}
	if err := d.Dispatch(fill, []Access{all(other, true)}, pushBytes(&p), groups, "fill"); err != nil {
		t.Fatal(err)
	}
	for k := float32(2); k <= 4; k++ {
		if err := d.Upload(in, []Region{{0, 4 * n}}, input(k)); err != nil {
			t.Fatal(err)
		}
		if err := d.Replay(c); err != nil {
			t.Fatal(err)
		}
		check(out, k)
	}
	out.Free()
	if out.freed {
		t.Error("a capture's output was freed while the capture lives")
	}
	if err := c.Release(); err != nil {
		t.Fatal(err)
	}
	if !out.freed {
		t.Error("a capture's output freed during its life was not freed with it")
	}
	other.Free()
	st := d.Stats().Sub(before)
	if st.Replays != 3 || st.Dispatches != 13 || st.Recorded != 4 {
		t.Errorf("stats %+v: want 3 replays, 13 dispatches executed, 4 recorded", st)
	}
	// A copy to the host inside a capture ends it; the work runs all the same.
	if err := d.BeginCapture(); err != nil {
		t.Fatal(err)
	}
	out2, _ := d.Alloc(4 * n)
	tmp2, _ := d.Alloc(4 * n)
	scale(tmp2, in, 2)
	scale(out2, tmp2, 3)
	check(out2, 4)
	if _, err := d.EndCapture(); !errors.Is(err, ErrNotCaptured) {
		t.Errorf("a capture with a download: %v, want ErrNotCaptured", err)
	}
	out2.Free()
	tmp2.Free()
	return st
}

// Record once, replay: a captured sequence replays correctly on new inputs, its workspace is
// reserved and its outputs pinned; a planning device counts the same.
func TestCaptureReplay(t *testing.T) {
	d := openTest(t, Options{})
	want := captureSequence(t, d)
	p, err := OpenPlan(d.Info, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if got := captureSequence(t, p); !reflect.DeepEqual(got, want) {
		t.Errorf("plan counted %+v, device %+v", got, want)
	}
}

// The same under the validation layer with synchronization validation: replays of a command
// buffer still pending and the barriers around them must raise no error.
func TestCaptureReplayValidation(t *testing.T) {
	d := openTest(t, Options{Validation: true})
	d.ValidationMessages()
	captureSequence(t, d)
	if errs, warnings, text := d.ValidationMessages(); errs > 0 {
		t.Fatalf("validation: %d errors, %d warnings:\n%s", errs, warnings, text)
	}
}

func TestSpanArithmetic(t *testing.T) {
	u := unionSpans([]span{{10, 5}, {0, 4}, {4, 2}, {14, 10}, {40, 1}})
	if want := []span{{0, 6}, {10, 14}, {40, 1}}; !reflect.DeepEqual(u, want) {
		t.Errorf("union %v, want %v", u, want)
	}
	d := subtractSpans(u, []span{{2, 1}, {12, 2}, {20, 30}})
	if want := []span{{0, 2}, {3, 3}, {10, 2}, {14, 6}}; !reflect.DeepEqual(d, want) {
		t.Errorf("difference %v, want %v", d, want)
	}
}

// Captures share one workspace: a second capture reuses the first's ranges, so the reservation
// grows to the larger of the two, not their sum; interleaved replays stay correct when each
// output is read right after its own replay.
func TestCapturesShareWorkspace(t *testing.T) {
	d := openTest(t, Options{})
	unary := kernel(t, d, shaders.ElementwiseUnary, 64)
	const n = 4096
	groups := [3]uint32{n / 64, 1, 1}
	all := func(buf *Buffer, w bool) Access { return Access{Buf: buf, Off: 0, Size: 4 * n, Write: w} }
	scale := func(dst, src *Buffer, a float32) {
		p := ewPush{End: n, Inner: n, Stride: [4]uint32{n, n}, Dense: 1, Op: 6, Alpha: a}
		if err := d.Dispatch(unary, []Access{all(dst, true), all(src, false)}, pushBytes(&p), groups, "axpby"); err != nil {
			t.Fatal(err)
		}
	}
	in, _ := d.Alloc(4 * n)
	defer in.Free()
	if err := d.Upload(in, []Region{{0, 4 * n}}, floatBytes(make([]float32, n))); err != nil {
		t.Fatal(err)
	}
	// out = k·(2·(3·in)) through two intermediates.
	capture := func(k float32) (*Capture, *Buffer) {
		if err := d.BeginCapture(); err != nil {
			t.Fatal(err)
		}
		a, _ := d.Alloc(4 * n)
		b, _ := d.Alloc(4 * n)
		scale(a, in, 3)
		scale(b, a, 2)
		a.Free()
		out, _ := d.Alloc(4 * n)
		scale(out, b, k)
		b.Free()
		c, err := d.EndCapture()
		if err != nil {
			t.Fatal(err)
		}
		return c, out
	}
	inUse0, _ := d.MemoryInUse()
	c1, out1 := capture(5)
	inUse1, _ := d.MemoryInUse()
	c2, out2 := capture(7)
	inUse2, _ := d.MemoryInUse()
	// The second capture adds only its output.
	if inUse2-inUse1 != out2.size {
		t.Errorf("second capture grew the memory in use by %d (first: %d); want only its output's %d", inUse2-inUse1, inUse1-inUse0, out2.size)
	}
	check := func(out *Buffer, want float32) {
		t.Helper()
		got := make([]byte, 4*n)
		if err := d.Download(out, []Region{{0, 4 * n}}, got); err != nil {
			t.Fatal(err)
		}
		for i, v := range floats(got) {
			if v != want {
				t.Fatalf("out[%d] = %v, want %v", i, v, want)
			}
		}
	}
	for i, k := range []float32{1, 2, 3} {
		v := make([]float32, n)
		for j := range v {
			v[j] = k
		}
		if err := d.Upload(in, []Region{{0, 4 * n}}, floatBytes(v)); err != nil {
			t.Fatal(err)
		}
		c, out, f := c1, out1, float32(5)
		if i%2 == 1 {
			c, out, f = c2, out2, 7
		}
		if err := d.Replay(c); err != nil {
			t.Fatal(err)
		}
		check(out, 6*f*k)
	}
	// A capture ended by a transfer invalidates the others.
	if err := d.BeginCapture(); err != nil {
		t.Fatal(err)
	}
	check(out1, 6*5*3) // the last replay was c1's; reading it ends this capture
	if _, err := d.EndCapture(); !errors.Is(err, ErrNotCaptured) {
		t.Errorf("EndCapture after a download: %v", err)
	}
	if err := d.Replay(c1); !errors.Is(err, ErrNotCaptured) {
		t.Errorf("replay after a failed capture: %v, want ErrNotCaptured", err)
	}
	for _, c := range []*Capture{c1, c2} {
		if err := c.Release(); err != nil {
			t.Fatal(err)
		}
	}
	out1.Free()
	out2.Free()
	if got, _ := d.MemoryInUse(); got != inUse0 {
		t.Errorf("%d bytes in use after releasing every capture, %d before", got, inUse0)
	}
}
