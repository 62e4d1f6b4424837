// Package safetensors reads and writes the safetensors format (github.com/huggingface/safetensors):
// an 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}} with an
// optional "__metadata__" string map, then the raw little-endian data.
//
// The reader applies every check of the reference implementation (safetensors/src/tensor.rs):
// header size limit, UTF-8 JSON object header, offsets that tile the data exactly with no gaps,
// overlaps or trailing bytes, overflow-checked sizes, sub-byte dtypes ending on a byte. It is
// stricter in three ways: duplicate names, unknown or null entry fields, and data after the JSON
// object are refused. Like the reference it does not look at values; CheckFinite does. The
// writer pads the header to 8 bytes and writes atomically.
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"unicode/utf8"

	"github.com/chnet/chnet/internal/atomicfile"
	"github.com/chnet/chnet/internal/regfile"

	"github.com/chnet/chnet/tensor"
)

// MaxHeaderSize is the reference implementation's limit on the JSON header.
const MaxHeaderSize = 100_000_000

// Errors, one per class of malformed file (as tensor.rs names them).
var (
	ErrHeaderTooSmall      = errors.New("safetensors: file shorter than the 8-byte header length")
	ErrHeaderTooLarge      = errors.New("safetensors: header larger than 100 MB")
	ErrInvalidHeaderLength = errors.New("safetensors: header extends past the end of the file")
	ErrInvalidHeaderStart  = errors.New("safetensors: header does not start with '{'")
	ErrInvalidHeader       = errors.New("safetensors: header is not valid JSON of the expected form")
	ErrInvalidOffset       = errors.New("safetensors: tensor data offsets leave a gap or overlap")
	ErrValidationOverflow  = errors.New("safetensors: tensor shape overflows")
	ErrMisalignedSlice     = errors.New("safetensors: sub-byte tensor does not end on a byte boundary")
	ErrInvalidTensorInfo   = errors.New("safetensors: tensor byte size does not match its shape and dtype")
	ErrIncompleteBuffer    = errors.New("safetensors: data section size does not match the tensors")
	ErrUnknownDType        = errors.New("safetensors: unknown dtype")
)

// dtypeBits gives the element size in bits of every dtype the format defines (F4 and F6 are
// sub-byte: a tensor of them must still fill whole bytes).
var dtypeBits = map[string]int64{
	"BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
	"I16": 16, "U16": 16, "F16": 16, "BF16": 16,
	"I32": 32, "U32": 32, "F32": 32,
	"I64": 64, "U64": 64, "F64": 64, "C64": 64,
}

// byteSize is the size of a dtype × shape tensor, with the reference's checked arithmetic.
func byteSize(dtype string, shape []int) (int64, error) {
	bits, ok := dtypeBits[dtype]
	if !ok {
		return 0, fmt.Errorf("%w %q", ErrUnknownDType, dtype)
	}
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("%w: negative dimension in shape %v", ErrInvalidHeader, shape)
		}
		if d != 0 && n > math.MaxInt64/int64(d) {
			return 0, fmt.Errorf("%w: shape %v", ErrValidationOverflow, shape)
		}
		n *= int64(d)
	}
	if n > math.MaxInt64/bits {
		return 0, fmt.Errorf("%w: shape %v of %s", ErrValidationOverflow, shape, dtype)
	}
	if n*bits%8 != 0 {
		return 0, fmt.Errorf("%w: %v %s elements are %d bits", ErrMisalignedSlice, shape, dtype, n*bits)
	}
	return n * bits / 8, nil
}

// Tensor is one named array: its dtype ("F32", "F16", "I64", …), shape and raw bytes.
type Tensor struct {
	DType string
	Shape []int
	Data  []byte
}

// File is a parsed safetensors file. Names lists tensors in data order.
type File struct {
	Tensors  map[string]Tensor
	Names    []string
	Metadata map[string]string
}

type headerEntry struct {
	DType   string   `json:"dtype"`
	Shape   []int    `json:"shape"`
	Offsets [2]int64 `json:"data_offsets"`
}

