package cpu

import (
	"math"
	"testing"

	"github.com/chnet/chnet/ops"
)

// The update rule, case by case, as torch.cuda.amp.GradScaler defines it (_amp_update_scale_):
// an overflow multiplies the scale by the backoff and restarts the count; the Interval-th finite
// step in a row multiplies it by the growth unless that overflows; found is cleared after.
func TestUpdateLossScaleRule(t *testing.T) {
	rule := ops.LossScaleParams{Growth: 2, Backoff: 0.25, Interval: 4}
	for _, c := range []struct {
		name     string
		in, want [ops.LossScaleStateLen]float32 // scale, found, good, skipped
	}{
		{"overflow", [4]float32{1024, 1, 3, 5}, [4]float32{256, 0, 0, 6}},
		{"finite", [4]float32{1024, 0, 1, 5}, [4]float32{1024, 0, 2, 5}},
		{"grow", [4]float32{1024, 0, 3, 5}, [4]float32{2048, 0, 0, 5}},
		{"grow_would_overflow", [4]float32{float32(math.Ldexp(1, 127)), 0, 3, 0}, [4]float32{float32(math.Ldexp(1, 127)), 0, 0, 0}},
		{"overflow_at_interval", [4]float32{1024, 1, 3, 0}, [4]float32{256, 0, 0, 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := New()
			st, _ := ops.FromHost(b, c.in[:], ops.LossScaleStateLen)
			if err := ops.UpdateLossScale(b, st, rule); err != nil {
				t.Fatal(err)
			}
			got, _ := b.Download(st)
			if [4]float32(got) != c.want {
				t.Fatalf("state %v → %v, want %v", c.in, got, c.want)
			}
		})
	}
}

// A scaled step on s·g with s a power of two is exactly the unscaled step on g, and a step with
// found set changes nothing.
func TestScaledSGDIsUnscaledSGD(t *testing.T) {
	b := New()
	const n = 1000
	w0, g, m0 := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range w0 {
		w0[i], g[i], m0[i] = float32(math.Sin(float64(i))), float32(math.Cos(float64(3*i)))/7, float32(i%5)/9
	}
	p := ops.SGDParams{LR: 0.03, Momentum: 0.9, WeightDecay: 5e-4, Nesterov: true}
	run := func(scale, found float32, grad []float32) ([]float32, []float32) {
		w, _ := ops.FromHost(b, w0, n)
		m, _ := ops.FromHost(b, m0, n)
		gt, _ := ops.FromHost(b, grad, n)
		q := p
		if scale != 0 {
			q.ScaleFrom, _ = ops.FromHost(b, []float32{scale, found, 0, 0}, ops.LossScaleStateLen)
		}
		if err := ops.SGDStep(b, w, gt, m, q); err != nil {
			t.Fatal(err)
		}
		wv, _ := b.Download(w)
		mv, _ := b.Download(m)
		return wv, mv
	}
	wantW, wantM := run(0, 0, g)
	sg := make([]float32, n)
	for i := range g {
		sg[i] = g[i] * 65536
	}
	gotW, gotM := run(65536, 0, sg)
	skipW, skipM := run(65536, 1, sg)
	for i := range g {
		if gotW[i] != wantW[i] || gotM[i] != wantM[i] {
			t.Fatalf("[%d]: scaled step %v/%v, unscaled %v/%v", i, gotW[i], gotM[i], wantW[i], wantM[i])
		}
		if skipW[i] != w0[i] || skipM[i] != m0[i] {
			t.Fatalf("[%d]: a step with found set moved the parameter or its momentum", i)
		}
	}
}

// CheckFinite sets found for a NaN or either infinity anywhere, never clears it, and leaves the
// rest of the state alone.
func TestCheckFinite(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, c := range []struct {
		name      string
		x         []float32
		found     float32
		wantFound float32
	}{
		{"clean", []float32{1, -2, 3e38, -3e38, 1e-45}, 0, 0},
		{"nan", []float32{1, nan, 3}, 0, 1},
		{"inf_last", []float32{1, 2, inf}, 0, 1},
		{"neg_inf_first", []float32{-inf, 2, 3}, 0, 1},
		{"stays_set", []float32{1, 2, 3}, 1, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := New()
			st, _ := ops.FromHost(b, []float32{8, c.found, 2, 1}, ops.LossScaleStateLen)
			x, _ := ops.FromHost(b, c.x, len(c.x))
			if err := ops.CheckFinite(b, st, x); err != nil {
				t.Fatal(err)
			}
			got, _ := b.Download(st)
			if want := []float32{8, c.wantFound, 2, 1}; [4]float32(got) != [4]float32(want) {
				t.Fatalf("state %v, want %v", got, want)
			}
		})
	}
}
