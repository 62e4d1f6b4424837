package pth

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// expected is what torch.load returned for a fixture (make_fixtures.py's export).
type expected struct {
	Keys    []string
	Tensors map[string]struct {
		DType string
		Shape []int
		F32   []float64
		I64   []int64
	}
}

func loadExpected(t *testing.T, path string) expected {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var e expected
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestFixturesMatchTorch compares every valid fixture with what torch.load read from it,
// bit for bit: dtypes, storage views (transposed, sliced, expanded, legacy storage views),
// shared storages, scalars, empty tensors, Parameters and wrapped training checkpoints.
func TestFixturesMatchTorch(t *testing.T) {
	for _, name := range []string{"tiny_zip", "tiny_legacy", "wrapped_state_dict", "wrapped_model_legacy",
		"parameters", "legacy_views"} {
		t.Run(name, func(t *testing.T) {
			want := loadExpected(t, filepath.Join("testdata", name+".json"))
			sd, err := Load(filepath.Join("testdata", name+".pth"))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(sd.Keys, want.Keys) {
				t.Fatalf("keys %v, want %v", sd.Keys, want.Keys)
			}
			if len(sd.Tensors) != len(want.Keys) {
				t.Errorf("%d tensors in the map, want %d", len(sd.Tensors), len(want.Keys))
			}
			for _, k := range want.Keys {
				got, w := sd.Tensors[k], want.Tensors[k]
				if got.DType != w.DType || !slices.Equal(got.Shape, w.Shape) || got.Shape == nil {
					t.Errorf("%s: %s %v, want %s %v", k, got.DType, got.Shape, w.DType, w.Shape)
				}
				if w.F32 != nil {
					if len(got.F32) != len(w.F32) || got.I64 != nil {
						t.Fatalf("%s: %d float values (and %d ints), want %d", k, len(got.F32), len(got.I64), len(w.F32))
					}
					for i, x := range w.F32 {
						if math.Float32bits(got.F32[i]) != math.Float32bits(float32(x)) {
							t.Errorf("%s[%d] = %v, want %v", k, i, got.F32[i], x)
						}
					}
				} else if !slices.Equal(got.I64, w.I64) || got.F32 != nil {
					t.Errorf("%s = %v (floats %v), want %v", k, got.I64, got.F32, w.I64)
				}
			}
		})
	}
}

// TestHostileFixtures loads files that try code execution, out-of-bounds reads and unbounded
// allocation. Each must fail with its error class and a message naming the culprit.
func TestHostileFixtures(t *testing.T) {
	for _, c := range []struct {
		file string
		want error
		msg  string
	}{
		{"evil_os_system.pth", ErrForbidden, "global os.system is not on the allowlist"},
		{"evil_builtins_eval_legacy.pth", ErrForbidden, "global builtins.eval"},
		{"evil_getattr_py2.pth", ErrForbidden, "global __builtin__.getattr"},
		{"evil_reduce_in_state_dict.pth", ErrForbidden, "global posix.system"},
		{"setitem_on_list.pth", ErrCorrupt, "SETITEM on a list"},
		{"storage_size_mismatch.pth", ErrCorrupt, `corrupt or truncated checkpoint: tensor "w": storage "0": declared 8 F32 elements (32 bytes) but record data/0 holds 16 bytes`},
		{"view_out_of_bounds.pth", ErrCorrupt, `corrupt or truncated checkpoint: tensor "w": view (offset 0, size [2 3], stride [3 1]) of storage "0" (4 F32 elements): reaches element 5`},
		{"negative_stride.pth", ErrCorrupt, `corrupt or truncated checkpoint: tensor "w": view (offset 3, size [4], stride [-1]) of storage "0" (4 F32 elements): negative stride`},
		{"deep_marks.pth", ErrLimit, "MARKs nested deeper than 1024"},
		{"deep_lists.pth", ErrNotStateDict, "holds a list"},
		{"huge_numel_legacy.pth", ErrCorrupt, `storage "0" declares 2305843009213693952 F32 elements, more than the 343-byte file holds`},
		{"huge_view.pth", ErrLimit, "tensors need 4398046511104 bytes"},
		{"legacy_count_mismatch.pth", ErrCorrupt, `storage "0": the file stores 5 elements, the pickle declared 4`},
		{"top_level_list.pth", ErrNotStateDict, "the file holds a list"},
		{"mixed_dict.pth", ErrNotStateDict, `maps "epoch" to an int, not a tensor`},
	} {
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join("testdata", c.file)
			sd, err := Load(path)
			if err == nil {
				t.Fatalf("loaded %d tensors, want an error", len(sd.Keys))
			}
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) || !strings.HasPrefix(err.Error(), path+": ") {
				t.Errorf("error %q\nwant %v, prefixed with the path and containing %q", err, c.want, c.msg)
			}
		})
	}
}

// TestAllocationBounded measures what reading each fixture allocates: never more than the
// budget (allocFactor × size + slack) plus the fixed cost of the zip reader.
func TestAllocationBounded(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.pth")
	if len(files) < 20 {
		t.Fatalf("only %d fixtures", len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		readBytes(b)
		runtime.ReadMemStats(&after)
		got := after.TotalAlloc - before.TotalAlloc
		if limit := uint64(allocFactor*len(b) + allocSlack + 256<<10); got > limit {
			t.Errorf("%s (%d bytes): allocated %d bytes, more than %d", f, len(b), got, limit)
		}
	}
}

// TestTruncation cuts fixtures at every byte: each prefix must give an error, never a panic
// or a state dict.
func TestTruncation(t *testing.T) {
	for _, name := range []string{"tiny_zip.pth", "tiny_legacy.pth", "legacy_views.pth", "wrapped_model_legacy.pth"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		for cut := range len(b) {
			if _, err := readBytes(b[:cut]); err == nil {
				t.Errorf("%s cut at %d of %d bytes: no error", name, cut, len(b))
			} else if !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s cut at %d: %v, want ErrCorrupt", name, cut, err)
			}
		}
	}
}

func TestLoadErrors(t *testing.T) {
	for _, path := range []string{"testdata/no-such-file.pth", "testdata"} {
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("Load(%s) = %v, want an error naming the path", path, err)
		}
	}
}

func TestCheckFinite(t *testing.T) {
	sd, err := Load("testdata/nonfinite.pth")
	if err != nil {
		t.Fatal(err)
	}
	err = sd.CheckFinite()
	if err == nil || !strings.Contains(err.Error(), `tensor "w": element 1 of [3] is NaN`) {
		t.Errorf("CheckFinite: %v", err)
	}
	sd, err = Load("testdata/tiny_zip.pth")
	if err != nil {
		t.Fatal(err)
	}
	if err := sd.CheckFinite(); err != nil {
		t.Errorf("finite state dict: %v", err)
	}
	for _, c := range []struct {
		v    float32
		fail bool
	}{{float32(math.Inf(1)), true}, {float32(math.Inf(-1)), true}, {math.MaxFloat32, false}, {-0, false}} {
		if err := (Tensor{DType: "F32", Shape: []int{2}, F32: []float32{1, c.v}}).CheckFinite(); (err != nil) != c.fail {
			t.Errorf("CheckFinite(%v) = %v", c.v, err)
		}
	}
}
