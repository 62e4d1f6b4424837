package vkrt

import (
	"fmt"
	"sort"
	"sync"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"
)

// Alignment of every range handed out: at least minStorageBufferOffsetAlignment on all known
// devices (16 on lavapipe, ≤ 64 on NVIDIA/AMD), and a multiple of 4 so float offsets are exact.
const rangeAlign = 256

// block is one VkBuffer bound to its own VkDeviceMemory, carved into ranges.
type block struct {
	id     int
	buf    vk.Buffer
	mem    vk.DeviceMemory
	size   int64
	mapped unsafe.Pointer // host-visible blocks stay mapped for their lifetime
	free   []span         // sorted by offset, coalesced
	live   int            // ranges handed out and not yet freed
}

type span struct{ off, size int64 }

func (s span) end() int64 { return s.off + s.size }

// Buffer is a range of an arena block: what a tensor's storage holds.
type Buffer struct {
	a     *arena
	blk   *block
	off   int64
	size  int64
	freed bool
	// pinned: an output of a live capture, whose replays write it; Free is deferred (freeWanted)
	// until the capture is released.
	pinned, freeWanted bool
}

// Size is the range's length in bytes (rounded up to the arena alignment).
func (b *Buffer) Size() int64 { return b.size }

// arena sub-allocates ranges from a few large buffers of one memory type, growing on demand.
// Free is bookkeeping only: it may run while the GPU still uses the range, because the recorder
// orders any later writer after earlier readers (hazard tracking), and it is safe from a
// finalizer goroutine.
type arena struct {
	mu        sync.Mutex
	d         *Device
	name      string // "device" or "staging", for errors
	memType   uint32
	heap      int
	host      bool
	blockSize int64
	maxAlloc  int64
	blocks    []*block
	nextID    int
	inUse     int64
	peakInUse int64         // the most inUse since the last ResetMemoryPeak
	peakTotal int64         // the most reserved (all blocks) since then
	noReuse   bool          // Options.DebugNoReuse: freed ranges stay out of the free lists
	onAlloc   func(*Buffer) // sees every range handed out (a capture in progress); under mu
}

func (d *Device) newArena(name string, memType uint32, host bool, blockSize int64) *arena {
	maxAlloc := int64(d.Info.MaxMemoryAllocationSize)
	if d.Info.MaxBufferSize > 0 && int64(d.Info.MaxBufferSize) < maxAlloc {
		maxAlloc = int64(d.Info.MaxBufferSize)
	}
	heap := int(d.memHeap[memType])
	if hs := int64(d.Info.Heaps[heap].Size); hs < maxAlloc {
		maxAlloc = hs
	}
	return &arena{d: d, name: name, memType: memType, heap: heap, host: host, blockSize: min(blockSize, maxAlloc), maxAlloc: maxAlloc}
}

func alignUp(v, a int64) int64 { return (v + a - 1) / a * a }

// alloc returns a range of at least size bytes.
func (a *arena) alloc(size int64) (*Buffer, error) {
	if size <= 0 {
		size = 4
	}
	size = alignUp(size, rangeAlign)
	a.mu.Lock()
	defer a.mu.Unlock()
	if b := a.fit(size); b != nil {
		return b, nil
	}
	if size > a.maxAlloc {
		return nil, fmt.Errorf("vkrt: allocate %s of %s memory: larger than the largest possible allocation (%s): %w",
			bytesStr(size), a.name, bytesStr(a.maxAlloc), ErrOutOfDeviceMemory)
	}
	blk, err := a.newBlock(max(size, a.blockSize))
	if err != nil && size < a.blockSize {
		blk, err = a.newBlock(size) // a whole block may not fit any more; the request might
	}
	if err != nil {
		return nil, fmt.Errorf("vkrt: allocate %s of %s memory (arena: %d blocks, %s, %s in use; heap %s): %w",
			bytesStr(size), a.name, len(a.blocks), bytesStr(a.total()), bytesStr(a.inUse), bytesStr(int64(a.d.Info.Heaps[a.heap].Size)), err)
	}
	a.blocks = append(a.blocks, blk)
	a.peakTotal = max(a.peakTotal, a.total())
	return a.fit(size), nil
}

// fit takes size bytes from the smallest free span that holds them (best fit limits the
// fragmentation that a training step's mix of sizes causes).
func (a *arena) fit(size int64) *Buffer {
	var best *block
	bi := -1
	for _, blk := range a.blocks {
		for i, s := range blk.free {
			if s.size >= size && (best == nil || s.size < best.free[bi].size) {
				best, bi = blk, i
			}
		}
	}
	if best == nil {
		return nil
	}
	s := &best.free[bi]
	b := &Buffer{a: a, blk: best, off: s.off, size: size}
	s.off += size
	s.size -= size
	if s.size == 0 {
		best.free = append(best.free[:bi], best.free[bi+1:]...)
	}
	best.live++
	a.inUse += size
	a.peakInUse = max(a.peakInUse, a.inUse)
	if a.onAlloc != nil {
		a.onAlloc(b)
	}
	return b
}

// free returns a range; freeing twice is a no-op.
func (a *arena) free(b *Buffer) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.freeLocked(b)
}

// freeLocked is free with a.mu held.
func (a *arena) freeLocked(b *Buffer) {
	if b.freed {
		return
	}
	if b.pinned {
		b.freeWanted = true
		return
	}
	b.freed = true
	blk := b.blk
	blk.live--
	a.inUse -= b.size
	if a.noReuse {
		return
	}
	i := sort.Search(len(blk.free), func(i int) bool { return blk.free[i].off > b.off })
	blk.free = append(blk.free, span{})
	copy(blk.free[i+1:], blk.free[i:])
	blk.free[i] = span{b.off, b.size}
	// Coalesce with the following and preceding spans.
	if i+1 < len(blk.free) && blk.free[i].end() == blk.free[i+1].off {
		blk.free[i].size += blk.free[i+1].size
		blk.free = append(blk.free[:i+1], blk.free[i+2:]...)
	}
	if i > 0 && blk.free[i-1].end() == blk.free[i].off {
		blk.free[i-1].size += blk.free[i].size
		blk.free = append(blk.free[:i], blk.free[i+1:]...)
	}
}

