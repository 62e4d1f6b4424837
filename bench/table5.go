package bench

import (
	"fmt"

	"github.com/chnet/chnet/chnet"
	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

// PaperCost is a row of the paper's Table 5: "GFLOPs" (thop multiply-adds) and parameters in M.
type PaperCost struct {
	GFLOPs, MParams float64
}

// CostModel is a model Table 5 reports (or a variant of one), buildable on any backend.
type CostModel struct {
	Name  string
	Paper *PaperCost
	Build func(init nn.Init) (nn.Segmenter, error)
}

// backboneOnly runs Res2Net through layer3: Table 5's "Backbone" row.
type backboneOnly struct{ *nn.Res2Net }

func (b backboneOnly) Forward(t *ops.Tape, x *tensor.Tensor) *tensor.Tensor {
	f := b.Features(t, x)
	return f[len(f)-1]
}

// CostModels lists Table 5's models that exist in chnet, with the paper's figures where the
// paper gives them. CHNet's paper row is reproduced by v1b, head 128, at 256x256 under thop's
// old rules (reference.md §5).
func CostModels() []CostModel {
	chnetModel := func(v nn.Res2NetVariant, width int) func(nn.Init) (nn.Segmenter, error) {
		return func(init nn.Init) (nn.Segmenter, error) {
			// Table 5 counts the module structure the official code runs: the literal head.
			return chnet.New(init, chnet.Config{Backbone: v, HeadWidth: width, HeadKernel: 1})
		}
	}
	backbone := func(v nn.Res2NetVariant) func(nn.Init) (nn.Segmenter, error) {
		return func(init nn.Init) (nn.Segmenter, error) {
			r, err := nn.NewRes2Net(init, nn.Res2NetConfig{Variant: v, Stages: 3})
			return backboneOnly{r}, err
		}
	}
	paperCHNet := &PaperCost{7.1, 8.8}
	paperBackbone := &PaperCost{4.8, 8.7}
	return []CostModel{
		{"backbone (Res2Net-50 v1, to layer3)", nil, backbone(nn.V1)},
		{"backbone (Res2Net-50 v1b, to layer3)", paperBackbone, backbone(nn.V1b)},
		{"FCN-32s baseline (v1)", nil, func(init nn.Init) (nn.Segmenter, error) { return chnet.NewFCN(init, nn.V1) }},
		{"CHNet v1, head 32 (released)", nil, chnetModel(nn.V1, 32)},
		{"CHNet v1, head 128", nil, chnetModel(nn.V1, 128)},
		{"CHNet v1b, head 32", nil, chnetModel(nn.V1b, 32)},
		{"CHNet v1b, head 128 (paper)", paperCHNet, chnetModel(nn.V1b, 128)},
	}
}

// CostRow is one model's measured cost at one input size.
type CostRow struct {
	Model                  string
	Size                   int
	Params                 int
	MACs, ThopNew, ThopOld int64
	Paper                  *PaperCost
	ByPart                 []OpCount
}

// MeasureCost counts a model's parameters and operations for one 1x3xSxS input.
func MeasureCost(cm CostModel, size int) (CostRow, error) {
	var params int
	c, err := Profile([]int{1, 3, size, size}, func(t *ops.Tape, x *tensor.Tensor) *tensor.Tensor {
		m, err := cm.Build(nn.Init{B: t.Backend(), RNG: tensor.NewRNG(0, 0)})
		if err != nil {
			t.Fail(err)
			return nil
		}
		params = nn.CountParams(m)
		nn.SetTraining(m, false)
		return m.Forward(t, x)
	})
	if err != nil {
		return CostRow{}, fmt.Errorf("%s at %d: %w", cm.Name, size, err)
	}
	tot := c.Totals("")
	return CostRow{Model: cm.Name, Size: size, Params: params, MACs: tot.MACs, ThopNew: tot.ThopNew, ThopOld: tot.ThopOld, Paper: cm.Paper, ByPart: c.ByScope(1)}, nil
}
