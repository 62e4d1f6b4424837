package vkrt

/*
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"sort"

	vk "github.com/vulkan-go/vulkan"
)

// Record once, replay: BeginCapture starts recording into a command buffer that is kept;
// EndCapture submits it (the commands run once, as they would have) and returns it as a Capture,
// which Replay submits again without recording a single command on the host. A replay reads and
// writes exactly the byte ranges the recorded commands did, so those must hold the same tensors
// each time:
//   - ranges allocated during the capture and freed before its end (intermediates) join the
//     device's capture workspace, reserved in the arena so that no other allocation lands there
//     while a capture lives. All captures share it (a new capture reuses the others' ranges), so
//     it is as large as the largest capture, not their sum: multi-scale training's five shapes
//     cost one workspace;
//   - ranges allocated during the capture and still live at its end (outputs, such as a loss)
//     are pinned: Free leaves them until the capture is released. An output may lie in another
//     capture's workspace, so it holds its result until another capture runs (is recorded or
//     replayed): read it right after its own replay;
//   - ranges from before the capture (inputs, parameters, optimiser state) are the caller's to
//     keep for the capture's life.
// A capture starts with a full barrier, and the command after a replay gets one, so executions
// are ordered after everything submitted before and before everything after, and never overlap
// one another. Copies to or from the host cannot be captured (their staging memory is per use):
// one ends the capture early — what was recorded runs as usual, EndCapture reports
// ErrNotCaptured, and since allocations made after that may sit in the shared workspace, every
// earlier capture is invalidated (Replay reports ErrNotCaptured).

// ErrNotCaptured means a capture ended without a replayable result; its work ran normally.
var ErrNotCaptured = errors.New("vkrt: not captured")

// Capture is a recorded command buffer and the memory its commands use.
type Capture struct {
	d        *Device
	f        *frame
	stats    Stats     // what one execution counts
	pinned   []*Buffer // the outputs
	gen      int       // the workspace generation it was recorded in
	released bool
}

// captureState is a capture in progress.
type captureState struct {
	c      *Capture
	bufs   []*Buffer         // every device allocation since BeginCapture
	prev   map[*block][]span // the shared workspace before it, freed for it to reuse
	before Stats
	err    error // why it stopped, if it did
}

// BeginCapture starts a capture. It needs push descriptors (pooled descriptor sets are reset
// per use) and no profiling; otherwise, or while another capture is open, it returns an error
// and nothing changes.
func (d *Device) BeginCapture() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.capture != nil:
		return errors.New("vkrt: a capture is already open")
	case !d.push && !d.plan:
		return fmt.Errorf("vkrt: %s has no push descriptors; captures need them: %w", d.Info.Name, ErrNotCaptured)
	case d.profiling:
		return fmt.Errorf("vkrt: no captures while profiling: %w", ErrNotCaptured)
	case d.syncEach:
		return fmt.Errorf("vkrt: no captures with DebugSyncEach: %w", ErrNotCaptured)
	}
	if err := d.flush(); err != nil {
		return err
	}
	f, err := d.begin()
	if err != nil {
		return err
	}
	if !d.plan {
		// Restart the frame's command buffer as a reusable one.
		C.chn_end(d.cd, f.cb)
		if err := check(vk.Result(C.chn_begin_reusable(d.cd, f.cb)), "vkBeginCommandBuffer"); err != nil {
			f.recording = false
			d.rec = nil
			d.idle = append(d.idle, f)
			return d.fail(err)
		}
	}
	f.capturing = true
	cs := &captureState{c: &Capture{d: d, f: f}, before: d.stats.clone(), prev: map[*block][]span{}}
	d.capture = cs
	d.arena.mu.Lock()
	// The shared workspace is free for this capture to reuse; EndCapture reserves it again.
	for _, b := range d.workspace {
		cs.prev[b.blk] = append(cs.prev[b.blk], span{b.off, b.size})
		d.arena.freeLocked(b)
	}
	d.workspace = nil
	d.arena.onAlloc = func(b *Buffer) { cs.bufs = append(cs.bufs, b) }
	d.arena.mu.Unlock()
	d.track.reset()
	d.barrierNext = true
	return nil
}

// stopCapture turns an open capture into ordinary recording, for a reason that EndCapture will
// report; the caller holds d.mu.
func (d *Device) stopCapture(why string) {
	cs := d.capture
	if cs == nil || cs.err != nil {
		return
	}
	cs.err = fmt.Errorf("%w: %s", ErrNotCaptured, why)
	cs.c.f.capturing = false
	d.workspaceGen++ // the workspace was freed for this capture and may now hold anything
	d.arena.mu.Lock()
	d.arena.onAlloc = nil
	d.arena.mu.Unlock()
}

// EndCapture submits what was recorded since BeginCapture and returns it for Replay; if the
// capture was stopped, it returns ErrNotCaptured (the work was submitted all the same).
func (d *Device) EndCapture() (*Capture, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cs := d.capture
	if cs == nil {
		return nil, errors.New("vkrt: no capture is open")
	}
	d.capture = nil
	d.arena.mu.Lock()
	d.arena.onAlloc = nil
	d.arena.mu.Unlock()
	if cs.err != nil {
		return nil, cs.err
	}
	c, f := cs.c, cs.c.f
	if d.rec != f {
		return nil, errors.New("vkrt: internal: the capture's command buffer is not the one being recorded")
	}
	c.stats = d.stats.clone().Sub(cs.before)
	f.capturing = false
	f.kept = true
	d.keptFrames++
	if err := d.flush(); err != nil {
		return nil, err
	}
	d.barrierNext = true
	// Outputs stay pinned; the ranges of everything freed, and the workspace as it was, are
	// reserved as the workspace.
	a := d.arena
	a.mu.Lock()
	defer a.mu.Unlock()
	freed, live := cs.prev, map[*block][]span{}
	for _, b := range cs.bufs {
		if b.freed {
			freed[b.blk] = append(freed[b.blk], span{b.off, b.size})
			continue
		}
		b.pinned = true
		c.pinned = append(c.pinned, b)
		live[b.blk] = append(live[b.blk], span{b.off, b.size})
	}
	d.captures++
	for blk, spans := range freed {
		// An output may sit where an intermediate was before: it is pinned, not reserved.
		for _, s := range subtractSpans(unionSpans(spans), unionSpans(live[blk])) {
			r, err := a.take(blk, s)
			if err != nil {
				d.workspaceGen++
				c.releaseLocked()
				return nil, err
			}
			d.workspace = append(d.workspace, r)
		}
	}
	c.gen = d.workspaceGen
	return c, nil
}

// Replay submits the capture again: its commands run as recorded, after everything recorded
// before and before everything recorded after. Stats count its commands as executed.
func (d *Device) Replay(c *Capture) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c.released {
		return errors.New("vkrt: replay of a released capture")
	}
	if c.gen != d.workspaceGen {
		return fmt.Errorf("%w: a later capture failed and its memory may overlap this one's workspace", ErrNotCaptured)
	}
	if d.capture != nil {
		return errors.New("vkrt: replay inside a capture")
	}
	if err := d.flush(); err != nil {
		return err
	}
	if d.err != nil {
		return d.err
	}
	if !d.plan {
		// No fence: the next submission's fence covers this one too (fence signal operations
		// include every command earlier in submission order).
		if err := check(vk.Result(C.chn_submit(d.cd, c.f.cb, nil)), "vkQueueSubmit (replay of %d dispatches)", c.stats.Dispatches); err != nil {
			return d.fail(err)
		}
	}
	d.stats.add(c.stats)
	d.stats.Submits++
	d.stats.Replays++
	d.track.reset()
	d.barrierNext = true
	return nil
}

// Stats is what one execution of the capture counts.
func (c *Capture) Stats() Stats { return c.stats.clone() }

// Release waits for the device, then frees the capture's command buffer, workspace and outputs.
func (c *Capture) Release() error {
	d := c.d
	if err := d.Sync(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.arena.mu.Lock()
	defer d.arena.mu.Unlock()
	c.releaseLocked()
	return nil
}

// releaseLocked frees what c holds; the caller holds d.mu and the arena's lock, and the device
// no longer runs c.
func (c *Capture) releaseLocked() {
	if c.released {
		return
	}
	c.released = true
	d := c.d
	if d.captures--; d.captures == 0 {
		for _, b := range d.workspace {
			d.arena.freeLocked(b)
		}
		d.workspace = nil
	}
	for _, b := range c.pinned {
		b.pinned = false
		if b.freeWanted {
			d.arena.freeLocked(b)
		}
	}
	c.pinned = nil
	if c.f.kept {
		c.f.kept = false
		c.f.capturing = false
		d.keptFrames--
		if !c.f.submitted {
			d.idle = append(d.idle, c.f)
		}
	}
}

// unionSpans merges overlapping and touching spans.
func unionSpans(s []span) []span {
	sortSpans(s)
	var out []span
	for _, x := range s {
		if n := len(out); n > 0 && x.off <= out[n-1].end() {
			out[n-1].size = max(out[n-1].end(), x.end()) - out[n-1].off
			continue
		}
		out = append(out, x)
	}
	return out
}

// subtractSpans returns the parts of the sorted, disjoint spans a outside the sorted, disjoint
// spans b.
func subtractSpans(a, b []span) []span {
	var out []span
	for _, x := range a {
		start := x.off
		for _, y := range b {
			if y.end() <= start || y.off >= x.end() {
				continue
			}
			if y.off > start {
				out = append(out, span{start, y.off - start})
			}
			start = max(start, y.end())
		}
		if start < x.end() {
			out = append(out, span{start, x.end() - start})
		}
	}
	return out
}

func sortSpans(s []span) {
	sort.Slice(s, func(i, j int) bool { return s[i].off < s[j].off })
}
