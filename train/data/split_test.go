package data

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("case_%03d", i)
	}
	return out
}

func TestKFold(t *testing.T) {
	cases := []struct{ n, k int }{{10, 5}, {11, 5}, {1450, 5}, {7, 2}, {3, 3}}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("n%d_k%d", tc.n, tc.k), func(t *testing.T) {
			all := names(tc.n)
			s, err := KFold(all, tc.k, 11)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Validate(all); err != nil {
				t.Fatal(err)
			}
			seen := map[string]int{}
			for f, fold := range s.Folds {
				if d := len(fold.Val) - tc.n/tc.k; d < 0 || d > 1 {
					t.Errorf("fold %d has %d val names for n=%d k=%d", f, len(fold.Val), tc.n, tc.k)
				}
				if len(fold.Train)+len(fold.Val) != tc.n {
					t.Errorf("fold %d: %d + %d names", f, len(fold.Train), len(fold.Val))
				}
				for _, v := range fold.Val {
					if _, dup := slices.BinarySearch(fold.Train, v); dup {
						t.Errorf("fold %d: %s in train and val", f, v)
					}
					seen[v]++
				}
			}
			for _, n := range all {
				if seen[n] != 1 {
					t.Fatalf("%s validates in %d folds", n, seen[n])
				}
			}
			// Input order does not matter; the seed does.
			rev := slices.Clone(all)
			slices.Reverse(rev)
			s2, _ := KFold(rev, tc.k, 11)
			if !slices.Equal(s.Folds[0].Val, s2.Folds[0].Val) {
				t.Error("fold depends on input order")
			}
			if tc.n >= 10 {
				s3, _ := KFold(all, tc.k, 12)
				if slices.Equal(s.Folds[0].Val, s3.Folds[0].Val) {
					t.Error("seeds 11 and 12 gave the same fold")
				}
			}
		})
	}
}

func TestSplitErrors(t *testing.T) {
	cases := []struct {
		name string
		f    func() error
		want string
	}{
		{"k_1", func() error { _, err := KFold(names(5), 1, 0); return err }, "2 ≤ k"},
		{"k_gt_n", func() error { _, err := KFold(names(3), 4, 0); return err }, "2 ≤ k"},
		{"duplicate", func() error { _, err := KFold([]string{"a", "b", "a"}, 2, 0); return err }, "twice"},
		{"frac_1", func() error { _, err := HoldOut(names(5), 1, 0); return err }, "(0, 1)"},
		{"holdout_one_sample", func() error { _, err := HoldOut(names(1), 0.2, 0); return err }, "at least 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.f(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestHoldOut(t *testing.T) {
	for _, tc := range []struct {
		n       int
		frac    float64
		wantVal int
	}{{100, 0.2, 20}, {10, 0.01, 1}, {3, 0.99, 2}, {1450, 0.1, 145}} {
		all := names(tc.n)
		s, err := HoldOut(all, tc.frac, 4)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(all); err != nil {
			t.Fatal(err)
		}
		if f := s.Folds[0]; len(f.Val) != tc.wantVal || len(f.Train) != tc.n-tc.wantVal {
			t.Fatalf("n=%d frac=%v: %d val, want %d", tc.n, tc.frac, len(f.Val), tc.wantVal)
		}
	}
}

// Every kind of split survives its splits.json round trip.
func TestSplitsRoundTrip(t *testing.T) {
	all := names(23)
	kfold, _ := KFold(all, 4, 1)
	holdOut, _ := HoldOut(all, 0.2, 1)
	none, _ := NoValidation(all, 1)
	for _, tc := range []struct {
		name string
		s    *Splits
	}{{"k-fold", kfold}, {"held-out", holdOut}, {"no validation", none}} {
		path := filepath.Join(t.TempDir(), "splits.json")
		if err := tc.s.Save(path); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		back, err := LoadSplits(path, all)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for k := range tc.s.Folds {
			a, _ := tc.s.Fold(k)
			b, _ := back.Fold(k)
			if !slices.Equal(a.Train, b.Train) || !slices.Equal(a.Val, b.Val) {
				t.Fatalf("%s: fold %d changed in the round trip", tc.name, k)
			}
		}
	}
	// A validation part in a split that has none is a hand edit: refused.
	none.Folds[0].Val, none.Folds[0].Train = all[:1], all[1:]
	if err := none.Validate(all); err == nil {
		t.Fatal("a validation part without a validation fraction was accepted")
	}
}

func TestSplitsJSON(t *testing.T) {
	all := names(23)
	s, _ := KFold(all, 5, 3)
	path := filepath.Join(t.TempDir(), "splits.json")
	if err := s.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := LoadSplits(path, all)
	if err != nil {
		t.Fatal(err)
	}
	for k := range s.Folds {
		a, _ := s.Fold(k)
		b, _ := back.Fold(k)
		if !slices.Equal(a.Train, b.Train) || !slices.Equal(a.Val, b.Val) {
			t.Fatalf("fold %d changed in the round trip", k)
		}
	}
	if _, err := s.Fold(5); err == nil {
		t.Fatal("fold 5 of 5 accepted")
	}
	// Reused against another dataset: refused, naming what differs.
	other := append(slices.Clone(all[1:]), "new_case")
	if _, err := LoadSplits(path, other); err == nil || !strings.Contains(err.Error(), "case_000") || !strings.Contains(err.Error(), "new_case") {
		t.Fatalf("other dataset: %v", err)
	}
	// Hand-edited to overlap: refused.
	b, _ := os.ReadFile(path)
	s.Folds[1].Val = append(s.Folds[1].Val, s.Folds[0].Val[0])
	s.Folds[1].Train = slices.DeleteFunc(s.Folds[1].Train, func(n string) bool { return n == s.Folds[0].Val[0] })
	if err := s.Validate(all); err == nil || !strings.Contains(err.Error(), "validates in folds") {
		t.Fatalf("overlap: %v", err)
	}
	writeFile(t, path, []byte(strings.Replace(string(b), `"seed"`, `"sead"`, 1)))
	if _, err := LoadSplits(path, all); err == nil || !strings.Contains(err.Error(), "sead") {
		t.Fatalf("unknown key: %v", err)
	}
}