// take hands out exactly the range s of blk, which must be free; the caller holds a.mu.
func (a *arena) take(blk *block, s span) (*Buffer, error) {
	for i, f := range blk.free {
		if f.off > s.off || f.end() < s.end() {
			continue
		}
		// Split f into [f.off, s.off), s, [s.end, f.end).
		rest := []span{}
		if s.off > f.off {
			rest = append(rest, span{f.off, s.off - f.off})
		}
		if f.end() > s.end() {
			rest = append(rest, span{s.end(), f.end() - s.end()})
		}
		blk.free = append(blk.free[:i], append(rest, blk.free[i+1:]...)...)
		blk.live++
		a.inUse += s.size
		a.peakInUse = max(a.peakInUse, a.inUse)
		return &Buffer{a: a, blk: blk, off: s.off, size: s.size}, nil
	}
	return nil, fmt.Errorf("vkrt: internal: range [%d, %d) of block %d to reserve is not free", s.off, s.end(), blk.id)
}

// reserved is the bytes of all blocks.
func (a *arena) reserved() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.total()
}

// total is the bytes of all blocks; the caller holds a.mu.
func (a *arena) total() int64 {
	var t int64
	for _, b := range a.blocks {
		t += b.size
	}
	return t
}

// trim destroys empty blocks beyond the first; the caller guarantees the GPU no longer uses them.
func (a *arena) trim() {
	a.mu.Lock()
	defer a.mu.Unlock()
	kept := a.blocks[:0]
	for i, b := range a.blocks {
		if i > 0 && b.live == 0 {
			a.d.destroyBlock(b)
			continue
		}
		kept = append(kept, b)
	}
	a.blocks = kept
}

func (a *arena) destroy() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, b := range a.blocks {
		a.d.destroyBlock(b)
	}
	a.blocks = nil
}

func (a *arena) newBlock(size int64) (*block, error) {
	d := a.d
	if d.plan {
		// A planning device reserves nothing; it refuses what the profiled heap could not hold.
		if heap := int64(d.Info.Heaps[a.heap].Size); a.total()+size > heap {
			return nil, fmt.Errorf("vkrt: plan: %s more would exceed the %s heap: %w", bytesStr(size), bytesStr(heap), ErrOutOfDeviceMemory)
		}
		blk := &block{id: a.nextID, size: size, free: []span{{0, size}}}
		a.nextID++
		return blk, nil
	}
	usage := vk.BufferUsageFlags(vk.BufferUsageStorageBufferBit | vk.BufferUsageTransferSrcBit | vk.BufferUsageTransferDstBit)
	info := vk.BufferCreateInfo{
		SType:       vk.StructureTypeBufferCreateInfo,
		Size:        vk.DeviceSize(size),
		Usage:       usage,
		SharingMode: vk.SharingModeExclusive,
	}
	var buf vk.Buffer
	if err := check(vk.CreateBuffer(d.dev, &info, nil, &buf), "vkCreateBuffer(%s)", bytesStr(size)); err != nil {
		return nil, err
	}
	var req vk.MemoryRequirements
	vk.GetBufferMemoryRequirements(d.dev, buf, &req)
	req.Deref()
	if req.MemoryTypeBits&(1<<a.memType) == 0 {
		vk.DestroyBuffer(d.dev, buf, nil)
		return nil, fmt.Errorf("vkrt: memory type %d cannot hold storage buffers", a.memType)
	}
	ainfo := vk.MemoryAllocateInfo{
		SType:           vk.StructureTypeMemoryAllocateInfo,
		AllocationSize:  req.Size,
		MemoryTypeIndex: a.memType,
	}
	var mem vk.DeviceMemory
	if err := check(vk.AllocateMemory(d.dev, &ainfo, nil, &mem), "vkAllocateMemory(%s)", bytesStr(int64(req.Size))); err != nil {
		vk.DestroyBuffer(d.dev, buf, nil)
		return nil, err
	}
	if err := check(vk.BindBufferMemory(d.dev, buf, mem, 0), "vkBindBufferMemory"); err != nil {
		vk.FreeMemory(d.dev, mem, nil)
		vk.DestroyBuffer(d.dev, buf, nil)
		return nil, err
	}
	blk := &block{id: a.nextID, buf: buf, mem: mem, size: size, free: []span{{0, size}}}
	a.nextID++
	if a.host {
		var p unsafe.Pointer
		if err := check(vk.MapMemory(d.dev, mem, 0, vk.DeviceSize(vk.WholeSize), 0, &p), "vkMapMemory"); err != nil {
			d.destroyBlock(blk)
			return nil, err
		}
		blk.mapped = p
	}
	return blk, nil
}

func (d *Device) destroyBlock(b *block) {
	if d.plan {
		return
	}
	if b.mapped != nil {
		vk.UnmapMemory(d.dev, b.mem)
	}
	vk.DestroyBuffer(d.dev, b.buf, nil)
	vk.FreeMemory(d.dev, b.mem, nil)
}

// hostBytes is the mapped memory of a host-visible range (nil on a planning device).
func (b *Buffer) hostBytes() []byte {
	if b.blk.mapped == nil {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Add(b.blk.mapped, b.off)), b.size)
}

func bytesStr(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
