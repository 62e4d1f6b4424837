// Package safetensors reads and writes the safetensors format (github.com/huggingface/safetensors):
// an 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}} with an
// optional "__metadata__" string map, then the raw little-endian data.
//
// The reader applies every check of the reference implementation (safetensors/src/tensor.rs):
// header size limit, offsets that tile the data exactly with no gaps, overlaps or trailing bytes,
// overflow-checked sizes. The writer pads the header to 8 bytes and writes atomically.
package safetensors

import (
	"bufio"

	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/chnet/chnet/tensor"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
)

// MaxHeaderSize is the reference implementation's limit on the JSON header.
const MaxHeaderSize = 100_000_000

// Errors, one per class of malformed file (as tensor.rs names them).
var (
	ErrHeaderTooSmall      = errors.New("safetensors: file shorter than the 8-byte header length")
	ErrHeaderTooLarge      = errors.New("safetensors: header larger than 100 MB")
	ErrInvalidHeaderLength = errors.New("safetensors: header extends past the end of the file")
	ErrInvalidHeader       = errors.New("safetensors: header is not valid JSON of the expected form")
	ErrInvalidOffset       = errors.New("safetensors: tensor data offsets leave a gap or overlap")
	ErrInvalidTensorInfo   = errors.New("safetensors: tensor byte size does not match its shape and dtype")
	ErrIncompleteBuffer    = errors.New("safetensors: data section size does not match the tensors")
	ErrUnknownDType        = errors.New("safetensors: unknown dtype")
)

// DType sizes in bytes, for the dtypes the format defines.
var dtypeSize = map[string]int{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
	"I16": 2, "U16": 2, "F16": 2, "BF16": 2,
	"I32": 4, "U32": 4, "F32": 4,
	"I64": 8, "U64": 8, "F64": 8,
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
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
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
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(header))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidHeader, err)
	}
	f := &File{Tensors: map[string]Tensor{}}
	type placed struct {
		name string
		e    headerEntry
	}
	var entries []placed
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &f.Metadata); err != nil {
				return nil, fmt.Errorf("%w: __metadata__ must map strings to strings: %v", ErrInvalidHeader, err)
			}
			continue
		}
		var e headerEntry
		d := json.NewDecoder(bytes.NewReader(msg))
		d.DisallowUnknownFields()
		if err := d.Decode(&e); err != nil {
			return nil, fmt.Errorf("%w: tensor %q: %v", ErrInvalidHeader, name, err)
		}
		entries = append(entries, placed{name, e})
	}
	sort.Slice(entries, func(i, j int) bool {
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
		size, ok := dtypeSize[e.DType]
		if !ok {
			return nil, fmt.Errorf("%w %q for tensor %q", ErrUnknownDType, e.DType, p.name)
		}
		if e.Offsets[0] != pos || e.Offsets[1] < e.Offsets[0] {
			return nil, fmt.Errorf("%w: tensor %q has offsets %v, expected to start at %d", ErrInvalidOffset, p.name, e.Offsets, pos)
		}
		want := int64(size)
		for _, d := range e.Shape {
			if d < 0 {
				return nil, fmt.Errorf("%w: tensor %q has negative dimension in %v", ErrInvalidTensorInfo, p.name, e.Shape)
			}
			if d != 0 && want > math.MaxInt64/int64(d) {
				return nil, fmt.Errorf("%w: tensor %q shape %v overflows", ErrInvalidTensorInfo, p.name, e.Shape)
			}
			want *= int64(d)
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

// Float32 decodes the tensor's bytes into float32 values.
func (t Tensor) Float32() ([]float32, error) {
	size := dtypeSize[t.DType]
	if size == 0 {
		return nil, fmt.Errorf("%w %q", ErrUnknownDType, t.DType)
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
	case "I64":
		for i := range out {
			out[i] = float32(int64(le.Uint64(t.Data[8*i:])))
		}
	case "I32":
		for i := range out {
			out[i] = float32(int32(le.Uint32(t.Data[4*i:])))
		}
	default:
		return nil, fmt.Errorf("cannot convert %s to float32", t.DType)
	}
	return out, nil
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
		size, ok := dtypeSize[t.DType]
		if !ok {
			return fmt.Errorf("%w %q for tensor %q", ErrUnknownDType, t.DType, n)
		}
		want := int64(size)
		for _, d := range t.Shape {
			want *= int64(d)
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

// WriteFile writes a safetensors file atomically: a temporary file in the same directory is
// written, synced and renamed over path, then the directory is synced, so a crash leaves either
// the old file or the new one, never a torn one.
func WriteFile(path string, tensors map[string]Tensor, metadata map[string]string) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err := Encode(bw, tensors, metadata); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: sync: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// I64Scalar encodes one int64 as a shape-[] I64 tensor (PyTorch's num_batches_tracked).
func I64Scalar(v int64) Tensor {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, uint64(v))
	return Tensor{DType: "I64", Shape: []int{}, Data: b}
}
