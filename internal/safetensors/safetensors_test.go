package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chnet/chnet/internal/badinput"
	"github.com/chnet/chnet/internal/golden"
)

// file assembles a safetensors file from a header string and a data section.
func file(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

func lengthOnly(n uint64) []byte { return binary.LittleEndian.AppendUint64(nil, n) }

// TestParseErrors holds one or more cases per error class of the reference implementation
// (safetensors/src/tensor.rs), plus this reader's stricter header checks.
func TestParseErrors(t *testing.T) {
	f32x2 := `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`
	for _, c := range []struct {
		name string
		file []byte
		want error
	}{
		{"header too small", []byte{1, 0, 0, 0, 0, 0, 0}, ErrHeaderTooSmall},
		{"empty file", nil, ErrHeaderTooSmall},
		{"header too large", append(lengthOnly(MaxHeaderSize+1), "{}"...), ErrHeaderTooLarge},
		{"header length 2^64-1", lengthOnly(math.MaxUint64), ErrHeaderTooLarge},
		{"header past EOF", append(lengthOnly(100), "{}"...), ErrInvalidHeaderLength},
		{"header start null", file("null", nil), ErrInvalidHeaderStart},
		{"header start space", file(" {}", nil), ErrInvalidHeaderStart},
		{"header start array", file("[]", nil), ErrInvalidHeaderStart},
		{"empty header", file("", nil), ErrInvalidHeaderStart},
		{"invalid JSON", file(`{"a":`, nil), ErrInvalidHeader},
		{"invalid UTF-8", file("{\"\xff\":1}", nil), ErrInvalidHeader},
		{"JSON then garbage", file(f32x2+"x", make([]byte, 8)), ErrInvalidHeader},
		{"two JSON objects", file(f32x2+"{}", make([]byte, 8)), ErrInvalidHeader},
		{"duplicate tensor name", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)), ErrInvalidHeader},
		{"missing shape", file(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, make([]byte, 4)), ErrInvalidHeader},
		{"null shape", file(`{"a":{"dtype":"F32","shape":null,"data_offsets":[0,4]}}`, make([]byte, 4)), ErrInvalidHeader},
		{"three offsets", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, make([]byte, 4)), ErrInvalidHeader},
		{"negative offset", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, make([]byte, 4)), ErrInvalidHeader},
		{"unknown field", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, make([]byte, 4)), ErrInvalidHeader},
		{"negative dimension", file(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, make([]byte, 4)), ErrInvalidHeader},
		{"fractional dimension", file(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, make([]byte, 4)), ErrInvalidHeader},
		{"tensor not an object", file(`{"a":[1]}`, nil), ErrInvalidHeader},
		{"metadata not strings", file(`{"__metadata__":{"k":1}}`, nil), ErrInvalidHeader},
		{"gap", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, make([]byte, 12)), ErrInvalidOffset},
		{"overlap", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)), ErrInvalidOffset},
		{"first tensor not at 0", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)), ErrInvalidOffset},
		{"end before start", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[0],"data_offsets":[4,2]}}`, make([]byte, 4)), ErrInvalidOffset},
		{"overflowing shape", file(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, make([]byte, 4)), ErrValidationOverflow},
		{"overflowing bit count", file(`{"a":{"dtype":"F64","shape":[1152921504606846976],"data_offsets":[0,8]}}`, make([]byte, 8)), ErrValidationOverflow},
		{"misaligned F4", file(`{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}`, make([]byte, 2)), ErrMisalignedSlice},
		{"misaligned F6", file(`{"a":{"dtype":"F6_E2M3","shape":[2],"data_offsets":[0,2]}}`, make([]byte, 2)), ErrMisalignedSlice},
		{"byte size mismatch", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 4)), ErrInvalidTensorInfo},
		{"trailing bytes (polyglot)", file(f32x2, append(make([]byte, 8), "PK\x05\x06"...)), ErrIncompleteBuffer},
		{"data section short", file(f32x2, make([]byte, 7)), ErrIncompleteBuffer},
		{"data without tensors", file(`{}`, []byte{0}), ErrIncompleteBuffer},
		{"unknown dtype", file(`{"a":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}`, make([]byte, 16)), ErrUnknownDType},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := Parse(c.file)
			if err == nil {
				t.Fatalf("parsed %v, want %v", f.Names, c.want)
			}
			if !errors.Is(err, c.want) {
				t.Errorf("err = %v, want %v", err, c.want)
			}
		})
	}
}

// TestParseValid: edge cases the reference accepts.
func TestParseValid(t *testing.T) {
	for _, c := range []struct {
		name  string
		file  []byte
		names []string
	}{
		{"no tensors", file(`{}`, nil), nil},
		{"padded header", file(`{}      `, nil), nil},
		{"metadata only", file(`{"__metadata__":{"k":"v"}}`, nil), nil},
		{"null metadata", file(`{"__metadata__":null}`, nil), nil},
		{"empty tensors keep header order", file(`{"z":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"a":{"dtype":"I64","shape":[2,0],"data_offsets":[0,0]}}`, nil), []string{"z", "a"}},
		{"data order, not header order", file(`{"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{1, 2}), []string{"a", "b"}},
		{"F4 pair", file(`{"a":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}}`, []byte{0x21}), []string{"a"}},
		{"F6 quad", file(`{"a":{"dtype":"F6_E3M2","shape":[4],"data_offsets":[0,3]}}`, []byte{1, 2, 3}), []string{"a"}},
		{"scalar", file(`{"s":{"dtype":"I64","shape":[],"data_offsets":[0,8]}}`, make([]byte, 8)), []string{"s"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := Parse(c.file)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(f.Names, c.names) {
				t.Errorf("names %v, want %v", f.Names, c.names)
			}
		})
	}
}

