package vk

import (
	"errors"

	"github.com/chnet/chnet/internal/vkrt"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

var errTODO = errors.New("not implemented yet")

type tileSet struct{}
type tableKey struct{}

func chooseTiles(vkrt.DeviceInfo) tileSet { return tileSet{} }

func (b *Backend) Sum(dst, x *tensor.Tensor, axes ops.Axes) error { return errTODO }
func (b *Backend) Conv2D(dst, x, w, bias *tensor.Tensor, p ops.Conv2DParams) error {
	return errTODO
}
func (b *Backend) Conv2DGradInput(dst, gy, w *tensor.Tensor, p ops.Conv2DParams) error {
	return errTODO
}
func (b *Backend) Conv2DGradWeight(dst, x, gy *tensor.Tensor, p ops.Conv2DParams) error {
	return errTODO
}
func (b *Backend) BatchNormTrain(dst, mean, invStd, x, gamma, beta, runMean, runVar *tensor.Tensor, p ops.BatchNormParams) error {
	return errTODO
}
func (b *Backend) BatchNormEval(dst, x, gamma, beta, runMean, runVar *tensor.Tensor, p ops.BatchNormParams) error {
	return errTODO
}
func (b *Backend) BatchNormGrad(gx, gGamma, gBeta, gy, x, gamma, mean, invStd *tensor.Tensor, batchStats bool) error {
	return errTODO
}
func (b *Backend) MaxPool2D(dst, x *tensor.Tensor, p ops.PoolParams) error        { return errTODO }
func (b *Backend) MaxPool2DGrad(gx, gy, x *tensor.Tensor, p ops.PoolParams) error { return errTODO }
func (b *Backend) AvgPool2D(dst, x *tensor.Tensor, p ops.PoolParams) error        { return errTODO }
func (b *Backend) AvgPool2DGrad(gx, gy *tensor.Tensor, p ops.PoolParams) error    { return errTODO }
func (b *Backend) ResizeBilinear(dst, x *tensor.Tensor, alignCorners bool) error  { return errTODO }
func (b *Backend) ResizeBilinearGrad(gx, gy *tensor.Tensor, alignCorners bool) error {
	return errTODO
}
func (b *Backend) StructureLoss(dst, x, mask *tensor.Tensor, form ops.StructureLossForm) error {
	return errTODO
}
func (b *Backend) StructureLossGrad(gx, gLoss, x, mask *tensor.Tensor, form ops.StructureLossForm) error {
	return errTODO
}
func (b *Backend) SGDStep(param, grad, momentum *tensor.Tensor, p ops.SGDParams) error {
	return errTODO
}
