package ops

import "sync/atomic"

// Inference folds each batch norm into the convolution before it (nn.ConvBN, Conv2DAct). The
// folded weights are computed once and cached, so something must say when the tensors they come
// from change: every in-place writer of parameters and batch-norm statistics calls
// ParamsWritten, and a cached fold is valid only at the version it was made at.

var paramVersion atomic.Uint64

// ParamsWritten records that parameters or batch-norm running statistics may have changed in
// place: SGD steps, training-mode batch norm and state loading call it; code that writes a
// model's tensors another way (Backend.Upload into a weight) must call it too.
func ParamsWritten() { paramVersion.Add(1) }

// ParamVersion counts ParamsWritten calls.
func ParamVersion() uint64 { return paramVersion.Load() }

// SetFoldBatchNorm turns batch-norm folding in inference off (false) or back on for this tape;
// it is on by default and only ever applies to no-grad tapes with batch norms in eval mode.
// Counting FLOPs turns it off, since thop counts batch norms as separate layers.
func (t *Tape) SetFoldBatchNorm(v bool) { t.noFold = !v }

// FoldsBatchNorm reports whether eval-mode batch norms on this tape run folded into the
// convolution before them: a no-grad tape whose folding is on.
func (t *Tape) FoldsBatchNorm() bool { return t.noGrad && !t.noFold }

// Device is the backend holding the tape's tensors: Backend itself, or the real backend under a
// liveness plan's tracer. Work that must not appear in a plan's kernel sequence (computing
// cached folded weights) runs there.
func (t *Tape) Device() Backend {
	b := t.b
	for {
		tr, ok := b.(*tracer)
		if !ok {
			return b
		}
		b = tr.inner
	}
}
