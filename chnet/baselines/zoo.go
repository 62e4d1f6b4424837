package baselines

import (
	"github.com/chnet/chnet/chnet/zoo"
	"github.com/chnet/chnet/nn"
)

// The baselines are trainable by name (chnet train --arch unet …) once this package is linked.
func init() {
	zoo.Register("unet", func(init nn.Init, s zoo.Spec) (nn.Segmenter, error) {
		c := DefaultUNet()
		c.Backbone = nn.Res2NetVariant(s.Backbone)
		return NewUNet(init, c)
	})
	zoo.Register("attunet", func(init nn.Init, s zoo.Spec) (nn.Segmenter, error) {
		c := DefaultAttUNet()
		c.Backbone = nn.Res2NetVariant(s.Backbone)
		return NewAttUNet(init, c)
	})
	zoo.Register("utnet", func(init nn.Init, s zoo.Spec) (nn.Segmenter, error) {
		c := DefaultUTNet()
		c.Backbone = nn.Res2NetVariant(s.Backbone)
		return NewUTNet(init, c)
	})
	zoo.Register("transunet", func(init nn.Init, s zoo.Spec) (nn.Segmenter, error) {
		c := DefaultTransUNet(s.InputSize) // the position grid follows the training size
		c.Backbone = nn.Res2NetVariant(s.Backbone)
		return NewTransUNet(init, c)
	})
}
