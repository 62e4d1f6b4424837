package bench

import (
	"fmt"

	"github.com/chnet/chnet/chnet"
	"github.com/chnet/chnet/chnet/baselines"
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
	// Build makes the model for size x size inputs; only TransUNet depends on the size (its
	// position embedding has one entry per H/16 x W/16 token).
	Build func(init nn.Init, size int) (nn.Segmenter, error)
}

// backboneOnly runs Res2Net through layer3: Table 5's "Backbone" row.
type backboneOnly struct{ *nn.Res2Net }

func (b backboneOnly) Forward(t *ops.Tape, x *tensor.Tensor) *tensor.Tensor {
	f := b.Features(t, x)
	return f[len(f)-1]
}

// CostModels lists Table 5's models that exist in chnet, with the paper's figures where the
// paper gives them. CHNet's paper row is reproduced by v1b, head 128, at 256x256 under thop's
// old rules (reference.md §5). The baselines are chnet/baselines' defaults (v1b backbone); each
// constructor's doc comment explains its configuration and its gap to the paper's row.
func CostModels() []CostModel {
	chnetModel := func(v nn.Res2NetVariant, width int) func(nn.Init, int) (nn.Segmenter, error) {
		return func(init nn.Init, _ int) (nn.Segmenter, error) {
			// Table 5 counts the module structure the official code runs: the literal head.
			return chnet.New(init, chnet.Config{Backbone: v, HeadWidth: width, HeadKernel: 1})
		}
	}
	backbone := func(v nn.Res2NetVariant) func(nn.Init, int) (nn.Segmenter, error) {
		return func(init nn.Init, _ int) (nn.Segmenter, error) {
			r, err := nn.NewRes2Net(init, nn.Res2NetConfig{Variant: v, Stages: 3})
			return backboneOnly{r}, err
		}
	}
	return []CostModel{
		{"backbone (Res2Net-50 v1, to layer3)", nil, backbone(nn.V1)},
		{"backbone (Res2Net-50 v1b, to layer3)", &PaperCost{4.8, 8.7}, backbone(nn.V1b)},
		{"FCN-32s baseline (v1)", nil, func(init nn.Init, _ int) (nn.Segmenter, error) { return chnet.NewFCN(init, nn.V1) }},
		{"U-Net (v1b)", &PaperCost{17.5, 17.4}, func(init nn.Init, _ int) (nn.Segmenter, error) {
			return baselines.NewUNet(init, baselines.DefaultUNet())
		}},
		{"Attention U-Net (v1b)", &PaperCost{9.7, 19.2}, func(init nn.Init, _ int) (nn.Segmenter, error) {
			return baselines.NewAttUNet(init, baselines.DefaultAttUNet())
		}},
		{"UTNet (v1b)", &PaperCost{27.1, 12.6}, func(init nn.Init, _ int) (nn.Segmenter, error) {
			return baselines.NewUTNet(init, baselines.DefaultUTNet())
		}},
		{"TransUNet (v1b, ViT-B/16)", &PaperCost{24.7, 34.0}, func(init nn.Init, size int) (nn.Segmenter, error) {
			return baselines.NewTransUNet(init, baselines.DefaultTransUNet(size))
		}},
		{"CHNet v1, head 32 (released)", nil, chnetModel(nn.V1, 32)},
		{"CHNet v1, head 128", nil, chnetModel(nn.V1, 128)},
		{"CHNet v1b, head 32", nil, chnetModel(nn.V1b, 32)},
		{"CHNet v1b, head 128 (paper)", &PaperCost{7.1, 8.8}, chnetModel(nn.V1b, 128)},
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
		m, err := cm.Build(nn.Init{B: t.Backend(), RNG: tensor.NewRNG(0, 0)}, size)
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
