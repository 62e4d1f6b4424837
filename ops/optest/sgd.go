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

// SGDStepper applies one SGD step with learning rate lr to param, given its gradient and
// momentum buffer (created zero by the caller); GoldenSGD checks one backend kernel or a whole
// optimizer through it.
type SGDStepper func(param, grad, momentum *tensorT, p ops.SGDParams) error

// GoldenSGD runs every case of sgd_cases.safetensors through step on b and compares, after every
// step, the change the steps made to the parameter and the momentum buffer with
// torch.optim.SGD's (float64). Float32 arithmetic leaves the change off by a few roundings of the
// step (1e-6 relative) plus the rounding of the updated parameter itself, half a unit in the last
// place of its largest value per step; dropping weight decay, nesterov or momentum, or applying
// the learning rate to the buffer, changes some result by 1e-3 or more.
func GoldenSGD(t *testing.T, b ops.Backend, step SGDStepper) {
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
			param := upload(t, b, p0, shape)
			buf, err := ops.Zeros(b, shape...)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Release(param.Storage())
			defer b.Release(buf.Storage())
			var maxP float64
			for _, v := range p0 {
				maxP = max(maxP, math.Abs(float64(v)))
			}
			for k, lr := range sc.LRs {
				g := c.upload(b, fmt.Sprintf("%s.grad%d", sc.Name, k+1))
				err := step(param, g, buf, ops.SGDParams{LR: lr, Momentum: sc.Momentum, WeightDecay: sc.WeightDecay, Nesterov: sc.Nesterov})
				b.Release(g.Storage())
				if err != nil {
					t.Fatal(err)
				}
				got := download(t, b, param)
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
					expectClose(t, fmt.Sprintf("momentum buffer after step %d", k+1), download(t, b, buf), want, 1e-6)
				}
			}
		})
	}
}
