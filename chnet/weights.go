package chnet

import (
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
