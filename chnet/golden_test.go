package chnet

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/chnet/chnet/internal/golden"
	"github.com/chnet/chnet/internal/safetensors"
	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/ops/cpu"
	"github.com/chnet/chnet/ops/optest"
	"github.com/chnet/chnet/tensor"
)

// Tolerances from shared/golden/MANIFEST.md: float32 through 30+ layers drifts, so outputs are
// compared at 1e-4 and deep gradients at 1e-3 (relative to the largest reference magnitude).
const (
	tolOutput = 1e-4
	tolGrad   = 1e-3
)

// tolEval bounds every eval-mode result (logits, loss, gradients, gradient norms) against the
// float64 reference at the exact ReLU pattern. There float32 rounding alone separates an engine
// from the exact result: PyTorch's float32 lies 1e-6 from it on the input gradient and at most
// 1.6e-5 on any stored tensor (classifier.0.bias, a sum over 8192 pixels with cancellation;
// recorded in the file's torch_float32_relerr), and an engine with other summation orders
// differs by a similar amount (the CPU and Vulkan backends by at most 2.5e-6 when this was
// written). 1e-4 leaves room for that while staying 70 times below the 0.7% one flipped ReLU
// unit causes.
const tolEval = 1e-4

// goldenIO opens chnet_v1_io.safetensors.
func goldenIO(t *testing.T) *safetensors.File {
	t.Helper()
	f, err := safetensors.ReadFile(golden.Path(t, "golden/chnet_v1_io.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func ref(t *testing.T, f *safetensors.File, name string) ([]float32, []int) {
	t.Helper()
	v, shape, err := f.Float32(name)
	if err != nil {
		t.Fatal(err)
	}
	return v, shape
}

func check(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	if e := optest.RelErr(got, want); e > tol || math.IsNaN(e) {
		t.Errorf("%s: relative error %.3g exceeds %g", what, e, tol)
	} else {
		t.Logf("%s: relative error %.2g", what, e)
	}
}

// seededModel builds the released CHNet on b and loads the official seed-0 checkpoint.
func seededModel(t *testing.T, b ops.Backend, factorized bool) *Model {
	t.Helper()
	cfg := Released()
	cfg.Factorized = factorized
	m, err := New(nn.Init{B: b, RNG: tensor.NewRNG(0, 0)}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := m.LoadState(b, officialSeed0(t))
	if err != nil {
		t.Fatal(err)
	}
	// 431 official entries = 361 float tensors + 70 num_batches_tracked counters.
	if len(rep.Loaded) != 361 {
		t.Fatalf("loaded %d tensors, want 361", len(rep.Loaded))
	}
	return m
}

func download(t *testing.T, b ops.Backend, x *tensor.Tensor) []float32 {
	t.Helper()
	v, err := ops.ToHost(b, x)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// GoldenModel checks the released CHNet on backend b against the official PyTorch code's
// outputs for the same weights (shared/golden/chnet_v1_io.safetensors): eval-mode features and
// logits; training-mode logits, loss, input gradient, selected parameter gradients, every
// parameter's gradient norm and the updated running statistics; parameters after one SGD step.
func GoldenModel(t *testing.T, b ops.Backend) {
	f := goldenIO(t)
	for _, factorized := range []bool{false, true} {
		name := "literal_head"
		if factorized {
			name = "factorized_head"
		}
		t.Run(name, func(t *testing.T) {
			m := seededModel(t, b, factorized)
			xv, xs := ref(t, f, "input")
			x, err := ops.FromHost(b, xv, xs...)
			if err != nil {
				t.Fatal(err)
			}

			t.Run("eval", func(t *testing.T) {
				nn.SetTraining(m, false)
				tp := ops.NewTape(b)
				tp.SetNoGrad(true)
				defer tp.Release()
				feats := m.Features(tp, x)
				logits := m.Forward(tp, x)
				if err := tp.Err(); err != nil {
					t.Fatal(err)
				}
				for i, ft := range feats {
					want, _ := ref(t, f, "eval.encode"+string(rune('1'+i)))
					check(t, "encode"+string(rune('1'+i)), download(t, b, ft), want, tolOutput)
				}
				want, _ := ref(t, f, "eval.logits")
				check(t, "logits", download(t, b, logits), want, tolOutput)
			})

			t.Run("train_step", func(t *testing.T) {
				mv, ms := ref(t, f, "target")
				got := trainStep(t, b, factorized, xv, xs, mv, ms, true)
				// How far PyTorch's float32 (the golden file) lies from the float64 result, per
				// tensor, measured by tools/torchref/chnet_ref.py.
				e, err := safetensors.ReadFile("testdata/train_backward64.safetensors")
				if err != nil {
					t.Fatal(err)
				}
				var err32 map[string]float64
				if err := json.Unmarshal([]byte(e.Metadata["torch_float32_relerr"]), &err32); err != nil {
					t.Fatal(err)
				}
				// PyTorch's worst float32 error per kind of value; errors of one tensor are luck,
				// the worst over all of them is what float32 can guarantee here.
				worst, count := map[string]float64{}, map[string]int{}
				for k, v := range err32 {
					kind, _, _ := strings.Cut(k, ".")
					worst[kind] = max(worst[kind], v)
					count[kind]++
				}
				for kind, n := range count {
					if n == 1 {
						worst[kind] *= 3 // one sample says little about the spread of float32 errors
					}
				}
				kindOf := func(name string) string { kind, _, _ := strings.Cut(name, "."); return kind }
				// vsExact: no tensor further from the exact result than PyTorch's worst.
				vsExact := func(name string, floor float64) float64 { return max(floor, worst[kindOf(name)], err32[name]) }
				// vsGolden: |ours − golden| ≤ |ours − exact| + |exact − golden|.
				vsGolden := func(name string, floor float64) float64 {
					return max(floor, worst[kindOf(name)]+err32[name])
				}

				want, _ := ref(t, f, "train.logits")
				check(t, "logits", got["logits"], want, vsGolden("logits", tolOutput))
				want, _ = ref(t, f, "train.loss")
				check(t, "loss", got["loss"], want, tolOutput)
				want, _ = ref(t, f, "train.grad.input")
				check(t, "grad input", got["grad.input"], want, vsGolden("grad.input", tolGrad))
				for _, name := range f.Names {
					if p, ok := strings.CutPrefix(name, "train.grad."); ok && p != "input" {
						want, _ := ref(t, f, name)
						check(t, "grad "+p, got["grad."+p], want, vsGolden("grad."+p, tolGrad))
					}
					if p, ok := strings.CutPrefix(name, "train.after."); ok {
						want, _ := ref(t, f, name)
						check(t, p+" after one training forward", got["param."+p], want, tolOutput)
					}
					if p, ok := strings.CutPrefix(name, "sgd1."); ok {
						// The update scales the gradient by the learning rate, so the gradient's
						// bound carries over.
						want, _ := ref(t, f, name)
						check(t, p+" after one SGD step", got["sgd1."+p], want, vsGolden("grad."+p, tolGrad))
					}
				}
				checkNorms(t, f, "train.grad_norms", got, func(p string) float64 { return vsGolden("norm."+p, tolGrad) })

				// On average over the stored tensors, this engine must be at least as accurate as
				// PyTorch's float32.
				var ours, theirs float64
				for _, name := range e.Names {
					if name == "grad_norms" {
						continue
					}
					want, _ := ref(t, e, name)
					floor := tolGrad
					if name == "logits" || name == "loss" {
						floor = tolOutput
					}
					check(t, "float64 "+name, got[name], want, vsExact(name, floor))
					ours += optest.RelErr(got[name], want)
					theirs += err32[name]
				}
				if ours > theirs {
					t.Errorf("mean error against float64: ours %.3g, PyTorch float32 %.3g", ours/float64(len(e.Names)-1), theirs/float64(len(e.Names)-1))
				} else {
					t.Logf("mean error against float64: ours %.3g, PyTorch float32 %.3g", ours/float64(len(e.Names)-1), theirs/float64(len(e.Names)-1))
				}
				checkNorms(t, e, "grad_norms", got, func(p string) float64 { return vsExact("norm."+p, tolGrad) })
			})

			t.Run("eval_backward", func(t *testing.T) {
				// Eval-mode gradients are well conditioned (batch norm is affine) once the ReLU
				// activation pattern is fixed, so they are compared with the exact (float64)
				// result of an independent PyTorch model (tools/torchref/chnet_ref.py, which first
				// reproduces the official outputs) at the exact pattern: see pinnedToExact.
				e, err := safetensors.ReadFile("testdata/eval_backward.safetensors")
				if err != nil {
					t.Fatal(err)
				}
				mv, ms := ref(t, f, "target")
				p := pinnedToExact(t, b, e)
				got := trainStep(t, p, factorized, xv, xs, mv, ms, false)
				if err := p.Done(); err != nil {
					t.Fatal(err)
				}
				for _, name := range e.Names {
					if name == "grad_norms" {
						continue
					}
					want, _ := ref(t, e, name)
					check(t, name, got[name], want, tolEval)
				}
				checkNorms(t, e, "grad_norms", got, func(string) float64 { return tolEval })
			})
		})
	}
}

// Training-mode batch norm over as few as 32 values per channel (layer3 at 4x4, batch 2) makes
// the golden training step ill-conditioned below the head: PyTorch's own float32 gradients lie
// up to 30% (one small tensor; 2.2% for the input gradient, 1.7% for gradient norms) from the
// float64 result, which tools/torchref/chnet_ref.py computes and records per tensor. The
// train_step subtest therefore bounds each tensor by PyTorch's worst float32 error of its kind
// (never looser than MANIFEST's tolerances), requires this engine to be on average at least as
// close to the float64 result as PyTorch's float32, and eval_backward checks every gradient
// against the float64 result at tolEval where the problem is well conditioned.

// pinnedToExact wraps b so that its ReLUs put every unit whose exact pre-activation lies within
// float32 rounding of zero on its exact side (optest.KinkPinner); the reference file lists those
// units, the shape of every ReLU call in forward order, and the band. A float32 forward pass
// lies up to 1.5e-6 (PyTorch's, relative to the largest |input| of each ReLU call) from the
// exact one, so a unit within 1e-5 of zero in those terms is ambiguous: on the golden input 56
// are, and one of them flips in practice: encode2.1.2.bn1's output at [1 89 10 14] is −3.0e-7
// exactly (activations of order 1); PyTorch's float32 and the CPU backend put it above zero,
// Vulkan below, and that one mask bit moves the input gradient by 0.7%. Summation order decides
// such units, so without pinning any kernel change could flip the test; with it every backend is
// compared with the exact gradients, and a listed unit farther than the band from its exact value
// is an error, not rounding.
func pinnedToExact(t *testing.T, b ops.Backend, e *safetensors.File) *optest.KinkPinner {
	t.Helper()
	var calls []struct {
		Shape  tensor.Shape `json:"shape"`
		MaxAbs float64      `json:"max_abs"`
	}
	var band float64
	var kinks []optest.Kink
	for key, v := range map[string]any{"relu_calls": &calls, "relu_band": &band, "relu_kinks": &kinks} {
		if err := json.Unmarshal([]byte(e.Metadata[key]), v); err != nil {
			t.Fatalf("eval_backward metadata %s: %v", key, err)
		}
	}
	rc := make([]optest.ReLUCall, len(calls))
	for i, c := range calls {
		rc[i] = optest.ReLUCall{Shape: c.Shape, Band: band * c.MaxAbs}
	}
	p, err := optest.NewKinkPinner(b, rc, kinks)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, u := range p.Flips {
			t.Logf("pinned across zero: %s", u)
		}
		t.Logf("%d ReLU calls; %d ambiguous units pinned to their exact side, %d of them across zero; largest deviation from the exact value %.2g of the band",
			len(rc), len(p.Pinned), len(p.Flips), p.Worst)
	})
	return p
}

// checkNorms compares every parameter gradient's L2 norm with the reference's float64 norms,
// listed in the order of the file's grad_norm_order metadata.
func checkNorms(t *testing.T, f *safetensors.File, key string, got map[string][]float32, tolOf func(name string) float64) {
	t.Helper()
	var order []string
	if err := json.Unmarshal([]byte(f.Metadata["grad_norm_order"]), &order); err != nil {
		t.Fatal(err)
	}
	norms, err := f.Tensors[key].Float64()
	if err != nil {
		t.Fatal(err)
	}
	if len(norms) != len(order) || len(order) != 221 {
		t.Fatalf("%d norms for %d names, want CHNet's 221 parameters", len(norms), len(order))
	}
	worst, worstName := 0.0, ""
	for i, name := range order {
		g := got["grad."+name]
		if g == nil {
			t.Errorf("no gradient for %s", name)
			continue
		}
		e := math.Abs(l2(g)-norms[i]) / max(norms[i], 1e-30)
		if tol := tolOf(name); e > tol {
			t.Errorf("gradient norm of %s off by %.3g (relative), more than %.3g", name, e, tol)
		}
		if e > worst {
			worst, worstName = e, name
		}
	}
	t.Logf("%d gradient norms checked; largest relative deviation %.2g (%s)", len(order), worst, worstName)
}

func l2(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

// trainStep loads the seed-0 model, runs a forward (training or eval mode) and backward of the
// official structure loss on the golden input, then one SGD step, and returns every result by
// name: logits, loss, grad.input, grad.<param>, param.<tensor> after the forward, sgd1.<param>.
func trainStep(t *testing.T, b ops.Backend, factorized bool, xv []float32, xs []int, mv []float32, ms []int, training bool) map[string][]float32 {
	m := seededModel(t, b, factorized)
	nn.SetTraining(m, training)
	x, err := ops.FromHost(b, xv, xs...)
	if err != nil {
		t.Fatal(err)
	}
	x.SetRequiresGrad(true)
	mask, err := ops.FromHost(b, mv, ms...)
	if err != nil {
		t.Fatal(err)
	}
	tp := ops.NewTape(b)
	defer tp.Release()
	logits := m.Forward(tp, x)
	loss := tp.StructureLoss(logits, mask, ops.StructureLossOfficial)
	tp.Keep(logits)
	if err := tp.Backward(loss); err != nil {
		t.Fatal(err)
	}
	out := map[string][]float32{
		"logits": download(t, b, logits), "loss": download(t, b, loss), "grad.input": download(t, b, x.Grad),
	}
	nn.Walk(m, "", func(name string, e nn.Entry) {
		p := *e.Ptr
		out["param."+name] = download(t, b, p)
		if p.Grad != nil {
			out["grad."+name] = download(t, b, p.Grad)
		}
	})
	step, err := trainSGD(b, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := step(); err != nil {
		t.Fatal(err)
	}
	nn.Walk(m, "", func(name string, e nn.Entry) { out["sgd1."+name] = download(t, b, *e.Ptr) })
	return out
}

// trainSGD returns one nesterov SGD step over m's parameters as the golden file made it
// (lr 0.05, momentum 0.9, weight decay 5e-4, zero momentum).
func trainSGD(b ops.Backend, m *Model) (func() error, error) {
	p := ops.SGDParams{LR: 0.05, Momentum: 0.9, WeightDecay: 5e-4, Nesterov: true}
	return func() error {
		for _, np := range nn.Params(m) {
			buf, err := ops.Zeros(b, np.Tensor.Shape()...)
			if err != nil {
				return err
			}
			if err := ops.SGDStep(b, np.Tensor, np.Tensor.Grad, buf, p); err != nil {
				return err
			}
		}
		return nil
	}, nil
}

func TestGoldenModelCPU(t *testing.T) { GoldenModel(t, cpu.New()) }
