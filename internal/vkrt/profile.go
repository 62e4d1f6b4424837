package vkrt

/*
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"sort"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"
)

// KernelTime is one kernel's share of a profile: its dispatches, their GPU time, and what they
// bound and declared (KernelStats), from which rates follow.
type KernelTime struct {
	Name  string
	Calls int
	Ns    float64 // GPU time in nanoseconds
	Bytes int64
	MACs  int64
}

// stamp is what a timestamp after a command closes: the command's name and costs.
type stamp struct {
	name        string
	bytes, macs int64
}

// StartProfile makes every dispatch and copy from now on write a GPU timestamp after it, so
// that StopProfile can attribute the time between consecutive timestamps to the command before
// each: its time to finish after the previous one did. Dispatches still overlap as barriers
// allow; the attribution is what the queue shows.
func (d *Device) StartProfile() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.plan {
		return errors.New("vkrt: a planning device executes nothing to time")
	}
	if d.capture != nil {
		return errors.New("vkrt: no profiling during a capture")
	}
	if !d.Info.TimestampCompute || d.Info.TimestampPeriod <= 0 {
		return fmt.Errorf("vkrt: %s has no compute-queue timestamps", d.Info.Name)
	}
	if err := d.flush(); err != nil { // the frame being recorded has no opening timestamp
		return err
	}
	d.profiling = true
	d.profile = map[string]*KernelTime{}
	return nil
}

// StopProfile waits for the profiled work and returns each kernel's totals, largest time first.
func (d *Device) StopProfile() ([]KernelTime, error) {
	if err := d.Sync(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.profiling = false
	out := make([]KernelTime, 0, len(d.profile))
	for _, k := range d.profile {
		out = append(out, *k)
	}
	d.profile = nil
	sort.Slice(out, func(i, j int) bool {
		if out[i].Ns != out[j].Ns {
			return out[i].Ns > out[j].Ns
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// profileCap is the timestamps one command buffer's query pool holds; a frame is submitted
// before it runs out.
const profileCap = 2*defaultPerSubmit + 8

// startStamps resets f's queries and writes its opening timestamp (profiling only).
func (d *Device) startStamps(f *frame) error {
	if !d.profiling || d.plan {
		return nil
	}
	if f.qpool == nil {
		info := vk.QueryPoolCreateInfo{SType: vk.StructureTypeQueryPoolCreateInfo, QueryType: vk.QueryTypeTimestamp, QueryCount: profileCap}
		var qp vk.QueryPool
		if err := check(vk.CreateQueryPool(d.dev, &info, nil, &qp), "vkCreateQueryPool"); err != nil {
			return err
		}
		f.qpool = qp
	}
	pool := C.VkQueryPool(unsafe.Pointer(f.qpool))
	C.chn_cmd_reset_queries(d.cd, f.cb, pool, 0, profileCap)
	C.chn_cmd_timestamp(d.cd, f.cb, pool, 0)
	f.profiled = true
	return nil
}

// stampAfter writes a timestamp after the command just recorded into f.
func (d *Device) stampAfter(f *frame, name string, bytes, macs int64) {
	if !f.profiled {
		return
	}
	f.stamps = append(f.stamps, stamp{name, bytes, macs})
	C.chn_cmd_timestamp(d.cd, f.cb, C.VkQueryPool(unsafe.Pointer(f.qpool)), C.uint32_t(len(f.stamps)))
}

// stampsFull reports whether f's query pool is nearly used up.
func (f *frame) stampsFull() bool { return f.profiled && len(f.stamps)+2 >= profileCap }

// collectStamps reads a finished frame's timestamps into the profile.
func (d *Device) collectStamps(f *frame) error {
	if !f.profiled {
		return nil
	}
	n := len(f.stamps)
	f.profiled = false
	defer func() { f.stamps = f.stamps[:0] }()
	if n == 0 || d.profile == nil {
		return nil
	}
	ts := make([]uint64, n+1)
	r := vk.GetQueryPoolResults(d.dev, f.qpool, 0, uint32(n+1), uint(8*(n+1)), unsafe.Pointer(&ts[0]), 8,
		vk.QueryResultFlags(vk.QueryResult64Bit|vk.QueryResultWaitBit))
	if err := check(r, "vkGetQueryPoolResults"); err != nil {
		return err
	}
	period := float64(d.Info.TimestampPeriod)
	for i, s := range f.stamps {
		k := d.profile[s.name]
		if k == nil {
			k = &KernelTime{Name: s.name}
			d.profile[s.name] = k
		}
		k.Calls++
		if ts[i+1] > ts[i] {
			k.Ns += float64(ts[i+1]-ts[i]) * period
		}
		k.Bytes += s.bytes
		k.MACs += s.macs
	}
	return nil
}
