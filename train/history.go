package train

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/chnet/chnet/internal/atomicfile"
	"github.com/chnet/chnet/internal/regfile"
)

// EpochRecord is one line of a run's metrics.jsonl: what an epoch did and how validation went.
type EpochRecord struct {
	Epoch        int                `json:"epoch"` // 1-based
	LR           float64            `json:"lr"`
	TrainLoss    float64            `json:"train_loss"`
	Steps        int                `json:"steps"`
	Images       int                `json:"images"`
	Seconds      float64            `json:"seconds"`
	ImagesPerSec float64            `json:"images_per_sec"`
	Val          map[string]float64 `json:"val,omitempty"` // validation metrics (dice, iou, mae, loss…)
	Best         bool               `json:"best,omitempty"`
	Time         string             `json:"time"`
}

// MarshalJSON writes non-finite values, which JSON cannot hold, as null: a validation loss that
// overflowed (an eval-mode network early in training can) is recorded, not a lost epoch.
func (r EpochRecord) MarshalJSON() ([]byte, error) {
	type plain EpochRecord
	out := struct {
		plain
		LR           *float64            `json:"lr"`
		TrainLoss    *float64            `json:"train_loss"`
		Seconds      *float64            `json:"seconds"`
		ImagesPerSec *float64            `json:"images_per_sec"`
		Val          map[string]*float64 `json:"val,omitempty"`
	}{plain: plain(r), LR: finiteOrNil(r.LR), TrainLoss: finiteOrNil(r.TrainLoss), Seconds: finiteOrNil(r.Seconds), ImagesPerSec: finiteOrNil(r.ImagesPerSec)}
	if r.Val != nil {
		out.Val = make(map[string]*float64, len(r.Val))
		for k, v := range r.Val {
			out.Val[k] = finiteOrNil(v)
		}
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads null values back as NaN.
func (r *EpochRecord) UnmarshalJSON(b []byte) error {
	type plain EpochRecord
	var in struct {
		plain
		LR           *float64            `json:"lr"`
		TrainLoss    *float64            `json:"train_loss"`
		Seconds      *float64            `json:"seconds"`
		ImagesPerSec *float64            `json:"images_per_sec"`
		Val          map[string]*float64 `json:"val,omitempty"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*r = EpochRecord(in.plain)
	r.LR, r.TrainLoss, r.Seconds, r.ImagesPerSec = orNaN(in.LR), orNaN(in.TrainLoss), orNaN(in.Seconds), orNaN(in.ImagesPerSec)
	r.Val = nil
	if in.Val != nil {
		r.Val = make(map[string]float64, len(in.Val))
		for k, v := range in.Val {
			r.Val[k] = orNaN(v)
		}
	}
	return nil
}

func finiteOrNil(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func orNaN(v *float64) float64 {
	if v == nil {
		return math.NaN()
	}
	return *v
}

// AppendRecord adds one JSON line to path, syncing it so a crash loses at most the epoch being
// written.
func AppendRecord(path string, r EpochRecord) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	line, err := json.Marshal(r)
	if err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

// ReadRecords reads a metrics.jsonl file; a torn last line (a crash mid-write) is dropped.
func ReadRecords(path string) ([]EpochRecord, error) {
	f, _, err := regfile.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readRecords(f, path)
}

// readRecords is ReadRecords on a reader; path names it in errors.
func readRecords(f io.Reader, path string) ([]EpochRecord, error) {
	var out []EpochRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		var r EpochRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			if !sc.Scan() { // only the last line may be torn
				break
			}
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// TruncateRecords keeps only the records of epochs ≤ epoch, rewriting path atomically; a resumed
// run calls it so that epochs after the checkpoint are not listed twice.
func TruncateRecords(path string, epoch int) error {
	rs, err := ReadRecords(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return atomicfile.WriteFunc(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		for _, r := range rs {
			if r.Epoch <= epoch {
				if err := enc.Encode(r); err != nil {
					return err
				}
			}
		}
		return nil
	})
}
