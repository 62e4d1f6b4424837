package train

import (
	"errors"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/chnet/chnet/internal/vkrt"
	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/ops/cpu"
	"github.com/chnet/chnet/ops/optest"
	"github.com/chnet/chnet/ops/vk"
	"github.com/chnet/chnet/tensor"
)

// eachBackend runs f on the CPU backend and on the Vulkan device (skipped loudly without one).
func eachBackend(t *testing.T, f func(t *testing.T, b ops.Backend)) {
	t.Run("cpu", func(t *testing.T) { f(t, cpu.New()) })
	t.Run("vulkan", func(t *testing.T) {
		b, err := vk.Open(vkrt.Options{})
		if err != nil {
			if os.Getenv("CHNET_REQUIRE_VULKAN") != "1" && errors.Is(err, vkrt.ErrUnavailable) {
				t.Skipf("NO VULKAN DEVICE — this test checks nothing here (CHNET_REQUIRE_VULKAN=1 makes it fail): %v", err)
			}
			t.Fatal(err)
		}
		defer b.Close()
		f(t, b)
	})
}

// A forced overflow: starting at 2¹²⁷, the scaled gradients overflow float32, so the first steps
// must be skipped on the device (parameters and momentum untouched) and the scale halved each
// time, until it fits. Because the scale is a power of two, the run must then follow an unscaled
// run exactly, bit for bit: scaled run after n steps = unscaled run after n − skipped steps.
// Captured steps are replayed on Vulkan, so the skip and the scale change happen without the host.
func TestLossScalingSkipsOverflowAndFollowsUnscaled(t *testing.T) {
	eachBackend(t, func(t *testing.T, b ops.Backend) {
		x, y := optest.DiscBatch(t, b)
		p := ops.SGDParams{LR: 0.05, Momentum: 0.9, WeightDecay: 5e-4, Nesterov: true}
		rule := ops.LossScaleParams{Growth: 2, Backoff: 0.5, Interval: 3}
		init := float32(math.Ldexp(1, 127))
		newRun := func() (*tinyNet, *SGD) {
			m, err := newTinyNet(nn.Init{B: b, RNG: tensor.NewRNG(3, 0)})
			if err != nil {
				t.Fatal(err)
			}
			// A classifier weight ×1000 makes the hidden gradients large enough (> 2) that 2¹²⁷
			// times them overflows float32.
			w, err := b.Download(m.conv2.Weight)
			if err == nil {
				for i := range w {
					w[i] *= 1000
				}
				err = b.Upload(m.conv2.Weight, w)
			}
			if err != nil {
				t.Fatal(err)
			}
			opt, err := NewSGD(b, m, p)
			if err != nil {
				t.Fatal(err)
			}
			return m, opt
		}
		params := func(m *tinyNet, opt *SGD) map[string][]float32 {
			st, err := nn.StateOf(b, m)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string][]float32{}
			for k, v := range st.Tensors {
				if !strings.Contains(k, "running_") { // forward passes of skipped steps move these
					out[k] = v.Data
				}
			}
			mom, err := opt.State()
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range mom {
				out["momentum "+k] = v.Data
			}
			return out
		}
		step := func(m *tinyNet, opt *SGD) {
			if _, err := Step(b, m, opt, x, y, ops.StructureLossOfficial); err != nil {
				t.Fatal(err)
			}
		}

		ref, refOpt := newRun()
		defer refOpt.Release()
		want := []map[string][]float32{params(ref, refOpt)}
		scaled, opt := newRun()
		defer opt.Release()
		if err := opt.EnableLossScaling(init, rule); err != nil {
			t.Fatal(err)
		}
		const steps = 12
		skipped, simScale, simGood := 0, float64(init), 0
		for n := 1; n <= steps; n++ {
			step(scaled, opt)
			scale, sk, on, err := opt.LossScale()
			if err != nil || !on {
				t.Fatalf("step %d: loss scale: %v (on %v)", n, err, on)
			}
			if sk != skipped && sk != skipped+1 {
				t.Fatalf("step %d: %d steps skipped in all, %d before", n, sk, skipped)
			}
			// GradScaler's rule, applied on the host to what the device decided.
			if sk > skipped {
				simScale, simGood = simScale*float64(rule.Backoff), 0
			} else if simGood++; simGood == rule.Interval {
				if g := simScale * float64(rule.Growth); g <= math.MaxFloat32 {
					simScale = g
				}
				simGood = 0
			}
			if float64(scale) != simScale {
				t.Fatalf("step %d (%d skipped): scale %v, want %v", n, sk, scale, simScale)
			}
			if n == 1 && sk != 1 {
				t.Fatalf("step 1 was applied at scale 2¹²⁷: the forced overflow was not detected")
			}
			skipped = sk
			good := n - sk
			for len(want) <= good {
				step(ref, refOpt)
				want = append(want, params(ref, refOpt))
			}
			got := params(scaled, opt)
			for k, w := range want[good] {
				for i := range w {
					if got[k][i] != w[i] {
						t.Fatalf("step %d (%d skipped): %s[%d] = %v, unscaled run after %d steps %v", n, sk, k, i, got[k][i], good, w[i])
					}
				}
			}
		}
		// The state travels with the optimiser's checkpoint state.
		st, err := opt.State()
		if err != nil {
			t.Fatal(err)
		}
		_, other := newRun()
		defer other.Release()
		if err := other.EnableLossScaling(1, rule); err != nil {
			t.Fatal(err)
		}
		if err := other.LoadState(st); err != nil {
			t.Fatal(err)
		}
		s1, k1, _, _ := opt.LossScale()
		s2, k2, _, err := other.LossScale()
		if err != nil || s1 != s2 || k1 != k2 {
			t.Fatalf("restored loss scale %v (%d skipped), saved %v (%d): %v", s2, k2, s1, k1, err)
		}
		if skipped == steps {
			t.Fatalf("%d of %d steps skipped: the forced overflow did not happen, or never ended", skipped, steps)
		}
		t.Logf("%d of %d steps skipped", skipped, steps)
	})
}
