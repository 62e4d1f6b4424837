package optest

import (
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// Res2NetCoreOptions selects how Res2NetCore writes Res2Net's block core.
type Res2NetCoreOptions struct {
	// Stage blocks stride by 2, do not add the previous branch's output, and average-pool the
	// last split.
	Stage bool
	// Copy builds the output with a plain Concat instead of writing each branch into its slice
	// of the concatenation (NewConcat/Into).
	Copy bool
	// Early copies the untouched last split of a non-stage block into the concatenation as soon
	// as it exists (ConcatOut.CopyEarly).
	Early bool
	// Act is each branch's activation after its convolution.
	Act func(*ops.Tape, *tensor.Tensor) *tensor.Tensor
}

// Res2NetCore is Res2Net's hierarchical split–branches–concat on x (4 splits of 2 channels)
// with the 3x3 weights ws, the model of nn.Bottle2neck that the op-level tests (gradient checks,
// the copy counts of the in-place concatenation) run without batch norms. It returns the
// concatenation; the residual is the caller's.
func Res2NetCore(t *ops.Tape, x *tensor.Tensor, ws [3]*tensor.Tensor, o Res2NetCoreOptions) *tensor.Tensor {
	stride := 1
	if o.Stage {
		stride = 2
	}
	spx := t.Split(x, 2, 2, 2, 2)
	if spx == nil {
		return nil
	}
	parts := make([]*tensor.Tensor, 4)
	var cat *ops.ConcatOut // nil: Into just runs its op
	var sp *tensor.Tensor
	for i := 0; i < 3; i++ {
		if i == 0 || o.Stage {
			sp = spx[i]
		} else {
			sp = t.Add(sp, spx[i])
		}
		h := t.Conv2D(sp, ws[i], nil, ops.Conv2DParams{Stride: stride, Pad: 1})
		if i == 0 && !o.Copy {
			cat = t.NewConcat(h, 2, 2, 2, 2)
			if o.Early && !o.Stage {
				cat.CopyEarly(3, spx[3])
			}
		}
		sp = cat.Into(i, func() *tensor.Tensor { return o.Act(t, h) })
		parts[i] = sp
	}
	parts[3] = spx[3]
	if o.Stage {
		parts[3] = cat.Into(3, func() *tensor.Tensor {
			return t.AvgPool2D(spx[3], ops.PoolParams{Kernel: 3, Stride: 2, Pad: 1, CountIncludePad: true})
		})
	}
	return t.Concat(parts...)
}
