package vkrt

import "testing"

// TestTrackerItems checks the hazard tracking of batch-strided bindings: channel slices that
// interleave without sharing a byte are not hazards; anything that may share one is.
func TestTrackerItems(t *testing.T) {
	blk := &block{}
	buf := &Buffer{blk: blk, off: 256}
	// Items of 4 channels × 16 bytes in a 16-channel item of 256 bytes: slice c at c·64.
	slice := func(c, channels int64, write bool) Access {
		return Access{Buf: buf, Off: 0, Size: 4 * 256, Write: write, Items: &Items{First: c * 64, Stride: 256, Inner: channels * 64}}
	}
	dense := func(off, size int64, write bool) Access { return Access{Buf: buf, Off: off, Size: size, Write: write} }
	for _, c := range []struct {
		name        string
		first, next Access
		conflict    bool
	}{
		{"disjoint slices written", slice(0, 1, true), slice(1, 1, true), false},
		{"slice written, other read", slice(2, 1, true), slice(3, 1, false), false},
		{"slices sharing a channel", slice(0, 2, true), slice(1, 1, false), true},
		{"slice wrapping into the next item", slice(3, 1, true), Access{Buf: buf, Size: 4 * 256, Items: &Items{First: 3*64 + 32, Stride: 256, Inner: 64}}, true},
		{"other strides", slice(0, 1, true), Access{Buf: buf, Size: 4 * 256, Items: &Items{First: 64, Stride: 128, Inner: 64}}, true},
		{"dense range over a slice", slice(0, 1, true), dense(64, 64, false), true},
		{"reads only", slice(0, 2, false), slice(1, 1, false), false},
		{"beyond the range", slice(0, 4, true), dense(4*256, 64, true), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var tr tracker
			tr.init()
			tr.add([]Access{c.first})
			if got := tr.conflicts([]Access{c.next}); got != c.conflict {
				t.Errorf("conflict %v, want %v", got, c.conflict)
			}
		})
	}
}
