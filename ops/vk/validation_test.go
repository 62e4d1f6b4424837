package vk

import (
	"strings"
	"testing"

	"github.com/chnet/chnet/internal/vkrt"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/ops/cpu"
	"github.com/chnet/chnet/ops/optest"
)

// TestValidationLayer runs the small network and a few kernels on a device opened with the
// Khronos validation layer and synchronization validation, and requires zero errors: invalid
// API use, out-of-range bindings, and missing barriers (read-after-write hazards the recorder's
// range tracking failed to order) are all reported as errors there.
func TestValidationLayer(t *testing.T) {
	b, err := Open(vkrt.Options{Validation: true})
	if err != nil {
		skipOrFail(t, err)
	}
	defer func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	}()
	d := b.Device()

	t.Run("callback_reports_invalid_call", func(t *testing.T) {
		d.ValidationMessages() // drop anything from device creation
		d.ProvokeValidationError()
		errs, _, text := d.ValidationMessages()
		if errs == 0 || !strings.Contains(text, "size") {
			t.Fatalf("a zero-sized buffer was not reported (%d errors): %q", errs, text)
		}
		t.Logf("caught: %.160s", text)
	})

	t.Run("ops_without_errors", func(t *testing.T) {
		d.ValidationMessages()
		optest.CompareNet(t, cpu.New(), b)
		// Kernels the network does not use, and a push-descriptor-free second pass is covered
		// by vkrt's own tests; here: average pooling, eval batch norm, BCE and SGD.
		x, err := ops.FromHost(b, make([]float32, 2*3*9*7), 2, 3, 9, 7)
		if err != nil {
			t.Fatal(err)
		}
		y, _ := b.Alloc(x.Shape())
		if err := b.AvgPool2D(y, x, ops.PoolParams{Kernel: 3, Stride: 1, Pad: 1}.Norm()); err != nil {
			t.Fatal(err)
		}
		g, _ := b.Alloc(x.Shape())
		if err := b.AvgPool2DGrad(g, y, ops.PoolParams{Kernel: 3, Stride: 1, Pad: 1}.Norm()); err != nil {
			t.Fatal(err)
		}
		ones, _ := ops.FromHost(b, []float32{1, 1, 1}, 3)
		if err := b.BatchNormEval(y, g, ones, ones, ones, ones, nil, false, ops.DefaultBatchNorm); err != nil {
			t.Fatal(err)
		}
		if err := b.BCEWithLogits(g, y, x); err != nil {
			t.Fatal(err)
		}
		loss, _ := ops.FromHost(b, []float32{0.5}, 1)
		halt, _ := ops.Zeros(b, 1)
		if err := b.SGDStep(x, g, y, loss, halt, ops.SGDParams{LR: 0.1, Momentum: 0.9, Nesterov: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Download(x); err != nil {
			t.Fatal(err)
		}
		errs, warnings, text := d.ValidationMessages()
		if errs > 0 {
			t.Fatalf("validation reported %d errors (and %d warnings):\n%s", errs, warnings, text)
		}
		if warnings > 0 {
			t.Logf("%d validation warnings:\n%s", warnings, text)
		}
		t.Logf("recorder: %+v", d.Stats())
	})
}

// TestValidationPooledDescriptorSets runs the small network through the fallback for devices
// without VK_KHR_push_descriptor (descriptor sets from pools reset per submission), with short
// submissions so pools are recycled, under the validation layer.
func TestValidationPooledDescriptorSets(t *testing.T) {
	b, err := Open(vkrt.Options{Validation: true, NoPushDescriptor: true, MaxDispatchesPerSubmit: 7})
	if err != nil {
		skipOrFail(t, err)
	}
	defer b.Close()
	if b.Device().PushDescriptors() {
		t.Fatal("push descriptors still in use")
	}
	b.Device().ValidationMessages()
	optest.CompareNet(t, cpu.New(), b)
	if errs, _, text := b.Device().ValidationMessages(); errs > 0 {
		t.Fatalf("validation reported %d errors:\n%s", errs, text)
	}
}

// TestValidationCatchesMissingBarriers shows the check above can fail: with the recorder's
// barriers switched off, synchronization validation reports read-after-write hazards.
func TestValidationCatchesMissingBarriers(t *testing.T) {
	b, err := Open(vkrt.Options{Validation: true, DebugNoBarriers: true})
	if err != nil {
		skipOrFail(t, err)
	}
	defer b.Close()
	x, err := ops.FromHost(b, make([]float32, 4*64), 4, 64)
	if err != nil {
		t.Fatal(err)
	}
	y, _ := b.Alloc(x.Shape())
	if err := b.Unary(ops.ReLU, y, x); err != nil { // reads x right after its upload
		t.Fatal(err)
	}
	if err := b.Unary(ops.Neg, x, y); err != nil { // reads y right after it is written
		t.Fatal(err)
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	errs, _, text := b.Device().ValidationMessages()
	if errs == 0 || !strings.Contains(text, "SYNC-HAZARD") {
		t.Fatalf("no hazard reported without barriers (%d errors): %.300s", errs, text)
	}
	t.Logf("%d errors, e.g. %.200s", errs, text)
}