// TestRoundTrip writes F32, F16 and I64 tensors with metadata and reads them back.
func TestRoundTrip(t *testing.T) {
	f32 := []float32{0, -1.5, float32(math.Pi), math.MaxFloat32, math.SmallestNonzeroFloat32, float32(math.Inf(-1))}
	// F16: exact values, a value that rounds (1/3 → 0x3555 = 0.333251953125), overflow to Inf.
	f16in := []float32{1, -2.5, 0.000060975552, 1.0 / 3, 65520, 1e-8}
	f16want := []float32{1, -2.5, 0.000060975552, 0.333251953125, float32(math.Inf(1)), 0}
	tensors := map[string]Tensor{
		"w":     F32Tensor(f32, []int{2, 3}),
		"h":     F16Tensor(f16in, []int{6}),
		"steps": I64Scalar(-7),
	}
	meta := map[string]string{"format": "chnet", "config": `{"lr": 0.05}`}
	path := filepath.Join(t.TempDir(), "rt.safetensors")
	if err := WriteFile(path, tensors, meta); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after WriteFile, want only the file", len(entries))
	}
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(f.Metadata, meta) {
		t.Errorf("metadata %v, want %v", f.Metadata, meta)
	}
	if !slices.Equal(f.Names, []string{"h", "steps", "w"}) {
		t.Errorf("names %v", f.Names)
	}
	got, shape, err := f.Float32("w")
	if err != nil || !slices.Equal(shape, []int{2, 3}) || !slices.Equal(got, f32) {
		t.Errorf("w = %v %v (%v), want %v", shape, got, err, f32)
	}
	got, _, err = f.Float32("h")
	if err != nil || !slices.Equal(got, f16want) {
		t.Errorf("h = %v (%v), want %v", got, err, f16want)
	}
	if h := f.Tensors["h"]; h.DType != "F16" || binary.LittleEndian.Uint16(h.Data[6:]) != 0x3555 {
		t.Errorf("h: %s, element 3 bits %#x, want F16 0x3555", h.DType, binary.LittleEndian.Uint16(h.Data[6:]))
	}
	s := f.Tensors["steps"]
	if v, err := s.Int64(); err != nil || !slices.Equal(v, []int64{-7}) || s.Shape == nil || len(s.Shape) != 0 {
		t.Errorf("steps = %v %v (%v)", s.Shape, v, err)
	}
}

// TestHeaderPadding: the header is padded with spaces so the data starts 8-byte aligned, for
// every header length modulo 8.
func TestHeaderPadding(t *testing.T) {
	for n := 1; n <= 16; n++ {
		var buf bytes.Buffer
		name := strings.Repeat("x", n)
		if err := Encode(&buf, map[string]Tensor{name: F32Tensor([]float32{1}, []int{1})}, nil); err != nil {
			t.Fatal(err)
		}
		b := buf.Bytes()
		hl := binary.LittleEndian.Uint64(b)
		header := string(b[8 : 8+hl])
		if hl%8 != 0 || strings.TrimRight(header, " ") != strings.TrimSpace(header) || len(strings.TrimRight(header, " "))+7 < len(header) {
			t.Errorf("name of %d bytes: header %q (%d bytes)", n, header, hl)
		}
		if uint64(len(b)) != 8+hl+4 {
			t.Errorf("name of %d bytes: file %d bytes", n, len(b))
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		t    map[string]Tensor
		want error
	}{
		{"reserved name", map[string]Tensor{"__metadata__": F32Tensor([]float32{1}, []int{1})}, nil},
		{"unknown dtype", map[string]Tensor{"a": {DType: "F128", Shape: []int{1}, Data: make([]byte, 16)}}, ErrUnknownDType},
		{"size mismatch", map[string]Tensor{"a": {DType: "F32", Shape: []int{2}, Data: make([]byte, 4)}}, ErrInvalidTensorInfo},
		{"negative dimension", map[string]Tensor{"a": {DType: "F32", Shape: []int{-1, 0}, Data: nil}}, ErrInvalidHeader},
		{"misaligned F4", map[string]Tensor{"a": {DType: "F4", Shape: []int{1}, Data: nil}}, ErrMisalignedSlice},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := Encode(&bytes.Buffer{}, c.t, nil)
			if err == nil || c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("err = %v, want %v", err, c.want)
			}
		})
	}
}

