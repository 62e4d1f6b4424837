package metrics

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkKvasirSize scores one 1920×1072 image (Kvasir-SEG's largest size) per iteration.
func BenchmarkKvasirSize(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	w, h := 1920, 1072
	p, g := randomPair(rng, w, h)
	for _, c := range []struct {
		name string
		conv Convention
		opts []Option
	}{
		{"pysod", PySOD, nil}, {"matlab", MATLAB, nil}, {"chnet", CHNet, nil}, {"pysod+extras", PySOD, []Option{WithExtras()}},
	} {
		b.Run(c.name, func(b *testing.B) {
			ev, _ := New(c.conv, c.opts...)
			for b.Loop() {
				if err := ev.Add("k", p, g, w, h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
