package zoo

import (
	"encoding/json"
	"testing"

	"github.com/chnet/chnet/internal/badinput"
)

// FuzzParse: a checkpoint's model_config decides what network test and predict build. Whatever
// it holds, Parse never panics, and what it accepts is within the bounds Build can take without
// allocating more than a real network's weights.
func FuzzParse(f *testing.F) {
	var seeds [][]byte
	for _, s := range []Spec{
		{Arch: "chnet", Backbone: "v1", HeadWidth: 32, HeadKernel: 1, Factorized: true, InputSize: 352},
		{Arch: "chnet", Backbone: "v1b", HeadWidth: 128, HeadKernel: 3},
		{Arch: "unet", Backbone: "v1"},
		{Arch: "chnet", Backbone: "v1", HeadWidth: 5000000, HeadKernel: 1},
		{Arch: "chnet", Backbone: "v1", HeadWidth: 32, HeadKernel: 1, InputSize: 100000},
		{Arch: "resnet", Backbone: "v2"},
	} {
		b, _ := json.Marshal(s)
		seeds = append(seeds, b)
	}
	seeds = append(seeds, []byte(`{"arch":"chnet","head_width":-1}`), []byte(`null`), []byte(`{"arch":1}`))
	badinput.Corpus(f, "FuzzParse", seeds)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			return
		}
		if _, ok := builders[s.Arch]; !ok || s.HeadWidth < 0 || s.HeadWidth > MaxHeadWidth || s.InputSize < 0 {
			t.Fatalf("accepted %+v", s)
		}
	})
}
