package metrics

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"sync"
)

// Convention selects whose evaluation code the numbers reproduce.
type Convention string

const (
	PySOD  Convention = "pysod"  // PySODMetrics 1.6.2 (lartpang/PySODMetrics)
	MATLAB Convention = "matlab" // PraNet's MATLAB toolbox (DengPingFan/PraNet eval/*.m)
	CHNet  Convention = "chnet"  // CHNet's eval.py (wei-hongbin/CHNet; M2SNet utils/metric.py)
)

// ParseConvention accepts "pysod", "matlab" or "chnet".
func ParseConvention(s string) (Convention, error) {
	switch c := Convention(s); c {
	case PySOD, MATLAB, CHNet:
		return c, nil
	}
	return "", fmt.Errorf("metrics: unknown convention %q (want pysod, matlab or chnet)", s)
}

// Option configures an Evaluator.
type Option func(*Evaluator)

// WithExtras adds PySODMetrics' slower families to the pysod convention: MSIoU (adp/mean/max/
// sample_bi msiou) and the size-invariant variants (si_*). MSIoU recomputes an edge map for every
// grey level present, so it costs up to 256 full-image passes per image. Ignored by the other
// conventions.
func WithExtras() Option { return func(e *Evaluator) { e.extras = true } }

// Evaluator accumulates per-image results under one convention. Add, AddFloat and AddFiles are
// safe to call from several goroutines at once (each image is scored in the caller's goroutine;
// only the bookkeeping is locked); rows then appear in completion order, and dataset means
// depend on that order only in the last bits.
type Evaluator struct {
	conv   Convention
	extras bool

	mu    sync.Mutex
	names []string
	recs  []any // *pysodImage, *matlabImage or *chnetImage
}

// New returns an Evaluator for conv.
func New(conv Convention, opts ...Option) (*Evaluator, error) {
	if _, err := ParseConvention(string(conv)); err != nil {
		return nil, err
	}
	e := &Evaluator{conv: conv}
	for _, o := range opts {
		o(e)
	}
	return e, nil
}

// Convention reports the evaluator's convention.
func (e *Evaluator) Convention() Convention { return e.conv }

// Add scores an 8-bit prediction map (as saved to PNG) against an 8-bit mask, both w×h,
// row-major. The convention's own input preparation applies (mask threshold, /255, min-max).
func (e *Evaluator) Add(name string, pred, gt []uint8, w, h int) error {
	if err := checkSizes(name, len(pred), len(gt), w, h); err != nil {
		return err
	}
	e.add(&sample{name: name, w: w, h: h, p: normalise8(pred, e.conv), g: binariseGT(gt, e.conv)})
	return nil
}

// AddFloat scores a probability map in [0,1] (e.g. a sigmoid output, resized to the mask) against
// an 8-bit mask. It stands for the map after the toolbox's /255: the convention's min-max
// normalisation still applies. Values outside [0,1] or NaN are an error.
func (e *Evaluator) AddFloat(name string, pred []float32, gt []uint8, w, h int) error {
	if err := checkSizes(name, len(pred), len(gt), w, h); err != nil {
		return err
	}
	p, err := normaliseFloat(name, pred, e.conv)
	if err != nil {
		return err
	}
	e.add(&sample{name: name, w: w, h: h, p: p, g: binariseGT(gt, e.conv)})
	return nil
}

// AddFiles reads a prediction map and a mask with ReadGray and adds them under name. Differing
// sizes are an error naming both files: resizing the prediction is the caller's job (MATLAB's
// toolbox uses bicubic imresize, CHNet's eval.py PIL bilinear; PySODMetrics requires equal sizes).
func (e *Evaluator) AddFiles(name, predPath, gtPath string) error {
	pred, err := ReadGray(predPath)
	if err != nil {
		return err
	}
	gt, err := ReadGray(gtPath)
	if err != nil {
		return err
	}
	if pred.W != gt.W || pred.H != gt.H {
		return fmt.Errorf("metrics: %s: size mismatch: prediction %s is %dx%d, mask %s is %dx%d",
			name, predPath, pred.W, pred.H, gtPath, gt.W, gt.H)
	}
	return e.Add(name, pred.Pix, gt.Pix, gt.W, gt.H)
}

func (e *Evaluator) add(s *sample) {
	var r any
	switch e.conv {
	case PySOD:
		r = newPySODImage(s, e.extras)
	case MATLAB:
		r = newMATLABImage(s)
	default:
		r = newCHNetImage(s)
	}
	e.mu.Lock()
	e.names = append(e.names, s.name)
	e.recs = append(e.recs, r)
	e.mu.Unlock()
}

// Len is the number of images added so far.
func (e *Evaluator) Len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.recs)
}

// Results are the dataset-level values and the per-image rows.
type Results struct {
	Convention Convention
	Images     int
	// Values holds every dataset-level metric under the convention's own names (see the
	// package documentation); Keys lists them sorted.
	Values map[string]float64
	// Curves holds dataset-mean per-threshold curves (strictest threshold first, except
	// "msiou", which ascends like PySODMetrics' own): pysod "dice", "iou", "pre", "rec", …,
	// "Em"; matlab "Dic", "IoU", "Sen", "Spe", "Pre", "F", "Em"; chnet "precision", "recall", "F".
	Curves map[string][]float64
	// Columns names the per-image values of every row, in order.
	Columns []string
	Rows    []Row
}

// Row is one image's own scores (for the dynamic metrics, over its own threshold curve).
type Row struct {
	Name   string
	Values []float64
}

// Keys returns the names in Values, sorted.
func (r Results) Keys() []string {
	k := make([]string, 0, len(r.Values))
	for n := range r.Values {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
}

// Result computes the dataset-level results over every image added so far. With no images,
// Values is empty.
func (e *Evaluator) Result() Results {
	e.mu.Lock()
	names := slices.Clone(e.names)
	recs := slices.Clone(e.recs)
	e.mu.Unlock()

	res := Results{Convention: e.conv, Images: len(recs), Values: map[string]float64{}, Curves: map[string][]float64{}}
	switch e.conv {
	case PySOD:
		collect(&res, names, recs, pysodColumns, aggregatePySOD)
	case MATLAB:
		collect(&res, names, recs, matlabColumns, aggregateMATLAB)
	default:
		collect(&res, names, recs, chnetColumns, aggregateCHNet)
	}
	return res
}

// collect fills res with one convention's per-image rows and dataset-level aggregates.
func collect[R interface{ row() []float64 }](res *Results, names []string, recs []any, columns []string,
	aggregate func([]R, map[string]float64, map[string][]float64)) {
	res.Columns = columns
	rs := make([]R, len(recs))
	for i, r := range recs {
		rs[i] = r.(R)
		res.Rows = append(res.Rows, Row{names[i], rs[i].row()})
	}
	if len(rs) > 0 {
		aggregate(rs, res.Values, res.Curves)
	}
}

// WriteCSV writes the per-image rows: a header "name,<columns…>", then one line per image with
// values in Go's shortest exact float form.
func (r Results) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(append([]string{"name"}, r.Columns...)); err != nil {
		return err
	}
	rec := make([]string, len(r.Columns)+1)
	for _, row := range r.Rows {
		rec[0] = row.Name
		for i, v := range row.Values {
			rec[i+1] = formatFloat(v)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func formatFloat(v float64) string {
	if math.IsNaN(v) {
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
