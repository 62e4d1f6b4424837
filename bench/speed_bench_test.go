package bench

import (
	"fmt"
	"testing"

	"github.com/chnet/chnet/chnet/zoo"
	"github.com/chnet/chnet/ops/cpu"
)

// BenchmarkCHNetCPU times the released CHNet on the CPU backend as `chnet bench speed` does
// (one op per b.N is one inference or one training step), for profiling with -cpuprofile:
//
//	go test -run '^$' -bench 'CHNetCPU/infer_b1_352' -benchtime 5x -cpuprofile cpu.out ./bench
func BenchmarkCHNetCPU(b *testing.B) {
	for _, c := range []struct {
		train       bool
		batch, size int
	}{
		{false, 1, 352}, {false, 16, 352}, {true, 16, 176}, {true, 16, 352},
	} {
		mode := "infer"
		if c.train {
			mode = "train"
		}
		b.Run(fmt.Sprintf("%s_b%d_%d", mode, c.batch, c.size), func(b *testing.B) {
			be := cpu.New()
			w, err := newWorkload(be, zoo.Released(), c.batch, c.size, c.train)
			if err != nil {
				b.Fatal(err)
			}
			defer w.release()
			if err := w.step(); err != nil { // warm-up: workspaces, first-touch pages
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := w.step(); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.drain(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(c.batch)*float64(b.N)/b.Elapsed().Seconds(), "img/s")
		})
	}
}