func TestCheckFinite(t *testing.T) {
	le16 := func(v ...uint16) []byte {
		b := []byte{}
		for _, x := range v {
			b = binary.LittleEndian.AppendUint16(b, x)
		}
		return b
	}
	f64 := func(v ...float64) []byte {
		b := []byte{}
		for _, x := range v {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
		}
		return b
	}
	for _, c := range []struct {
		name string
		t    Tensor
		bad  int // index of the first bad element, -1 if finite
	}{
		{"F32 finite", F32Tensor([]float32{0, -1, math.MaxFloat32}, []int{3}), -1},
		{"F32 NaN", F32Tensor([]float32{0, 1, float32(math.NaN())}, []int{3}), 2},
		{"F32 -Inf", F32Tensor([]float32{float32(math.Inf(-1))}, []int{1}), 0},
		{"F64 Inf", Tensor{DType: "F64", Shape: []int{2}, Data: f64(1, math.Inf(1))}, 1},
		{"F64 max", Tensor{DType: "F64", Shape: []int{1}, Data: f64(math.MaxFloat64)}, -1},
		{"F16 Inf", Tensor{DType: "F16", Shape: []int{2}, Data: le16(0x3c00, 0x7c00)}, 1},
		{"F16 NaN", Tensor{DType: "F16", Shape: []int{1}, Data: le16(0xfe00)}, 0},
		{"F16 max", Tensor{DType: "F16", Shape: []int{1}, Data: le16(0x7bff)}, -1},
		{"BF16 NaN", Tensor{DType: "BF16", Shape: []int{2}, Data: le16(0x3f80, 0x7fc0)}, 1},
		{"BF16 max", Tensor{DType: "BF16", Shape: []int{1}, Data: le16(0x7f7f)}, -1},
		{"C64 NaN imaginary", Tensor{DType: "C64", Shape: []int{1}, Data: F32Tensor([]float32{1, float32(math.NaN())}, nil).Data}, 1},
		{"F8_E5M2 Inf", Tensor{DType: "F8_E5M2", Shape: []int{2}, Data: []byte{0x3c, 0x7c}}, 1},
		{"F8_E4M3 max", Tensor{DType: "F8_E4M3", Shape: []int{1}, Data: []byte{0x7e}}, -1},
		{"F8_E4M3 NaN", Tensor{DType: "F8_E4M3", Shape: []int{1}, Data: []byte{0xff}}, 0},
		{"I64 all ones", Tensor{DType: "I64", Shape: []int{1}, Data: bytes.Repeat([]byte{0xff}, 8)}, -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.t.CheckFinite()
			if (err != nil) != (c.bad >= 0) {
				t.Fatalf("CheckFinite = %v, want bad element %d", err, c.bad)
			}
			if err != nil && !strings.Contains(err.Error(), "element "+string(rune('0'+c.bad))+" ") {
				t.Errorf("error %q does not name element %d", err, c.bad)
			}
		})
	}
	var buf bytes.Buffer
	if err := Encode(&buf, map[string]Tensor{"ok": F32Tensor([]float32{1}, []int{1}), "w": F32Tensor([]float32{1, float32(math.NaN())}, []int{2})}, nil); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.CheckFinite(); err == nil || !strings.Contains(err.Error(), `tensor "w": element 1`) {
		t.Errorf("File.CheckFinite = %v", err)
	}
}

