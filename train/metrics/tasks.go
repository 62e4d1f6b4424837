package metrics

import (
	"fmt"
	"slices"
	"strings"
)

// TaskValue is one column of a paper's results table, computed under a convention.
type TaskValue struct {
	Column string  // the paper's column name, e.g. "mDice"
	Key    string  // the Results.Values key it was read from
	Value  float64 //
	Note   string  // what the number is under this convention, where that is not obvious
}

type taskCol struct {
	column string
	key    map[Convention]string
	note   map[Convention]string
}

// tasks are the metric sets of the CHNet paper's tables (reference.md §1.5).
//
// What "mDice" means per convention:
//   - matlab: meanDic — mean over the 256 thresholds p ≥ t_k of the dataset-mean Dice (the number
//     PraNet/SANet/Polyp-PVT report; TP = 0 ⇒ 0);
//   - pysod: meandice — the same aggregation over the uint8 sweep q ≥ 255−i (q = ⌊255p⌋);
//   - chnet: M_dice — soft Dice 2Σpg/(Σg+Σp) on the continuous map, no threshold, +1e-5 smoothing.
//
// mIoU/Jaccard follow the same pattern (chnet: IoU of p > 0.5, smoothed); precision and recall
// are the threshold means for matlab/pysod and soft (unthresholded) for chnet.
var tasks = map[string][]taskCol{
	"polyp": {
		{"mDice", keys("meandice", "meanDic", "M_dice"), nil},
		{"mIoU", keys("meaniou", "meanIoU", "M_iou"), nil},
		{"wFm", keys("wFmeasure", "wFm", "wfm"), nil},
		{"Sm", keys("Smeasure", "Sm", "Sm"), nil},
		{"maxEm", keys("maxEm", "maxEm", "Em"), map[Convention]string{
			CHNet: "eval.py has no threshold sweep: this is the adaptive E-measure (threshold 2·mean), not E^max"}},
		{"MAE", keys("MAE", "MAE", "MAE"), nil},
	},
	"lung": {
		{"mDice", keys("meandice", "meanDic", "M_dice"), nil},
		{"Precision", keys("meanpre", "meanPre", "Precision"), nil},
		{"Recall", keys("meanrec", "meanSen", "Recall"), nil},
		{"Sm", keys("Smeasure", "Sm", "Sm"), nil},
		{"MAE", keys("MAE", "MAE", "MAE"), nil},
	},
	"breast": {
		{"Jaccard", keys("meaniou", "meanIoU", "M_iou"), nil},
		{"Precision", keys("meanpre", "meanPre", "Precision"), nil},
		{"Recall", keys("meanrec", "meanSen", "Recall"), nil},
		{"Dice", keys("meandice", "meanDic", "M_dice"), nil},
	},
}

func keys(pysod, matlab, chnet string) map[Convention]string {
	return map[Convention]string{PySOD: pysod, MATLAB: matlab, CHNet: chnet}
}

// Tasks lists the known metric sets: "breast", "lung", "polyp".
func Tasks() []string {
	t := make([]string, 0, len(tasks))
	for k := range tasks {
		t = append(t, k)
	}
	slices.Sort(t)
	return t
}

// Task picks a paper table's columns out of the results: "polyp" (mDice, mIoU, wFm, Sm, maxEm,
// MAE — Tables 3/4), "lung" (mDice, Precision, Recall, Sm, MAE) or "breast" (Jaccard, Precision,
// Recall, Dice).
func (r Results) Task(task string) ([]TaskValue, error) {
	cols, ok := tasks[strings.ToLower(task)]
	if !ok {
		return nil, fmt.Errorf("metrics: unknown task %q (want one of %s)", task, strings.Join(Tasks(), ", "))
	}
	if r.Images == 0 {
		return nil, fmt.Errorf("metrics: task %s: no images were evaluated", task)
	}
	out := make([]TaskValue, len(cols))
	for i, c := range cols {
		k := c.key[r.Convention]
		v, ok := r.Values[k]
		if !ok {
			return nil, fmt.Errorf("metrics: task %s: %s convention has no %q", task, r.Convention, k)
		}
		out[i] = TaskValue{Column: c.column, Key: k, Value: v, Note: c.note[r.Convention]}
	}
	return out, nil
}
