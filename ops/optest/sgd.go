package optest

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"testing"

	"github.com/chnet/chnet/internal/safetensors"
	"github.com/chnet/chnet/ops"
)

// sgdCases holds torch.optim.SGD's own results for three steps of several configurations,
// written by tools/torchref/sgd_cases.py.
//
//go:embed testdata/sgd_cases.safetensors
var sgdCases []byte

// SGDCase is one configuration of sgd_cases.safetensors: three steps from a zero momentum
// buffer, each with its own gradient and learning rate.
type SGDCase struct {
	Name        string    `json:"name"`
	LRs         []float32 `json:"lrs"`
	Momentum    float32   `json:"momentum"`
	WeightDecay float32   `json:"weight_decay"`
	Nesterov    bool      `json:"nesterov"`
}

// SGDUnderTest is one parameter under an SGD implementation — a backend's kernel
// (KernelSGD) or a whole optimizer — started from param0 with a zero momentum buffer. Its opener
// gets the case's hyper-parameters (with the first step's learning rate); Step gets each step's.
type SGDUnderTest interface {
	// Step applies one update with gradient grad (a tensor of the backend, which the caller
	// releases after the step) and hyper-parameters p.
	Step(grad *tensorT, p ops.SGDParams) error
	Param() ([]float32, error)
	// Momentum is the momentum buffer; only read when the case has momentum.
	Momentum() ([]float32, error)
	Close()
}

// KernelSGD opens the backend's SGD kernel (ops.SGDStep) on one uploaded parameter.
func KernelSGD(b ops.Backend) func(param0 []float32, shape []int, p ops.SGDParams) (SGDUnderTest, error) {
	return func(param0 []float32, shape []int, _ ops.SGDParams) (SGDUnderTest, error) {
		param, err := ops.FromHost(b, param0, shape...)
		if err != nil {
			return nil, err
		}
		buf, err := ops.Zeros(b, shape...)
		if err != nil {
			b.Release(param.Storage())
			return nil, err
		}
		return &kernelSGD{b, param, buf}, nil
	}
}

type kernelSGD struct {
	b          ops.Backend
	param, buf *tensorT
}

func (k *kernelSGD) Step(g *tensorT, p ops.SGDParams) error {
	return ops.SGDStep(k.b, k.param, g, k.buf, p)
}
func (k *kernelSGD) Param() ([]float32, error)    { return ops.ToHost(k.b, k.param) }
func (k *kernelSGD) Momentum() ([]float32, error) { return ops.ToHost(k.b, k.buf) }
func (k *kernelSGD) Close()                       { k.b.Release(k.param.Storage()); k.b.Release(k.buf.Storage()) }

// GoldenSGD runs every case of sgd_cases.safetensors through the implementation open makes on b
// and compares, after every step, the change the steps made to the parameter and the momentum
// buffer with torch.optim.SGD's (float64). Float32 arithmetic leaves the change off by a few
// roundings of the step (1e-6 relative) plus the rounding of the updated parameter itself, half a
// unit in the last place of its largest value per step; dropping weight decay, nesterov or
// momentum, or applying the learning rate to the buffer, changes some result by 1e-3 or more.
func GoldenSGD(t *testing.T, b ops.Backend, open func(param0 []float32, shape []int, p ops.SGDParams) (SGDUnderTest, error)) {
	f, err := safetensors.Parse(sgdCases)
	if err != nil {
		t.Fatal(err)
	}
	var list []SGDCase
	if err := json.Unmarshal([]byte(f.Metadata["cases"]), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) == 0 {
		t.Fatal("no SGD cases")
	}
	for _, sc := range list {
		t.Run(sc.Name, func(t *testing.T) {
			c := cases{t, f}
			p0, shape := c.get(sc.Name + ".param0")
			hp := func(lr float32) ops.SGDParams {
				return ops.SGDParams{LR: lr, Momentum: sc.Momentum, WeightDecay: sc.WeightDecay, Nesterov: sc.Nesterov}
			}
			u, err := open(p0, shape, hp(sc.LRs[0]))
			if err != nil {
				t.Fatal(err)
			}
			defer u.Close()
			var maxP float64
			for _, v := range p0 {
				maxP = max(maxP, math.Abs(float64(v)))
			}
			for k, lr := range sc.LRs {
				g := c.upload(b, fmt.Sprintf("%s.grad%d", sc.Name, k+1))
				err := u.Step(g, hp(lr))
				b.Release(g.Storage())
				if err != nil {
					t.Fatal(err)
				}
				got, err := u.Param()
				if err != nil {
					t.Fatal(err)
				}
				delta := make([]float32, len(got))
				for i := range got {
					delta[i] = float32(float64(got[i]) - float64(p0[i]))
				}
				want, _ := c.get(fmt.Sprintf("%s.delta%d", sc.Name, k+1))
				var maxD float64
				for _, v := range want {
					maxD = max(maxD, math.Abs(float64(v)))
				}
				tol := 1e-6 + float64(k+1)*math.Ldexp(maxP, -24)/maxD
				expectClose(t, fmt.Sprintf("change after step %d", k+1), delta, want, tol)
				if sc.Momentum != 0 {
					want, _ := c.get(fmt.Sprintf("%s.momentum%d", sc.Name, k+1))
					m, err := u.Momentum()
					if err != nil {
						t.Fatal(err)
					}
					expectClose(t, fmt.Sprintf("momentum buffer after step %d", k+1), m, want, 1e-6)
				}
			}
		})
	}
}
