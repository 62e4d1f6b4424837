package data

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/chnet/chnet/internal/atomicfile"
	"github.com/chnet/chnet/internal/regfile"

	"github.com/chnet/chnet/tensor"
)

// splitStream keeps split shuffling independent of the loader's and the model's streams.
const splitStream = 0x73706c6974 // "split"

// Fold is one train/validation partition of a dataset's names (each list sorted).
type Fold struct {
	Train []string `json:"train"`
	Val   []string `json:"val"`
}

// Splits is what splits.json holds: K folds (K-fold cross-validation) or, with ValFraction set,
// one held-out split. Written once per run folder and reused, so a resumed or repeated run
// validates on the same images.
type Splits struct {
	Seed        uint64  `json:"seed"`
	K           int     `json:"k"`
	ValFraction float64 `json:"val_fraction,omitempty"`
	Folds       []Fold  `json:"folds"`
}

func sortedUnique(names []string) ([]string, error) {
	s := slices.Clone(names)
	slices.Sort(s)
	for i := 1; i < len(s); i++ {
		if s[i] == s[i-1] {
			return nil, fmt.Errorf("data: split: name %q appears twice", s[i])
		}
	}
	return s, nil
}

// KFold splits names into k folds: the sorted names are shuffled with the seed, then cut into
// k contiguous parts whose sizes differ by at most one (the first n mod k get one more, as
// scikit-learn's KFold). Fold i validates on part i and trains on the rest. The input order
// does not matter.
func KFold(names []string, k int, seed uint64) (*Splits, error) {
	s, err := sortedUnique(names)
	if err != nil {
		return nil, err
	}
	if k < 2 || k > len(s) {
		return nil, fmt.Errorf("data: %d folds for %d samples: need 2 ≤ k ≤ samples", k, len(s))
	}
	perm := tensor.NewRNG(seed, splitStream).Perm(len(s))
	out := &Splits{Seed: seed, K: k}
	start := 0
	for f := 0; f < k; f++ {
		size := len(s) / k
		if f < len(s)%k {
			size++
		}
		val := make([]string, 0, size)
		for _, p := range perm[start : start+size] {
			val = append(val, s[p])
		}
		start += size
		out.Folds = append(out.Folds, makeFold(s, val))
	}
	return out, nil
}

// NoValidation trains on every name, in one fold with no validation part.
func NoValidation(names []string, seed uint64) (*Splits, error) {
	s, err := sortedUnique(names)
	if err != nil {
		return nil, err
	}
	return &Splits{Seed: seed, K: 1, Folds: []Fold{{Train: s, Val: []string{}}}}, nil
}

// HoldOut puts round(frac·n) of the names (at least 1, at most n−1) in validation.
func HoldOut(names []string, frac float64, seed uint64) (*Splits, error) {
	s, err := sortedUnique(names)
	if err != nil {
		return nil, err
	}
	if !(frac > 0 && frac < 1) {
		return nil, fmt.Errorf("data: validation fraction must be in (0, 1), got %v", frac)
	}
	if len(s) < 2 {
		return nil, fmt.Errorf("data: a held-out split needs at least 2 samples, got %d", len(s))
	}
	nv := min(max(int(math.Round(frac*float64(len(s)))), 1), len(s)-1)
	perm := tensor.NewRNG(seed, splitStream).Perm(len(s))
	val := make([]string, nv)
	for i, p := range perm[:nv] {
		val[i] = s[p]
	}
	return &Splits{Seed: seed, K: 1, ValFraction: frac, Folds: []Fold{makeFold(s, val)}}, nil
}

func makeFold(all, val []string) Fold {
	slices.Sort(val)
	train := make([]string, 0, len(all)-len(val))
	for _, n := range all {
		if _, found := slices.BinarySearch(val, n); !found {
			train = append(train, n)
		}
	}
	return Fold{Train: train, Val: val}
}

// Fold returns fold k (0-based).
func (s *Splits) Fold(k int) (Fold, error) {
	if k < 0 || k >= len(s.Folds) {
		return Fold{}, fmt.Errorf("data: fold %d: splits have folds 0..%d", k, len(s.Folds)-1)
	}
	return s.Folds[k], nil
}

// Validate checks the splits are partitions of names: in every fold train and val are disjoint
// and together are exactly names; for K-fold the val parts are disjoint and cover names.
func (s *Splits) Validate(names []string) error {
	all, err := sortedUnique(names)
	if err != nil {
		return err
	}
	// Without a validation fraction the splits are K folds, or (K = 1) training on everything.
	kfold := s.ValFraction == 0 && s.K > 1
	if len(s.Folds) == 0 || (s.ValFraction == 0 && len(s.Folds) != s.K) {
		return fmt.Errorf("data: splits: %d folds, k = %d", len(s.Folds), s.K)
	}
	seenVal := map[string]int{}
	for f, fold := range s.Folds {
		got, err := sortedUnique(append(slices.Clone(fold.Train), fold.Val...))
		if err != nil {
			return fmt.Errorf("data: splits fold %d: %w (train and val overlap)", f, err)
		}
		if !slices.Equal(got, all) {
			missing, extra := diff(all, got), diff(got, all)
			return fmt.Errorf("data: splits fold %d does not match the dataset: %d names missing (%s), %d unknown (%s) — made for another dataset? delete splits.json to make new ones",
				f, len(missing), preview(missing), len(extra), preview(extra))
		}
		for _, n := range fold.Val {
			if g, ok := seenVal[n]; ok && kfold {
				return fmt.Errorf("data: splits: %q validates in folds %d and %d", n, g, f)
			}
			seenVal[n] = f
		}
	}
	if s.ValFraction == 0 && s.K == 1 && len(seenVal) != 0 {
		return fmt.Errorf("data: splits: %d validation names but no validation fraction", len(seenVal))
	}
	if kfold && len(seenVal) != len(all) {
		return fmt.Errorf("data: splits: validation parts cover %d of %d names", len(seenVal), len(all))
	}
	return nil
}

func diff(a, b []string) []string {
	var out []string
	for _, n := range a {
		if _, ok := slices.BinarySearch(b, n); !ok {
			out = append(out, n)
		}
	}
	return out
}

func preview(l []string) string {
	if len(l) > 5 {
		return strings.Join(l[:5], ", ") + ", ..."
	}
	return strings.Join(l, ", ")
}

// Save writes the splits as indented JSON, atomically.
func (s *Splits) Save(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'))
}

// maxJSON bounds splits.json: a million names take about 40 MB.
const maxJSON = 256 << 20

// LoadSplits reads splits.json and checks it against the dataset's names.
func LoadSplits(path string, names []string) (*Splits, error) {
	b, err := regfile.ReadFile(path, maxJSON)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	return parseSplits(b, path, names)
}

// parseSplits is LoadSplits on the file's bytes.
func parseSplits(b []byte, path string, names []string) (*Splits, error) {
	var s Splits
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("data: %s: %w", path, err)
	}
	if err := s.Validate(names); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &s, nil
}