// ReadFile reads and validates a safetensors file.
func ReadFile(path string) (*File, error) {
	data, err := regfile.ReadFile(path, 0)
	if err != nil {
		return nil, err
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// jsonObject splits a JSON object into its members in order, refusing duplicate names and
// anything after the closing brace but whitespace.
func jsonObject(raw []byte) ([]string, []json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, fmt.Errorf("not a JSON object")
	}
	var names []string
	var vals []json.RawMessage
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		name, ok := tok.(string)
		if !ok {
			return nil, nil, fmt.Errorf("object key %v", tok)
		}
		if seen[name] {
			return nil, nil, fmt.Errorf("duplicate name %q", name)
		}
		seen[name] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, fmt.Errorf("%q: %v", name, err)
		}
		names = append(names, name)
		vals = append(vals, v)
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, nil, fmt.Errorf("unterminated object")
	}
	if tok, err := dec.Token(); err != io.EOF {
		return nil, nil, fmt.Errorf("data after the object (%v %v)", tok, err)
	}
	return names, vals, nil
}

// parseEntry decodes {"dtype", "shape", "data_offsets"}, all three required and nothing else
// (the reference ignores unknown fields; refusing them keeps odd writers visible).
func parseEntry(raw json.RawMessage) (headerEntry, error) {
	var e headerEntry
	names, vals, err := jsonObject(raw)
	if err != nil {
		return e, err
	}
	var offsets []int64
	got := 0
	for i, n := range names {
		var dst any
		switch n {
		case "dtype":
			dst = &e.DType
		case "shape":
			dst = &e.Shape
		case "data_offsets":
			dst = &offsets
		default:
			return e, fmt.Errorf("unknown field %q", n)
		}
		if string(vals[i]) == "null" { // json.Unmarshal would silently leave the zero value
			return e, fmt.Errorf("%s is null", n)
		}
		if err := json.Unmarshal(vals[i], dst); err != nil {
			return e, fmt.Errorf("%s: %v", n, err)
		}
		got++
	}
	if got != 3 {
		return e, fmt.Errorf("needs dtype, shape and data_offsets, has %v", names)
	}
	if len(offsets) != 2 || offsets[0] < 0 || offsets[1] < 0 {
		return e, fmt.Errorf("data_offsets %v is not a pair of non-negative integers", offsets)
	}
	e.Offsets = [2]int64{offsets[0], offsets[1]}
	return e, nil
}

// Parse validates a whole safetensors file held in memory; tensors' Data alias buf.
func Parse(buf []byte) (*File, error) {
	if len(buf) < 8 {
		return nil, ErrHeaderTooSmall
	}
	n := binary.LittleEndian.Uint64(buf[:8])
	if n > MaxHeaderSize {
		return nil, fmt.Errorf("%w (%d bytes)", ErrHeaderTooLarge, n)
	}
	if 8+n > uint64(len(buf)) {
		return nil, fmt.Errorf("%w (header %d bytes, file %d)", ErrInvalidHeaderLength, n, len(buf))
	}
	header := buf[8 : 8+n]
	if !utf8.Valid(header) {
		return nil, fmt.Errorf("%w: not UTF-8", ErrInvalidHeader)
	}
	if len(header) == 0 || header[0] != '{' {
		return nil, ErrInvalidHeaderStart
	}
	names, vals, err := jsonObject(header)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidHeader, err)
	}
	f := &File{Tensors: map[string]Tensor{}}
	type placed struct {
		name string
		e    headerEntry
	}
	var entries []placed
	for i, name := range names {
		if name == "__metadata__" {
			if err := json.Unmarshal(vals[i], &f.Metadata); err != nil {
				return nil, fmt.Errorf("%w: __metadata__ must map strings to strings: %v", ErrInvalidHeader, err)
			}
			continue
		}
		e, err := parseEntry(vals[i])
		if err != nil {
			return nil, fmt.Errorf("%w: tensor %q: %v", ErrInvalidHeader, name, err)
		}
		entries = append(entries, placed{name, e})
	}
	// Stable, so that empty tensors sharing an offset keep header order.
	sort.SliceStable(entries, func(i, j int) bool {
		a, b := entries[i].e.Offsets, entries[j].e.Offsets
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		return a[1] < b[1]
	})
	body := buf[8+n:]
	var pos int64
	for _, p := range entries {
		e := p.e
		if e.Offsets[0] != pos || e.Offsets[1] < e.Offsets[0] {
			return nil, fmt.Errorf("%w: tensor %q has offsets %v, expected to start at %d", ErrInvalidOffset, p.name, e.Offsets, pos)
		}
		want, err := byteSize(e.DType, e.Shape)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", p.name, err)
		}
		if e.Offsets[1]-e.Offsets[0] != want {
			return nil, fmt.Errorf("%w: tensor %q %s %v needs %d bytes, offsets give %d", ErrInvalidTensorInfo, p.name, e.DType, e.Shape, want, e.Offsets[1]-e.Offsets[0])
		}
		if e.Offsets[1] > int64(len(body)) {
			return nil, fmt.Errorf("%w: tensor %q ends at %d, data section has %d bytes", ErrIncompleteBuffer, p.name, e.Offsets[1], len(body))
		}
		pos = e.Offsets[1]
		f.Tensors[p.name] = Tensor{DType: e.DType, Shape: e.Shape, Data: body[e.Offsets[0]:e.Offsets[1]]}
		f.Names = append(f.Names, p.name)
	}
	if pos != int64(len(body)) {
		return nil, fmt.Errorf("%w: tensors end at %d, data section has %d bytes", ErrIncompleteBuffer, pos, len(body))
	}
	return f, nil
}

