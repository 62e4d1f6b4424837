// Package metrics evaluates segmentation maps the way the papers' own tools do, under three
// conventions that give different numbers for the same maps (docs/reference.md §4):
//
//   - PySOD: PySODMetrics 1.6.2 (lartpang/PySODMetrics @ ac5b1fc): sod_metrics.py,
//     fmeasurev2.py, multiscale_iou.py, size_invariance.py and examples/test_metrics.py.
//   - MATLAB: PraNet's evaluation toolbox (DengPingFan/PraNet eval/*.m), which produced the
//     PraNet/SANet/Polyp-PVT polyp tables the CHNet paper compares with.
//   - CHNet: CHNet's eval.py (wei-hongbin/CHNet @ e531ae5; M2SNet's utils/metric.py plus soft
//     precision/recall/specificity), the script released with the model.
//
// Usage:
//
//	ev, _ := metrics.New(metrics.MATLAB)
//	for _, name := range names {
//		if err := ev.AddFiles(name, predDir+"/"+name, maskDir+"/"+name); err != nil { … }
//	}
//	res := ev.Result()
//	cols, _ := res.Task("polyp") // mDice, mIoU, wFm, Sm, maxEm, MAE
//	res.WriteCSV(f)              // per-image rows
//
// Add takes 8-bit maps (as saved to PNG), AddFloat probability maps in [0,1]; masks are 8-bit.
// Prediction and mask must have the same size: resizing is the caller's job. Add is safe for
// concurrent use. ReadGray reads PNG/JPEG like cv2.imread(…, IMREAD_GRAYSCALE).
//
// # Result keys
//
// PySOD (names as in test_metrics.py / version_performance.json): MAE, Smeasure, wFmeasure,
// adpEm/meanEm/maxEm, adpFm/meanFm/maxFm (β² = 0.3), and for each FmeasureV2 handler X in fm
// (β² 0.3), f1, pre, rec, fpr, iou, dice, spec, ber, oa, kappa: adpX (threshold min(2·mean, 1)),
// meanX/maxX (mean/max over the 256 uint8 thresholds of the dataset-mean curve), sample_biX
// (p > 0.5, per image then averaged), overall_biX (p > 0.5, counts pooled over the dataset);
// auc_pr, auc_roc. WithExtras adds adp/mean/max/sample_bi msiou and the size-invariant si_* keys.
//
// MATLAB (names as main.m prints them): meanDic/maxDic (also maxDice), meanIoU/maxIoU, wFm, Sm,
// meanEm/maxEm, MAE, meanSen/maxSen, meanSpe/maxSpe, plus meanPre/maxPre and meanF/maxF (β² = 1)
// from the same per-threshold computation.
//
// CHNet (names as eval.py prints them): M_dice (soft), M_iou (p > 0.5), Precision, Recall,
// Specificity (soft), wfm, Sm, Em (adaptive), MAE, Ber, Acc (p ≥ 0.5), maxF and avgF (β² = 0.3;
// eval.py calls the adaptive one "meanF").
//
// # What "mDice" means
//
// MATLAB meanDic: for t_k = 1 − k/255 (256 thresholds), Dice of p ≥ t_k per image (0 when there
// is no true positive), averaged over images, then over thresholds — what the polyp papers
// report. PySOD meandice: the same with q = ⌊255p⌋ ≥ 255 − i instead (tiny differences). CHNet
// M_dice: soft Dice 2Σpg/(Σg+Σp) on the continuous map, no threshold. Results.Task maps each
// paper table (polyp, lung, breast) to these keys and notes where a column does not mean the
// same thing (CHNet's eval.py has no E^max: its "maxEm" column is the adaptive E-measure).
//
// # Fidelity
//
// Each computation repeats the reference's operations in the reference's order where the last
// bits can matter (input normalisation, thresholds, numpy's pairwise summation, scipy's
// tie-breaking in the distance transform, MATLAB's colon operator, numpy's float16 sums in
// MSIoU). Products that feed a sum are wrapped in float64() so the compiler cannot fuse them
// into FMA instructions (the Go spec allows that), which would round differently.
//
// Against PySODMetrics' reference run (version_performance.json, v1_4_3 updated by the later
// blocks), 150 of its 155 values are checked and agree bit for bit (two within 1.2e-16). Not
// implemented: HCE, cm and ccm (human-correction effort and context measures for dichotomous
// and camouflaged-object segmentation, which hinge on scikit-image/OpenCV internals and, for
// ccm, a scikit-image sample photo). Stale in the JSON: auc_roc, si_sample_auc_pr/roc and
// si_overall_auc_pr/roc, written by a since-fixed cal_auc (commit 45ab1a1) and never asserted
// upstream. This package reports the 1.6.2 definition (checked against a run of 1.6.2's own
// code); the tests check the stale numbers against the old formula applied to this package's
// curves (see golden_test.go).
//
// CHNet's eval.py classes, run on the same three pairs, agree to the last bit as well
// (TestCHNetEvalPyReference). The MATLAB toolbox could not be run here; its convention is checked
// on hand-computed cases.
//
// # Deliberate deviations
//
// Where a reference produces NaN or fails, this package returns a number instead: an S-measure
// quadrant with no pixels (centroid on the last row/column; weight 0) contributes 0, not NaN;
// CHNet's covariance over a one-pixel quadrant (0/0) is 0; CHNet's BER with an empty class uses
// 0 for that class's rate; the MATLAB toolbox cannot score an empty mask's wFm (bwdist has no
// foreground), here it is 0 as in PySODMetrics; si_mae with bounding boxes covering the whole
// image drops the background term.
package metrics
