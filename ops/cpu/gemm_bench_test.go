package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkSGEMM times C = A·B for square row-major matrices on all workers with the kernels
// this build and CPU pick, and reports GFLOP/s (2n³ floating-point operations per product).
func BenchmarkSGEMM(b *testing.B) {
	for _, n := range []int{256, 1024} {
		rng := rand.New(rand.NewPCG(3, 4))
		a, bm, c := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
		for i := range a {
			a[i], bm[i] = rng.Float32(), rng.Float32()
		}
		be := New()
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				be.gemm(false, false, n, n, n, 1, a, n, bm, n, 0, c, n)
			}
			b.ReportMetric(2*float64(n*n*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/op")
		})
	}
}