// Float32 returns a tensor's values as float32, widening F16 and F64/I64 where needed.
func (f *File) Float32(name string) ([]float32, []int, error) {
	t, ok := f.Tensors[name]
	if !ok {
		return nil, nil, fmt.Errorf("safetensors: no tensor %q", name)
	}
	v, err := t.Float32()
	if err != nil {
		return nil, nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	return v, t.Shape, nil
}

// Float32 decodes the tensor's bytes into float32 values (F64 rounds; integers convert).
func (t Tensor) Float32() ([]float32, error) {
	size := map[string]int{"F32": 4, "F64": 8, "F16": 2, "BF16": 2, "I64": 8, "I32": 4}[t.DType]
	if size == 0 {
		if _, ok := dtypeBits[t.DType]; !ok {
			return nil, fmt.Errorf("%w %q", ErrUnknownDType, t.DType)
		}
		return nil, fmt.Errorf("cannot convert %s to float32", t.DType)
	}
	n := len(t.Data) / size
	out := make([]float32, n)
	le := binary.LittleEndian
	switch t.DType {
	case "F32":
		for i := range out {
			out[i] = math.Float32frombits(le.Uint32(t.Data[4*i:]))
		}
	case "F64":
		for i := range out {
			out[i] = float32(math.Float64frombits(le.Uint64(t.Data[8*i:])))
		}
	case "F16":
		h := make([]uint16, n)
		for i := range h {
			h[i] = le.Uint16(t.Data[2*i:])
		}
		copy(out, tensor.FromFloat16(h))
	case "BF16": // the top half of a float32
		for i := range out {
			out[i] = math.Float32frombits(uint32(le.Uint16(t.Data[2*i:])) << 16)
		}
	case "I64":
		for i := range out {
			out[i] = float32(int64(le.Uint64(t.Data[8*i:])))
		}
	case "I32":
		for i := range out {
			out[i] = float32(int32(le.Uint32(t.Data[4*i:])))
		}
	}
	return out, nil
}

// CheckFinite returns an error naming the first NaN or ±Inf element. Integer and sub-byte
// dtypes, which cannot hold either, always pass.
func (t Tensor) CheckFinite() error {
	le := binary.LittleEndian
	bad := func(i int, v any) error { return fmt.Errorf("element %d of %s %v is %v", i, t.DType, t.Shape, v) }
	switch t.DType {
	case "F32", "C64": // C64 is a pair of float32
		for i := 0; i+4 <= len(t.Data); i += 4 {
			if v := math.Float32frombits(le.Uint32(t.Data[i:])); v != v || math.IsInf(float64(v), 0) {
				return bad(i/4, v)
			}
		}
	case "F64":
		for i := 0; i+8 <= len(t.Data); i += 8 {
			if v := math.Float64frombits(le.Uint64(t.Data[i:])); math.IsNaN(v) || math.IsInf(v, 0) {
				return bad(i/8, v)
			}
		}
	case "F16": // exponent all ones: Inf or NaN
		for i := 0; i+2 <= len(t.Data); i += 2 {
			if le.Uint16(t.Data[i:])&0x7c00 == 0x7c00 {
				return bad(i/2, "Inf or NaN")
			}
		}
	case "BF16":
		for i := 0; i+2 <= len(t.Data); i += 2 {
			if le.Uint16(t.Data[i:])&0x7f80 == 0x7f80 {
				return bad(i/2, "Inf or NaN")
			}
		}
	case "F8_E5M2":
		for i, b := range t.Data {
			if b&0x7c == 0x7c {
				return bad(i, "Inf or NaN")
			}
		}
	case "F8_E4M3": // the "fn" variant: no Inf, NaN is S.1111.111
		for i, b := range t.Data {
			if b&0x7f == 0x7f {
				return bad(i, "NaN")
			}
		}
	case "F8_E8M0":
		for i, b := range t.Data {
			if b == 0xff {
				return bad(i, "NaN")
			}
		}
	}
	return nil
}

// CheckFinite returns an error naming the first tensor holding a NaN or ±Inf, so that callers
// can refuse such checkpoints.
func (f *File) CheckFinite() error {
	for _, n := range f.Names {
		if err := f.Tensors[n].CheckFinite(); err != nil {
			return fmt.Errorf("safetensors: tensor %q: %w", n, err)
		}
	}
	return nil
}

// Float64 decodes an F64 or F32 tensor into float64 values.
func (t Tensor) Float64() ([]float64, error) {
	le := binary.LittleEndian
	switch t.DType {
	case "F64":
		out := make([]float64, len(t.Data)/8)
		for i := range out {
			out[i] = math.Float64frombits(le.Uint64(t.Data[8*i:]))
		}
		return out, nil
	case "F32":
		v, _ := t.Float32()
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x)
		}
		return out, nil
	}
	return nil, fmt.Errorf("cannot convert %s to float64", t.DType)
}

