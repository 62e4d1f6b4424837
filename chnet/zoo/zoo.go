// Package zoo builds the segmentation networks chnet can train by name, from a Spec that is
// stored in every checkpoint, so `chnet test` and `chnet predict` rebuild the right network.
package zoo

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/chnet/chnet/chnet"
	"github.com/chnet/chnet/nn"
)

// Spec names an architecture and its options.
type Spec struct {
	Arch string `json:"arch"` // "chnet", "fcn", …
	// Backbone is the Res2Net-50 variant: "v1" (CHNet's released code) or "v1b".
	Backbone string `json:"backbone"`
	// CHNet options (ignored by other architectures).
	HeadWidth  int  `json:"head_width,omitempty"`
	HeadKernel int  `json:"head_kernel,omitempty"`
	Factorized bool `json:"factorized,omitempty"`
	// InputSize is the size the network was trained at; test and predict resize to it.
	InputSize int `json:"input_size,omitempty"`
}

// builder makes one architecture.
type builder func(init nn.Init, s Spec) (nn.Segmenter, error)

var builders = map[string]builder{
	"chnet": func(init nn.Init, s Spec) (nn.Segmenter, error) {
		return chnet.New(init, chnet.Config{Backbone: nn.Res2NetVariant(s.Backbone), HeadWidth: s.HeadWidth, HeadKernel: s.HeadKernel, Factorized: s.Factorized})
	},
	"fcn": func(init nn.Init, s Spec) (nn.Segmenter, error) {
		return chnet.NewFCN(init, nn.Res2NetVariant(s.Backbone))
	},
}

// Register adds an architecture; packages of baselines call it from init.
func Register(name string, b func(init nn.Init, s Spec) (nn.Segmenter, error)) {
	builders[name] = b
}

// Archs lists the architectures that can be built.
func Archs() []string {
	names := make([]string, 0, len(builders))
	for n := range builders {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Released is CHNet as in the official code.
func Released() Spec {
	c := chnet.Released()
	return Spec{Arch: "chnet", Backbone: string(c.Backbone), HeadWidth: c.HeadWidth, HeadKernel: c.HeadKernel, Factorized: c.Factorized}
}

// Build constructs the network s describes.
func Build(init nn.Init, s Spec) (nn.Segmenter, error) {
	b, ok := builders[s.Arch]
	if !ok {
		return nil, fmt.Errorf("unknown architecture %q (have %v)", s.Arch, Archs())
	}
	if s.Backbone != string(nn.V1) && s.Backbone != string(nn.V1b) {
		return nil, fmt.Errorf("backbone must be v1 or v1b, got %q", s.Backbone)
	}
	return b(init, s)
}

// Parse reads a Spec from a checkpoint's model_config metadata.
func Parse(raw []byte) (Spec, error) {
	var s Spec
	if err := json.Unmarshal(raw, &s); err != nil {
		return s, fmt.Errorf("model config: %w", err)
	}
	if err := s.Validate(); err != nil {
		return s, fmt.Errorf("model config: %w", err)
	}
	return s, nil
}

// MaxHeadWidth bounds a Spec's head width. A checkpoint's metadata is input: a head width of a
// few million would have the network's initialisation allocate gigabytes before its tensors
// are compared with the file's. The paper's widths are 32 and 128. (InputSize is only a default
// that callers check against their own limits, and --size overrides.)
const MaxHeadWidth = 4096

// Validate checks what Build would take: a known architecture and backbone, and numbers within
// their bounds (zero where an architecture has no use for one).
func (s Spec) Validate() error {
	if _, ok := builders[s.Arch]; !ok {
		return fmt.Errorf("unknown architecture %q (have %v)", s.Arch, Archs())
	}
	switch {
	case s.Backbone != string(nn.V1) && s.Backbone != string(nn.V1b):
		return fmt.Errorf("backbone must be v1 or v1b, got %q", s.Backbone)
	case s.HeadWidth < 0 || s.HeadWidth > MaxHeadWidth:
		return fmt.Errorf("head width %d outside 0..%d", s.HeadWidth, MaxHeadWidth)
	case s.HeadKernel != 0 && s.HeadKernel != 1 && s.HeadKernel != 3:
		return fmt.Errorf("head kernel must be 1 or 3, got %d", s.HeadKernel)
	case s.InputSize < 0:
		return fmt.Errorf("negative input size %d", s.InputSize)
	}
	return nil
}

// Backbone returns the Res2Net inside a network built here, for freezing or re-initialising it
// (Section 4 of the paper), or nil if the network has none.
func Backbone(m nn.Segmenter) *nn.Res2Net {
	switch v := m.(type) {
	case *chnet.Model:
		return v.Backbone
	case *chnet.FCN:
		return v.Backbone
	case interface{ Res2Net() *nn.Res2Net }:
		return v.Res2Net()
	}
	return nil
}
