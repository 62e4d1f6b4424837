package vkrt

// Objects counts the Vulkan objects a device holds, by kind, from the tables it keeps them in:
// memory blocks of both arenas (each one VkDeviceMemory with its VkBuffer), compute pipelines,
// shader modules, and frames (each a command buffer with its fence). A workload that repeats
// stops creating objects after its first round: counts that keep growing are a leak.
type Objects struct {
	DeviceBlocks, StagingBlocks int
	Pipelines, Modules, Frames  int
}

// Objects returns the counts now.
func (d *Device) Objects() Objects {
	var o Objects
	for _, a := range []struct {
		a *arena
		n *int
	}{{d.arena, &o.DeviceBlocks}, {d.staging, &o.StagingBlocks}} {
		a.a.mu.Lock()
		*a.n = len(a.a.blocks)
		a.a.mu.Unlock()
	}
	d.mu.Lock()
	o.Pipelines, o.Modules, o.Frames = len(d.kernels), len(d.modules), len(d.frames)
	d.mu.Unlock()
	return o
}
