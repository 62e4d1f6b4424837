package vk

import (
	"errors"

	"github.com/chnet/chnet/internal/vkrt"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/tensor"
)

var errTODO = errors.New("not implemented yet")

type tileSet struct{}

func chooseTiles(vkrt.DeviceInfo) tileSet { return tileSet{} }

func (b *Backend) Conv2D(dst, x, w, bias *tensor.Tensor, p ops.Conv2DParams) error {
	return errTODO
}
func (b *Backend) Conv2DGradInput(dst, gy, w *tensor.Tensor, p ops.Conv2DParams) error {
	return errTODO
}
func (b *Backend) Conv2DGradWeight(dst, x, gy *tensor.Tensor, p ops.Conv2DParams) error {
	return errTODO
}
