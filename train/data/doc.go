// Package data turns image/mask folders into host float32 batches for training, and images into
// inputs for prediction, the way the official CHNet code does (reference.md §1.2–1.3).
//
// Per training sample, in the official order:
//
//  1. decode the image as 8-bit RGB and the mask as binary (foreground: grey ≥ 128);
//  2. resize both to the base size 352×352 with OpenCV INTER_LINEAR on float data (the mask,
//     as 0/1 floats, becomes soft at edges and stays soft, as in the official training);
//  3. normalise with the mean/std (ImageNet by default; the training script's as an option);
//  4. flip horizontally with p = 0.5;
//  5. rotate by θ uniform in [−10°, 10°) about the centre, as getRotationMatrix2D + warpAffine
//     (bilinear, constant 0 border in normalised space, mask border 0);
//  6. per batch, draw one size from {224, 256, 288, 320, 352} and resize every sample to it.
//
// Resize and WarpAffine are bit-identical to cv2 (4.6) on float32 data; testdata/ holds the
// fixtures and the script that made them.
//
// Where chnet differs from the official code, on purpose:
//   - masks are binarised at decode time; the official code trains on mask/255 of the raw grey
//     values, JPEG noise included (Kvasir masks carry 0–7 and 248–255);
//   - images are computed in float32 (the official image path is float64 because numpy
//     promotes against its float64 mean; results agree to ~1e-6);
//   - decoding uses Go's decoders, whose JPEG output differs from libjpeg's by a few levels;
//   - base-size samples are cached as bytes (see below), which rounds the resized image to
//     8 bits before normalising: at most half a grey level;
//   - prediction resizes with the same OpenCV-style bilinear as training, not PIL's
//     antialiased bilinear.
//
// Cache: after its first decode a sample is kept at the base size as planar 8-bit RGB plus the
// soft mask scaled to 8 bits — 4·352² bytes = 484 KiB each, 0.70 GB for the 1450 polyp training
// pairs (0.54 GB of it images). 8-bit because the sources are 8-bit: float16 would double that
// for precision the data does not have. Config.NoCache decodes every epoch instead; results are
// identical either way, because the uncached path goes through the same 8-bit base image.
//
// Determinism: every random choice of an epoch (order, per-batch size, per-sample flip and
// angle) is drawn up front from a tensor.RNG seeded by (seed, epoch), on one goroutine; workers
// only compute. So batches are bit-identical for any worker count, prefetch depth or timing,
// and a State (epoch, batch, RNG state) saved mid-epoch resumes into exactly the batches an
// uninterrupted run would see.
package data