// TestGoldenBytes: files written by Python (make_golden.py's writer, which follows the format's
// reference layout: sorted names, compact JSON, space padding) parse, and re-encoding them
// reproduces the same bytes.
func TestGoldenBytes(t *testing.T) {
	for _, name := range []string{"golden/ops_cases.safetensors", "golden/res2net_stem_layer1_io.safetensors"} {
		path := golden.Path(t, name)
		orig, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := Parse(orig)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := Encode(&buf, f.Tensors, f.Metadata); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), orig) {
			t.Errorf("%s: re-encoded %d bytes differ from Python's %d", name, buf.Len(), len(orig))
		}
		if err := f.CheckFinite(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	f, err := ReadFile(golden.Path(t, "golden/ops_cases.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	// make_golden.py's conv table: [stride, pad, dilation, groups] per case.
	for name, want := range map[string][]int64{
		"conv_3x3_s1": {1, 1, 1, 1}, "conv_3x3_s2": {2, 1, 1, 1}, "conv_7x7_s2": {2, 3, 1, 1},
		"conv_1x1_s2": {2, 0, 1, 1}, "conv_3x3_d2": {1, 2, 2, 1}, "conv_3x3_g2": {1, 1, 1, 2},
	} {
		got, err := f.Tensors[name+".cfg"].Int64()
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s.cfg = %v (%v), want %v", name, got, err, want)
		}
		if x := f.Tensors[name+".x"]; x.DType != "F32" || len(x.Shape) != 4 {
			t.Errorf("%s.x: %s %v", name, x.DType, x.Shape)
		}
	}
	// chnet_v1_io has metadata, which Python writes last and Encode first: compare content.
	io1, err := ReadFile(golden.Path(t, "golden/chnet_v1_io.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(io1.Metadata["sgd"], "nesterov") || !strings.HasPrefix(io1.Metadata["grad_norm_order"], `["encode1.0.weight"`) {
		t.Errorf("metadata %v", io1.Metadata)
	}
	if n, err := io1.Tensors["train.grad_norms"].Float64(); err != nil || len(n) < 100 {
		t.Errorf("train.grad_norms: %d values, %v", len(n), err)
	}
}

// TestPythonLoadsWriteFile: a file from WriteFile loads in Python's safetensors library (the
// reference crate's bindings), with equal values. Skipped where the library is not installed,
// as on the CI machine, where TestReferenceReaderLoadsWriteFile checks against a Go port of the
// same crate instead.
func TestPythonLoadsWriteFile(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err == nil {
		err = exec.Command(py, "-c", "import safetensors.numpy").Run()
	}
	if err != nil {
		t.Skip("Python safetensors library not installed; TestReferenceReaderLoadsWriteFile checks against a port of the reference reader instead")
	}
	path := filepath.Join(t.TempDir(), "w.safetensors")
	err = WriteFile(path, map[string]Tensor{
		"a": F32Tensor([]float32{1.5, -2, 3.25}, []int{3}),
		"b": F16Tensor([]float32{0.5, 1}, []int{1, 2}),
		"n": I64Scalar(42),
	}, map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	script := `
import sys, json
from safetensors import safe_open
with safe_open(sys.argv[1], "np") as f:
    out = {k: f.get_tensor(k).tolist() for k in f.keys()}
    out["__metadata__"] = f.metadata()
print(json.dumps(out, sort_keys=True))`
	out, err := exec.Command(py, "-c", script, path).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	want := `{"__metadata__": {"k": "v"}, "a": [1.5, -2.0, 3.25], "b": [[0.5, 1.0]], "n": 42}`
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("python read %s, want %s", got, want)
	}
}

// FuzzParse: Parse must never panic, and whatever it accepts must survive Encode → Parse
// unchanged.
func FuzzParse(f *testing.F) {
	seeds := [][]byte{
		file(`{}`, nil),
		file(`{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)),
		file(`{"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"a":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}}`, []byte{1, 2}),
		file(`{"a":{"dtype":"F16","shape":[2,0],"data_offsets":[0,0]}}  `, nil),
	}
	var buf bytes.Buffer
	Encode(&buf, map[string]Tensor{"w": F32Tensor([]float32{1, 2, 3}, []int{3}), "s": I64Scalar(3)}, map[string]string{"m": "x"})
	seeds = append(seeds, buf.Bytes(),
		append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, "{}"...),                                                              // header length past any file
		file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)),                                                      // gap
		file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)), // overlap
		append(file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), "trailing"...),
		file(`{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}}`, make([]byte, 4)),                                                                   // overflowing shape
		file(`{"__metadata__":{"train_state":"{\"epoch\":1}","format":"chnet-checkpoint/1"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, []byte{0, 0, 0xc0, 0x7f}), // NaN
	)
	badinput.Corpus(f, "FuzzParse", seeds)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		p.CheckFinite()
		var out bytes.Buffer
		if err := Encode(&out, p.Tensors, p.Metadata); err != nil {
			t.Fatalf("Encode of a parsed file: %v", err)
		}
		q, err := Parse(out.Bytes())
		if err != nil {
			t.Fatalf("Parse of a re-encoded file: %v", err)
		}
		if len(q.Names) != len(p.Names) || len(q.Metadata) != len(p.Metadata) || !maps.Equal(q.Metadata, p.Metadata) && len(p.Metadata) > 0 {
			t.Fatalf("round trip changed names %v → %v or metadata %v → %v", p.Names, q.Names, p.Metadata, q.Metadata)
		}
		for _, n := range p.Names {
			a, b := p.Tensors[n], q.Tensors[n]
			if a.DType != b.DType || !slices.Equal(a.Shape, b.Shape) || !bytes.Equal(a.Data, b.Data) {
				t.Fatalf("tensor %q changed in the round trip", n)
			}
		}
	})
}
