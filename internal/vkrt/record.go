package vkrt

/*
#include <stdlib.h>
#include <string.h>
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"
)

// frame is one command buffer (Kompute's Sequence: a command buffer and its fence) with what
// must happen when it completes. The host records one while earlier ones execute; a finished
// frame is recorded again, and a new one is created while fewer than maxFrames exist.
type frame struct {
	cb          C.VkCommandBuffer
	fence       vk.Fence
	pool        *C.chn_pool
	recording   bool
	submitted   bool
	commands    int
	hostReads   []hostRead
	staging     []*Buffer
	labels      []opLabel // the last few commands recorded, for timeout and device-lost errors
	hostBarrier bool      // a download needs its copy made visible to the host
	// Profiling (StartProfile): a timestamp query pool, and what each timestamp closes.
	qpool    vk.QueryPool
	profiled bool
	stamps   []stamp
	// capturing: the frame records a capture (kept by the Capture after submission).
	capturing, kept bool
}

// hostRead copies a staging range to Go memory once the frame's fence has signalled.
type hostRead struct {
	src  *Buffer
	dst  []byte
	done *Pending // a ReadAsync's, marked done after the copy
}

// Pending is a copy to the host recorded by ReadAsync: its bytes are there once the command
// buffer holding it has finished, which Wait waits for.
type Pending struct {
	d    *Device
	out  []byte
	done bool
}

// Wait submits the copy if it is still being recorded, waits for it (and for everything
// submitted before it), and returns the bytes. Work recorded after the copy keeps running.
func (p *Pending) Wait() ([]byte, error) {
	d := p.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if p.done {
		return p.out, nil
	}
	if d.rec != nil && d.rec.holds(p) {
		if err := d.flush(); err != nil {
			return nil, err
		}
	}
	d.stats.HostWaits++
	for !p.done {
		if len(d.inflight) == 0 {
			if d.err != nil {
				return nil, d.err
			}
			return nil, errors.New("vkrt: internal: a pending read is in no submitted command buffer")
		}
		if err := d.complete(d.inflight[0]); err != nil {
			return nil, err
		}
	}
	return p.out, nil
}

func (f *frame) holds(p *Pending) bool {
	for _, hr := range f.hostReads {
		if hr.done == p {
			return true
		}
	}
	return false
}

// opLabel names a recorded command; it is formatted only when an error needs it.
type opLabel struct{ kind, detail string }

func (l opLabel) String() string {
	if l.detail == "" {
		return l.kind
	}
	return l.kind + " (" + l.detail + ")"
}

const keepLabels = 6

func (f *frame) label(kind, detail string) {
	if len(f.labels) == keepLabels {
		copy(f.labels, f.labels[1:])
		f.labels = f.labels[:keepLabels-1]
	}
	f.labels = append(f.labels, opLabel{kind, detail})
}

func (f *frame) lastOps() string {
	s := make([]string, len(f.labels))
	for i, l := range f.labels {
		s[i] = l.String()
	}
	return strings.Join(s, ", ")
}

// Access is one binding of a dispatch: a byte range of a Buffer and whether the kernel writes it.
// Items, when set, says the kernel touches only the batch-strided items inside the range (a
// channel slice of NCHW tensors): the recorder's hazard tracking then tells apart slices that
// interleave without sharing an element.
type Access struct {
	Buf   *Buffer
	Off   int64
	Size  int64
	Write bool
	Items *Items
}

// Items are the bytes [First + k·Stride, First + k·Stride + Inner) of a buffer, for every k the
// binding covers: First is relative to the Buffer, Inner ≤ Stride.
type Items struct{ First, Stride, Inner int64 }

// tracker holds the byte ranges read and written since the last barrier, per block. A new
// command conflicts when it reads a range written since (RAW) or writes a range read or written
// since (WAR, WAW); only then is a barrier recorded, as ggml_vk_build_graph does. The lists
// survive submission: a barrier at the start of the next command buffer also orders it after
// earlier submissions to the queue.
type tracker struct {
	reads, writes map[*block][]tracked
}

// tracked is a recorded range of a block, with its items' layout when the binding had one
// (stride 0: every byte of the range).
type tracked struct {
	span
	first, stride, inner int64
}

func (t *tracker) init() {
	t.reads = map[*block][]tracked{}
	t.writes = map[*block][]tracked{}
}

func (t *tracker) reset() {
	clear(t.reads)
	clear(t.writes)
}

func overlaps(list []tracked, s tracked) bool {
	for _, o := range list {
		if o.off < s.end() && s.off < o.end() && !apart(o, s) {
			return true
		}
	}
	return false
}

// apart reports whether two ranges of items with one stride share no byte: their items'
// positions within a stride period are disjoint, so no item of one meets an item of the other.
func apart(a, b tracked) bool {
	if a.stride == 0 || a.stride != b.stride || a.inner > a.stride || b.inner > b.stride {
		return false
	}
	d := ((b.first-a.first)%a.stride + a.stride) % a.stride // b's items start d bytes into a's period
	return d >= a.inner && d+b.inner <= a.stride
}

// trackedOf is the tracker's record of a binding.
func trackedOf(a Access) tracked {
	t := tracked{span: span{a.Buf.off + a.Off, a.Size}}
	if it := a.Items; it != nil && it.Stride > 0 && it.Inner > 0 {
		t.first, t.stride, t.inner = a.Buf.off+it.First, it.Stride, it.Inner
	}
	return t
}

// maxTracked bounds each block's lists: past it, conflicts() reports a conflict so a barrier
// resets them. Long runs of independent dispatches (an SGD step over every parameter) would
// otherwise make every check scan hundreds of ranges; one extra barrier per 64 costs less.
const maxTracked = 64

func (t *tracker) conflicts(acc []Access) bool {
	for _, a := range acc {
		if len(t.writes[a.Buf.blk]) >= maxTracked || len(t.reads[a.Buf.blk]) >= maxTracked {
			return true
		}
		s := trackedOf(a)
		if overlaps(t.writes[a.Buf.blk], s) {
			return true
		}
		if a.Write && overlaps(t.reads[a.Buf.blk], s) {
			return true
		}
	}
	return false
}

func (t *tracker) add(acc []Access) {
	for _, a := range acc {
		s := trackedOf(a)
		if a.Write {
			t.writes[a.Buf.blk] = append(t.writes[a.Buf.blk], s)
		} else {
			t.reads[a.Buf.blk] = append(t.reads[a.Buf.blk], s)
		}
	}
}

// begin returns the frame being recorded, starting one if needed: a finished frame, else a new
// one while fewer than maxFrames exist, else the oldest submitted one once it has finished.
func (d *Device) begin() (*frame, error) {
	if d.err != nil {
		return nil, d.err
	}
	if d.closed {
		return nil, errors.New("vkrt: device is closed")
	}
	if d.rec != nil {
		return d.rec, nil
	}
	var f *frame
	switch {
	case len(d.idle) > 0:
		f = d.idle[len(d.idle)-1]
		d.idle = d.idle[:len(d.idle)-1]
	case len(d.frames)-d.keptFrames < maxFrames || len(d.inflight) == 0:
		nf, err := d.newFrame()
		if err != nil {
			return nil, err
		}
		d.frames = append(d.frames, nf)
		f = nf
	default:
		d.stats.HostWaits++
		if err := d.complete(d.inflight[0]); err != nil {
			return nil, err
		}
		f = d.idle[len(d.idle)-1]
		d.idle = d.idle[:len(d.idle)-1]
	}
	if !d.plan {
		if err := check(vk.Result(C.chn_begin(d.cd, f.cb)), "vkBeginCommandBuffer"); err != nil {
			d.idle = append(d.idle, f)
			return nil, d.fail(err)
		}
		if err := d.startStamps(f); err != nil {
			C.chn_end(d.cd, f.cb)
			d.idle = append(d.idle, f)
			return nil, err
		}
	}
	f.recording = true
	f.commands = 0
	d.rec = f
	return f, nil
}

// fail makes err the device's sticky error when it means the device can no longer be trusted.
func (d *Device) fail(err error) error {
	if d.err == nil && (errors.Is(err, ErrDeviceLost) || errors.Is(err, ErrTimeout)) {
		d.err = err
	}
	return err
}

func (d *Device) checkAccess(what string, acc []Access) error {
	for i, a := range acc {
		if a.Buf == nil {
			return fmt.Errorf("vkrt: %s: binding %d has no buffer", what, i)
		}
		if a.Buf.freed {
			return fmt.Errorf("vkrt: %s: binding %d uses a freed buffer", what, i)
		}
		if a.Off < 0 || a.Size <= 0 || a.Off+a.Size > a.Buf.size {
			return fmt.Errorf("vkrt: %s: binding %d range [%d, %d) outside its %d-byte buffer", what, i, a.Off, a.Off+a.Size, a.Buf.size)
		}
	}
	return nil
}

// Dispatch records one kernel launch. binds must match the kernel's binding count; each
// binding's offset must be a multiple of BindAlign and its size at most MaxRange. push is the
// kernel's push-constant block (at most MaxPush bytes). label names the op in later errors.
func (d *Device) Dispatch(k *Kernel, binds []Access, push []byte, groups [3]uint32, label string) error {
	return d.DispatchMACs(k, binds, push, groups, label, 0)
}

// DispatchMACs is Dispatch for a compute-bound kernel that does macs useful multiply-adds (a
// convolution's or matrix product's share in this dispatch), for Stats and profiles.
func (d *Device) DispatchMACs(k *Kernel, binds []Access, push []byte, groups [3]uint32, label string, macs int64) error {
	if len(binds) != k.Bindings || len(push) > MaxPush {
		return d.dispatchErr(k, binds, push, label)
	}
	for i, g := range groups {
		if g > d.Info.MaxWorkGroupCount[i] {
			return d.dispatchErr(k, binds, push, label)
		}
		if g == 0 {
			return nil
		}
	}
	align, maxRange := d.BindAlign(), d.MaxRange()
	for _, a := range binds {
		if a.Off%align != 0 || a.Size > maxRange || a.Buf == nil || a.Off < 0 || a.Size <= 0 || a.Off+a.Size > a.Buf.size {
			return d.dispatchErr(k, binds, push, label)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, a := range binds {
		if a.Buf.freed {
			return d.checkAccess("dispatch "+k.Name+" ("+label+")", binds)
		}
	}
	f, err := d.begin()
	if err != nil {
		return err
	}
	barrier := (d.barEach || d.barrierNext || d.track.conflicts(binds)) && !d.noBar
	d.barrierNext = false
	if barrier {
		d.track.reset()
		d.stats.Barriers++
	}
	d.track.add(binds)
	d.stats.Recorded++
	if !d.plan {
		if r := d.recordDispatch(f, k, binds, push, groups, barrier); r != vk.Success {
			return check(r, "record dispatch %s (%s)", k.Name, label)
		}
	}
	bytes := d.count(k, binds, macs)
	d.stampAfter(f, k.Name, bytes, macs)
	f.commands++
	f.label(k.Name, label)
	if d.syncEach {
		return d.syncLocked()
	}
	if (f.commands >= d.perSub || f.stampsFull()) && !f.capturing {
		return d.flush()
	}
	return nil
}

// count adds a dispatch to the statistics and returns the bytes it binds.
func (d *Device) count(k *Kernel, binds []Access, macs int64) int64 {
	d.stats.Dispatches++
	if d.stats.Kernels == nil {
		d.stats.Kernels = map[string]KernelStats{}
	}
	ks := d.stats.Kernels[k.Name]
	ks.Calls++
	ks.MACs += macs
	var bytes int64
	for _, a := range binds {
		bytes += a.Size
	}
	ks.Bytes += bytes
	d.stats.Kernels[k.Name] = ks
	return bytes
}

// recordDispatch records the dispatch (and its barrier) into f's command buffer.
func (d *Device) recordDispatch(f *frame, k *Kernel, binds []Access, push []byte, groups [3]uint32, barrier bool) vk.Result {
	var dp C.chn_dispatch
	dp.pipeline = k.pipeline
	dp.layout = k.layout
	dp.nbind = C.uint32_t(len(binds))
	for i, a := range binds {
		dp.buf[i] = C.VkBuffer(unsafe.Pointer(a.Buf.blk.buf))
		dp.off[i] = C.VkDeviceSize(a.Buf.off + a.Off)
		dp.rang[i] = C.VkDeviceSize(a.Size)
	}
	dp.push_size = C.uint32_t(len(push))
	C.memcpy(unsafe.Pointer(&dp.push[0]), unsafe.Pointer(unsafe.SliceData(push)), C.size_t(len(push)))
	dp.groups = [3]C.uint32_t{C.uint32_t(groups[0]), C.uint32_t(groups[1]), C.uint32_t(groups[2])}
	if barrier {
		dp.barrier = 1
	}
	return vk.Result(C.chn_cmd_dispatch(d.cd, f.cb, f.pool, &dp))
}

// dispatchErr explains why Dispatch rejected its arguments.
func (d *Device) dispatchErr(k *Kernel, binds []Access, push []byte, label string) error {
	what := "dispatch " + k.Name
	if label != "" {
		what += " (" + label + ")"
	}
	if len(binds) != k.Bindings {
		return fmt.Errorf("vkrt: %s: %d bindings for a kernel with %d", what, len(binds), k.Bindings)
	}
	if len(push) > MaxPush {
		return fmt.Errorf("vkrt: %s: %d bytes of push constants, at most %d", what, len(push), MaxPush)
	}
	align, maxRange := d.BindAlign(), d.MaxRange()
	for i, a := range binds {
		if a.Off%align != 0 {
			return fmt.Errorf("vkrt: %s: binding %d offset %d is not a multiple of %d", what, i, a.Off, align)
		}
		if a.Size > maxRange {
			return fmt.Errorf("vkrt: %s: binding %d covers %s, more than maxStorageBufferRange (%s)", what, i, bytesStr(a.Size), bytesStr(maxRange))
		}
	}
	if err := d.checkAccess(what, binds); err != nil {
		return err
	}
	return fmt.Errorf("vkrt: %s: workgroup grid exceeds the device's maxComputeWorkGroupCount %v", what, d.Info.MaxWorkGroupCount)
}

// Region is a byte range of a Buffer.
type Region struct{ Off, Size int64 }

func regionsAccess(b *Buffer, regions []Region, write bool) []Access {
	acc := make([]Access, len(regions))
	for i, r := range regions {
		acc[i] = Access{Buf: b, Off: r.Off, Size: r.Size, Write: write}
	}
	return acc
}

func sumRegions(regions []Region) int64 {
	var n int64
	for _, r := range regions {
		n += r.Size
	}
	return n
}

// recordCopy records a copy between a staging range and device regions, with a barrier first
// if the device ranges conflict with unsynchronised work.
func (d *Device) recordCopy(f *frame, stage *Buffer, dev *Buffer, regions []Region, toDevice bool) {
	acc := regionsAccess(dev, regions, toDevice)
	barrier := (d.barEach || d.barrierNext || d.track.conflicts(acc)) && !d.noBar
	d.barrierNext = false
	if barrier {
		if !d.plan {
			C.chn_cmd_barrier(d.cd, f.cb, 0)
		}
		d.track.reset()
		d.stats.Barriers++
	}
	d.track.add(acc)
	d.stats.Copies++
	f.commands++
	if d.plan {
		return
	}
	cr := (*C.VkBufferCopy)(C.malloc(C.size_t(len(regions)) * C.size_t(unsafe.Sizeof(C.VkBufferCopy{}))))
	defer C.free(unsafe.Pointer(cr))
	rs := unsafe.Slice(cr, len(regions))
	at := stage.off
	for i, r := range regions {
		if toDevice {
			rs[i] = C.VkBufferCopy{srcOffset: C.VkDeviceSize(at), dstOffset: C.VkDeviceSize(dev.off + r.Off), size: C.VkDeviceSize(r.Size)}
		} else {
			rs[i] = C.VkBufferCopy{srcOffset: C.VkDeviceSize(dev.off + r.Off), dstOffset: C.VkDeviceSize(at), size: C.VkDeviceSize(r.Size)}
		}
		at += r.Size
	}
	src, dst := C.VkBuffer(unsafe.Pointer(stage.blk.buf)), C.VkBuffer(unsafe.Pointer(dev.blk.buf))
	if !toDevice {
		src, dst = dst, src
	}
	C.chn_cmd_copy(d.cd, f.cb, src, dst, C.uint32_t(len(regions)), cr)
	name := "copy to host"
	if toDevice {
		name = "copy to device"
	}
	d.stampAfter(f, name, 2*sumRegions(regions), 0)
}

// Upload copies data into regions of dst, consecutive chunks of data filling consecutive
// regions. The data is staged at once, so the caller may reuse it on return; the copy itself
// runs in order with recorded kernels.
func (d *Device) Upload(dst *Buffer, regions []Region, data []byte) error {
	n := sumRegions(regions)
	if int64(len(data)) != n {
		return fmt.Errorf("vkrt: upload: %d bytes for regions of %d", len(data), n)
	}
	if n == 0 {
		return nil
	}
	stage, err := d.staging.alloc(n)
	if err != nil {
		return fmt.Errorf("vkrt: upload %s: %w", bytesStr(n), err)
	}
	copy(stage.hostBytes(), data)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.checkAccess("upload", regionsAccess(dst, regions, true)); err != nil {
		stage.Free()
		return err
	}
	d.stopCapture("an upload")
	f, err := d.begin()
	if err != nil {
		stage.Free()
		return err
	}
	f.staging = append(f.staging, stage)
	d.recordCopy(f, stage, dst, regions, true)
	f.label("upload", bytesStr(n))
	if d.syncEach {
		return d.syncLocked()
	}
	return nil
}

// Download copies regions of src into out (consecutive regions to consecutive chunks) and waits
// for it, and so for everything recorded before. On a planning device out is zeroed.
func (d *Device) Download(src *Buffer, regions []Region, out []byte) error {
	if len(out) > 0 || sumRegions(regions) > 0 {
		if err := d.read(src, regions, out, nil); err != nil {
			return err
		}
	}
	return d.Sync()
}

// ReadAsync records a copy of regions of src to the host and returns at once; Wait on the
// result returns the bytes. Later work may be recorded and submitted meanwhile, so the host
// can read one step's loss while the device runs the next.
func (d *Device) ReadAsync(src *Buffer, regions []Region) (*Pending, error) {
	p := &Pending{d: d, out: make([]byte, sumRegions(regions))}
	if len(p.out) == 0 {
		p.done = true
		return p, nil
	}
	if err := d.read(src, regions, p.out, p); err != nil {
		return nil, err
	}
	return p, nil
}

// read records a copy of src's regions into a staging range that is copied to out when its
// command buffer has finished.
func (d *Device) read(src *Buffer, regions []Region, out []byte, p *Pending) error {
	n := sumRegions(regions)
	if int64(len(out)) != n {
		return fmt.Errorf("vkrt: download: %d bytes of room for regions of %d", len(out), n)
	}
	stage, err := d.staging.alloc(n)
	if err != nil {
		return fmt.Errorf("vkrt: download %s: %w", bytesStr(n), err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.checkAccess("download", regionsAccess(src, regions, false)); err != nil {
		stage.Free()
		return err
	}
	d.stopCapture("a copy to the host")
	f, err := d.begin()
	if err != nil {
		stage.Free()
		return err
	}
	f.staging = append(f.staging, stage)
	d.recordCopy(f, stage, src, regions, false)
	f.hostReads = append(f.hostReads, hostRead{src: stage, dst: out, done: p})
	f.hostBarrier = true
	f.label("download", bytesStr(n))
	return nil
}

// Flush submits what has been recorded without waiting.
func (d *Device) Flush() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.flush()
}

func (d *Device) flush() error {
	f := d.rec
	if f == nil || f.capturing {
		return d.err // a capture's command buffer is submitted by EndCapture
	}
	d.rec = nil
	f.recording = false
	if !d.plan {
		if f.hostBarrier {
			C.chn_cmd_barrier(d.cd, f.cb, 1)
		}
		if err := check(vk.Result(C.chn_end(d.cd, f.cb)), "vkEndCommandBuffer"); err != nil {
			d.idle = append(d.idle, f)
			return d.fail(err)
		}
		if err := check(vk.Result(C.chn_submit(d.cd, f.cb, C.VkFence(unsafe.Pointer(f.fence)))), "vkQueueSubmit (%d commands, last: %s)", f.commands, f.lastOps()); err != nil {
			d.idle = append(d.idle, f)
			return d.fail(err)
		}
	}
	f.hostBarrier = false
	f.submitted = true
	d.stats.Submits++
	d.inflight = append(d.inflight, f)
	return nil
}

// complete waits for a submitted frame and finishes its host-side work.
func (d *Device) complete(f *frame) error {
	if !d.plan {
		r := vk.Result(C.chn_wait(d.cd, C.VkFence(unsafe.Pointer(f.fence)), C.uint64_t(d.timeout.Nanoseconds())))
		switch {
		case r == vk.Timeout:
			return d.fail(fmt.Errorf("vkrt: %d commands submitted to %s (last: %s) did not finish within %v: %w",
				f.commands, d.Info.Name, f.lastOps(), d.timeout, ErrTimeout))
		case r != vk.Success:
			return d.fail(fmt.Errorf("%w (while running %s)", check(r, "vkWaitForFences"), f.lastOps()))
		}
		C.chn_reset_fence(d.cd, C.VkFence(unsafe.Pointer(f.fence)))
	}
	perr := d.collectStamps(f) // reported after the frame is back in the pool
	f.submitted = false
	for i, ff := range d.inflight {
		if ff == f {
			d.inflight = append(d.inflight[:i], d.inflight[i+1:]...)
			break
		}
	}
	for _, hr := range f.hostReads {
		if b := hr.src.hostBytes(); b != nil {
			copy(hr.dst, b)
		} else {
			clear(hr.dst) // a planning device reads zeros
		}
		if hr.done != nil {
			hr.done.done = true
		}
	}
	f.hostReads = f.hostReads[:0]
	for _, s := range f.staging {
		s.Free()
	}
	f.staging = f.staging[:0]
	f.labels = f.labels[:0]
	if f.pool != nil {
		C.chn_pool_reset(f.pool)
	}
	if !f.kept {
		d.idle = append(d.idle, f)
	}
	return perr
}

// Sync submits what has been recorded and waits for all of it; it returns the device's sticky
// error, if any.
func (d *Device) Sync() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.syncLocked()
}

// syncLocked is Sync with d.mu held.
func (d *Device) syncLocked() error {
	if d.err != nil {
		return d.err
	}
	d.stopCapture("a wait for the device")
	if err := d.flush(); err != nil {
		return err
	}
	if len(d.inflight) > 0 {
		d.stats.HostWaits++
	}
	for len(d.inflight) > 0 {
		if err := d.complete(d.inflight[0]); err != nil {
			return err
		}
	}
	// Everything has finished: no range can conflict with earlier work any more, and staging
	// blocks grown for one huge transfer can go.
	d.track.reset()
	if d.staging.reserved() > 4*d.staging.blockSize {
		d.staging.trim()
	}
	return nil
}
