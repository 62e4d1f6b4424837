package train

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/chnet/chnet/internal/vkrt"
	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/ops/cpu"
	"github.com/chnet/chnet/ops/vk"
	"github.com/chnet/chnet/tensor"
)

// cycleData is a fixed set of batches, one per size, delivered in the same order every epoch:
// a workload that repeats exactly, so what it holds must stop growing after the first round.
type cycleData struct {
	batches []Batch
}

func newCycleData(batch int, sizes ...int) *cycleData {
	d := &cycleData{}
	rng := tensor.NewRNG(17, 0)
	for _, s := range sizes {
		b := Batch{N: batch, Size: s, Images: make([]float32, batch*3*s*s), Masks: make([]float32, batch*s*s)}
		for i := range b.Images {
			b.Images[i] = float32(rng.Normal())
		}
		for i := range b.Masks {
			if i%s < s/2 {
				b.Masks[i] = 1
			}
		}
		d.batches = append(d.batches, b)
	}
	return d
}

func (d *cycleData) BatchesPerEpoch() int { return len(d.batches) }

func (d *cycleData) Epoch(_ context.Context, _, from int) (BatchIter, error) {
	return &cycleIter{d.batches[from:]}, nil
}

type cycleIter struct{ rest []Batch }

func (it *cycleIter) Next() (Batch, bool, error) {
	if len(it.rest) == 0 {
		return Batch{}, false, nil
	}
	b := it.rest[0]
	it.rest = it.rest[1:]
	return b, true, nil
}

func (it *cycleIter) Close() {}

// soakNet is small (a step takes milliseconds even on lavapipe) but runs the kernels of a real
// network's step: convolution, batch norm, ReLU, max and average pooling, bilinear resizing,
// concatenation and split, addition, the structure loss, SGD, uploads and downloads.
type soakNet struct {
	conv1, conv2, conv3 *nn.Conv2d
	bn                  *nn.BatchNorm2d
}

func newSoakNet(in nn.Init) (*soakNet, error) {
	var m soakNet
	var err error
	if m.conv1, err = nn.NewConv2d(in, nn.Conv2dConfig{In: 3, Out: 8, Kernel: 3, Conv2DParams: ops.Conv2DParams{Pad: 1}}); err != nil {
		return nil, err
	}
	if m.bn, err = nn.NewBatchNorm2d(in, 8); err != nil {
		return nil, err
	}
	if m.conv2, err = nn.NewConv2d(in, nn.Conv2dConfig{In: 8, Out: 8, Kernel: 3, Conv2DParams: ops.Conv2DParams{Pad: 1}}); err != nil {
		return nil, err
	}
	if m.conv3, err = nn.NewConv2d(in, nn.Conv2dConfig{In: 8, Out: 1, Kernel: 1, Bias: true}); err != nil {
		return nil, err
	}
	return &m, nil
}

func (m *soakNet) Children() []nn.Child {
	return []nn.Child{{Name: "conv1", Module: m.conv1}, {Name: "bn", Module: m.bn}, {Name: "conv2", Module: m.conv2}, {Name: "conv3", Module: m.conv3}}
}

func (m *soakNet) Tensors() []nn.Entry { return nil }

func (m *soakNet) Forward(t *ops.Tape, x *tensor.Tensor) *tensor.Tensor {
	h, w := x.Dim(2), x.Dim(3)
	a := t.ReLU(m.bn.Forward(t, m.conv1.Forward(t, x)))
	b := t.ReLU(m.conv2.Forward(t, t.MaxPool2D(a, ops.PoolParams{Kernel: 2, Stride: 2})))
	parts := t.Split(t.Concat(a, t.ResizeBilinear(b, h, w, false)), 8, 8)
	s := t.AvgPool2D(t.Add(parts[0], parts[1]), ops.PoolParams{Kernel: 3, Stride: 1, Pad: 1})
	return m.conv3.Forward(t, s)
}

// soakSample is what one step leaves behind.
type soakSample struct {
	heap            uint64 // Go heap in use after a collection
	inUse, reserved int64  // device arena: bytes handed out, bytes of its blocks
	objects         vkrt.Objects
}

