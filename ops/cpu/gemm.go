package cpu

// gemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices, where op(A) is m×k and
// op(B) is k×n; op transposes when the flag is set. lda, ldb, ldc are row strides. With beta 0
// C's old contents are not read. Work is split over the backend's workers.
func (b *Backend) gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, bm []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	// The kernel reads B row by row; pack a transposed B once.
	if transB {
		packed := make([]float32, k*n)
		for j := 0; j < n; j++ {
			row := bm[j*ldb : j*ldb+k]
			for p, v := range row {
				packed[p*n+j] = v
			}
		}
		bm, ldb = packed, n
	}
	rows := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			ci := c[i*ldc : i*ldc+n]
			if beta == 0 {
				clear(ci)
			} else if beta != 1 {
				for j := range ci {
					ci[j] *= beta
				}
			}
			for p := 0; p < k; p++ {
				var av float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				av *= alpha
				if av == 0 {
					continue
				}
				bp := bm[p*ldb : p*ldb+n]
				for j, bv := range bp {
					ci[j] += av * bv
				}
			}
		}
	}
	parallelFor(b.workers, m, 1, rows)
}
