package safetensors

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	ref "github.com/nlpodyssey/safetensors"
)

// The reference implementation of the format is Hugging Face's Rust crate, whose Python
// bindings cannot be installed on the CI machine (Debian 12 has no package of them and PyPI is
// out of reach), so TestPythonLoadsWriteFile skips there. These tests run in CI instead against
// github.com/nlpodyssey/safetensors, a Go port of that crate's reader and writer that keeps its
// validation (offsets contiguous from zero, sizes equal to shape × dtype, the buffer exactly
// covered): files this package writes must pass it, and files it writes must read here.

// TestReferenceReaderLoadsWriteFile: every dtype chnet writes, with metadata, read back by the
// reference reader with equal bytes.
func TestReferenceReaderLoadsWriteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.safetensors")
	in := map[string]Tensor{
		"a":     F32Tensor([]float32{1.5, -2, 3.25}, []int{3}),
		"b":     F16Tensor([]float32{0.5, 1}, []int{1, 2}),
		"n":     I64Scalar(42),
		"empty": F32Tensor(nil, []int{0, 4}),
	}
	if err := WriteFile(path, in, map[string]string{"k": "v", "format": "pt"}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := ref.Deserialize(raw)
	if err != nil {
		t.Fatalf("the reference reader refuses a file WriteFile wrote: %v", err)
	}
	_, meta, err := ref.ReadMetadata(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := meta.Metadata(); got["k"] != "v" || got["format"] != "pt" || len(got) != 2 {
		t.Errorf("metadata %v", got)
	}
	names := st.Names()
	slices.Sort(names)
	if !slices.Equal(names, []string{"a", "b", "empty", "n"}) {
		t.Fatalf("names %v", names)
	}
	for name, want := range map[string]struct {
		dtype string
		shape []uint64
		data  []byte
	}{
		"a":     {"F32", []uint64{3}, le(float32(1.5), float32(-2), float32(3.25))},
		"b":     {"F16", []uint64{1, 2}, le(uint16(0x3800), uint16(0x3c00))},
		"n":     {"I64", []uint64{}, le(int64(42))},
		"empty": {"F32", []uint64{0, 4}, nil},
	} {
		v, ok := st.Tensor(name)
		if !ok {
			t.Fatalf("no tensor %s", name)
		}
		if v.DType().String() != want.dtype || !slices.Equal(v.Shape(), want.shape) || !bytes.Equal(v.Data(), want.data) {
			t.Errorf("%s: reference reads %s %v % x, want %s %v % x", name, v.DType(), v.Shape(), v.Data(), want.dtype, want.shape, want.data)
		}
	}
}

// TestReadsReferenceWriter: a file the reference writer produced (its own ordering, header
// padding and metadata placement) parses here with equal values.
func TestReadsReferenceWriter(t *testing.T) {
	a, err := ref.NewTensorView(ref.F32, []uint64{2, 2}, le(float32(1), float32(-0.5), float32(math.Pi), float32(1e-30)))
	if err != nil {
		t.Fatal(err)
	}
	n, err := ref.NewTensorView(ref.I64, []uint64{1}, le(int64(-7)))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ref.Serialize(map[string]ref.TensorView{"w.a": a, "count": n}, map[string]string{"who": "reference"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(raw)
	if err != nil {
		t.Fatalf("a file of the reference writer does not parse: %v", err)
	}
	if f.Metadata["who"] != "reference" {
		t.Errorf("metadata %v", f.Metadata)
	}
	v, shape, err := f.Float32("w.a")
	if err != nil || !slices.Equal(shape, []int{2, 2}) || !slices.Equal(v, []float32{1, -0.5, math.Pi, 1e-30}) {
		t.Errorf("w.a: %v %v %v", v, shape, err)
	}
	c, err := f.Tensors["count"].Int64()
	if err != nil || !slices.Equal(c, []int64{-7}) {
		t.Errorf("count: %v %v", c, err)
	}
}

// le encodes values little-endian, as the format stores them.
func le(vs ...any) []byte {
	var b bytes.Buffer
	for _, v := range vs {
		if err := binary.Write(&b, binary.LittleEndian, v); err != nil {
			panic(err)
		}
	}
	return b.Bytes()
}