// Int64 decodes an I64 tensor.
func (t Tensor) Int64() ([]int64, error) {
	if t.DType != "I64" {
		return nil, fmt.Errorf("tensor is %s, not I64", t.DType)
	}
	out := make([]int64, len(t.Data)/8)
	for i := range out {
		out[i] = int64(binary.LittleEndian.Uint64(t.Data[8*i:]))
	}
	return out, nil
}

// F32Tensor encodes float32 values as an F32 tensor.
func F32Tensor(v []float32, shape []int) Tensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return Tensor{DType: "F32", Shape: append([]int(nil), shape...), Data: b}
}

// F16Tensor encodes float32 values as an F16 tensor (round to nearest even).
func F16Tensor(v []float32, shape []int) Tensor {
	h := tensor.ToFloat16(v)
	b := make([]byte, 2*len(h))
	for i, x := range h {
		binary.LittleEndian.PutUint16(b[2*i:], x)
	}
	return Tensor{DType: "F16", Shape: append([]int(nil), shape...), Data: b}
}

// Encode serialises tensors (written in name order) and metadata.
func Encode(w io.Writer, tensors map[string]Tensor, metadata map[string]string) error {
	names := make([]string, 0, len(tensors))
	for n := range tensors {
		if n == "__metadata__" {
			return fmt.Errorf("safetensors: tensor name %q is reserved", n)
		}
		names = append(names, n)
	}
	sort.Strings(names)
	header := map[string]any{}
	var off int64
	for _, n := range names {
		t := tensors[n]
		want, err := byteSize(t.DType, t.Shape)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", n, err)
		}
		if want != int64(len(t.Data)) {
			return fmt.Errorf("%w: tensor %q %s %v has %d bytes, needs %d", ErrInvalidTensorInfo, n, t.DType, t.Shape, len(t.Data), want)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		header[n] = headerEntry{DType: t.DType, Shape: shape, Offsets: [2]int64{off, off + want}}
		off += want
	}
	if len(metadata) > 0 {
		header["__metadata__"] = metadata
	}
	h, err := json.Marshal(header)
	if err != nil {
		return err
	}
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(h)))
	if _, err := w.Write(lenBuf[:]); err != nil {
		return err
	}
	if _, err := w.Write(h); err != nil {
		return err
	}
	for _, n := range names {
		if _, err := w.Write(tensors[n].Data); err != nil {
			return err
		}
	}
	return nil
}

// WriteFile writes a safetensors file atomically (internal/atomicfile): a crash leaves either
// the old file or the new one, never a torn one.
func WriteFile(path string, tensors map[string]Tensor, metadata map[string]string) error {
	return atomicfile.WriteFunc(path, func(w io.Writer) error { return Encode(w, tensors, metadata) })
}

// I64Scalar encodes one int64 as a shape-[] I64 tensor (PyTorch's num_batches_tracked).
func I64Scalar(v int64) Tensor {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, uint64(v))
	return Tensor{DType: "I64", Shape: []int{}, Data: b}
}
