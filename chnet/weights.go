package chnet

import (
	"fmt"

	"github.com/chnet/chnet/nn"
	"github.com/chnet/chnet/ops"
	"strings"
)

// OfficialName maps a key of a Res2Net ImageNet state dict (conv1.*, bn1.*, layer1-3.*) to the
// official CHNet name of the same tensor (reference.md §1.1), or "" for keys CHNet does not use
// (layer4, fc). The v1b deep stem's Sequential indices carry over (conv1.3.weight →
// encode1.0.3.weight).
func OfficialName(imagenetKey string) string {
	for _, r := range []struct{ from, to string }{
		{"conv1.", "encode1.0."},
		{"bn1.", "encode1.1."},
		{"layer1.", "encode2.1."},
		{"layer2.", "encode3."},
		{"layer3.", "encode4."},
	} {
		if rest, ok := strings.CutPrefix(imagenetKey, r.from); ok {
			return r.to + rest
		}
	}
	return ""
}

// ImageNetName is the inverse of OfficialName for backbone keys; head keys give "".
func ImageNetName(official string) string {
	for _, r := range []struct{ from, to string }{
		{"encode1.0.", "conv1."},
		{"encode1.1.", "bn1."},
		{"encode2.1.", "layer1."},
		{"encode3.", "layer2."},
		{"encode4.", "layer3."},
	} {
		if rest, ok := strings.CutPrefix(official, r.from); ok {
			return r.to + rest
		}
	}
	return ""
}

// LoadState loads weights into m from a state dict in any of the naming schemes chnet meets:
// an official CHNet checkpoint (encode1…, tf…, classifier…), a Res2Net ImageNet file
// (conv1, bn1, layer1-4, fc: the backbone only, layer4 and fc skipped), either one saved from
// torch.nn.DataParallel ("module." prefixes). A full CHNet state must match exactly; an ImageNet
// state must cover the whole backbone.
func (m *Model) LoadState(b ops.Backend, st *nn.State) (nn.LoadReport, error) {
	strip := func(name string) string { return strings.TrimPrefix(name, "module.") }
	official := false
	for name := range st.Tensors {
		if strings.HasPrefix(strip(name), "encode1.") {
			official = true
			break
		}
	}
	if official {
		return nn.LoadState(b, m, st, nn.LoadOptions{Rename: strip})
	}
	rep, err := nn.LoadState(b, m, st, nn.LoadOptions{
		Rename:           func(n string) string { return OfficialName(strip(n)) },
		AllowMissing:     true,
		IgnoreUnexpected: false,
	})
	if err != nil {
		return rep, err
	}
	for _, name := range rep.Missing {
		if ImageNetName(name) != "" {
			return rep, fmt.Errorf("ImageNet state lacks backbone tensor %s (%s)", ImageNetName(name), name)
		}
	}
	if len(rep.Loaded) == 0 {
		return rep, fmt.Errorf("state matches no CHNet or Res2Net tensor names")
	}
	return rep, nil
}