// soak trains epochs epochs of the cycle (steps of every size, validation, checkpoints) and
// samples after every step.
func soak(t *testing.T, b ops.Backend, m nn.Segmenter, data *cycleData, epochs int) []soakSample {
	t.Helper()
	tr := newTinyTrainerOn(t, b, t.TempDir(), data, epochs)
	tr.Model = m
	opt, err := NewSGD(b, m, ops.SGDParams{Momentum: 0.9, WeightDecay: 5e-4, Nesterov: true})
	if err != nil {
		t.Fatal(err)
	}
	tr.Opt = opt
	tr.Val = HeldOut{Data: newCycleData(1, data.batches[0].Size), Loss: tr.Cfg.Loss}
	var dev *vkrt.Device
	if vb, ok := b.(*vk.Backend); ok {
		dev = vb.Device()
	}
	// Allocated up front: a growing slice would show in the heap it measures.
	samples := make([]soakSample, 0, epochs*data.BatchesPerEpoch())
	var ms runtime.MemStats
	tr.Hook = func(_ context.Context, p string) {
		if p != "step" {
			return
		}
		if err := b.Sync(); err != nil {
			t.Fatal(err)
		}
		// Two collections: sync.Pool contents survive the first (its victim cache).
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		s := soakSample{heap: ms.HeapAlloc}
		if dev != nil {
			s.inUse, s.reserved = dev.MemoryInUse()
			s.objects = dev.Objects()
		}
		samples = append(samples, s)
	}
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return samples
}

// checkFlat fails if anything grows after the warm-up epochs: device objects, arena blocks and
// the bytes handed out at the same point of each epoch must not change at all; the Go heap may
// move by noise, not by a trend.
func checkFlat(t *testing.T, samples []soakSample, perEpoch, warmEpochs int) {
	t.Helper()
	steady := samples[warmEpochs*perEpoch:]
	if len(steady) < 4*perEpoch {
		t.Fatalf("%d steady samples; need at least %d", len(steady), 4*perEpoch)
	}
	first := steady[:perEpoch]
	for i, s := range steady {
		ref := first[i%perEpoch]
		if s.objects != ref.objects || s.reserved != ref.reserved || s.inUse != ref.inUse {
			t.Errorf("step %d after warm-up: objects %+v, arena %d in use of %d; the first steady epoch had %+v, %d of %d",
				i, s.objects, s.inUse, s.reserved, ref.objects, ref.inUse, ref.reserved)
		}
	}
	// Heap trend: the mean of the last quarter against the first quarter.
	q := len(steady) / 4
	var a, b float64
	for i := 0; i < q; i++ {
		a += float64(steady[i].heap)
		b += float64(steady[len(steady)-q+i].heap)
	}
	a, b = a/float64(q), b/float64(q)
	t.Logf("%d steps after %d warm-up epochs: Go heap %.0f KiB → %.0f KiB; device %+v, arena %d of %d bytes",
		len(steady), warmEpochs, a/1024, b/1024, steady[0].objects, steady[0].inUse, steady[0].reserved)
	if b-a > 64<<10 {
		t.Errorf("the Go heap grew by %.0f KiB over %d steps", (b-a)/1024, len(steady))
	}
}

// Many small training steps — two sizes, validation and checkpoints every epoch — leave the Go
// heap, the device arena and the live Vulkan objects flat once the first epochs have created
// what the workload needs.
func TestSoak(t *testing.T) {
	data := newCycleData(2, 32, 48)
	// CI runs 12 epochs (24 steps); CHNET_SOAK_EPOCHS runs longer (a nightly soak).
	epochs, warm := 12, 2
	if n, err := strconv.Atoi(os.Getenv("CHNET_SOAK_EPOCHS")); err == nil && n > warm+4 {
		epochs = n
	}
	t.Run("cpu", func(t *testing.T) {
		b := cpu.New()
		m, err := newSoakNet(nn.Init{B: b, RNG: tensor.NewRNG(1, 0)})
		if err != nil {
			t.Fatal(err)
		}
		checkFlat(t, soak(t, b, m, data, epochs), len(data.batches), warm)
	})
	t.Run("vulkan", func(t *testing.T) {
		b, err := vk.Open(vkrt.Options{})
		if err != nil {
			if os.Getenv("CHNET_REQUIRE_VULKAN") != "1" && errors.Is(err, vkrt.ErrUnavailable) {
				t.Skipf("NO VULKAN DEVICE — this test checks nothing here (CHNET_REQUIRE_VULKAN=1 makes it fail): %v", err)
			}
			t.Fatal(err)
		}
		defer b.Close()
		m, err := newSoakNet(nn.Init{B: b, RNG: tensor.NewRNG(1, 0)})
		if err != nil {
			t.Fatal(err)
		}
		checkFlat(t, soak(t, b, m, data, epochs), len(data.batches), warm)
	})
}
