package pth

import (
	"archive/zip"
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

func i64s(v ...int64) []int64 { return v }

// TestViews checks strided gathers against values worked out by hand from a storage holding
// 1, 2, ..., 6 (row-major [2,3] would be [[1 2 3] [4 5 6]]).
func TestViews(t *testing.T) {
	data := f32bytes(1, 2, 3, 4, 5, 6)
	for _, c := range []struct {
		name         string
		offset       int64
		size, stride []int64
		want         []float32
		err          string // a bounds error instead
	}{
		{"contiguous", 0, i64s(2, 3), i64s(3, 1), []float32{1, 2, 3, 4, 5, 6}, ""},
		{"transposed", 0, i64s(3, 2), i64s(1, 3), []float32{1, 4, 2, 5, 3, 6}, ""},
		{"offset slice", 1, i64s(2, 2), i64s(3, 1), []float32{2, 3, 5, 6}, ""},
		{"step 2", 0, i64s(3), i64s(2), []float32{1, 3, 5}, ""},
		{"one past the end", 4, i64s(2, 3), i64s(0, 1), nil, "reaches element 6, past the end"},
		{"last element exactly", 3, i64s(3), i64s(1), []float32{4, 5, 6}, ""},
		{"offset past the end of an empty view", 7, i64s(0), i64s(1), nil, "offset past the end"},
		{"expanded row", 3, i64s(2, 3), i64s(0, 1), []float32{4, 5, 6, 4, 5, 6}, ""},
		{"size-1 dim with any stride", 2, i64s(1, 4), i64s(100, 1), []float32{3, 4, 5, 6}, ""},
		{"scalar", 5, nil, nil, []float32{6}, ""},
		{"empty at the end", 6, i64s(0, 3), i64s(3, 1), []float32{}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := torchZip(t, stateDict("w", "FloatStorage", "0", 6, c.offset, c.size, c.stride), record{name: "archive/data/0", data: data})
			sd, err := readBytes(b)
			if c.err != "" {
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want a bounds error %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := sd.Tensors["w"]
			wantShape := make([]int, len(c.size))
			for i, d := range c.size {
				wantShape[i] = int(d)
			}
			if !slices.Equal(got.F32, c.want) || !slices.Equal(got.Shape, wantShape) || got.Shape == nil {
				t.Errorf("got %v %v, want %v %v", got.Shape, got.F32, wantShape, c.want)
			}
		})
	}
}

// TestContainerErrors covers zip and legacy layouts that are malformed around a valid pickle.
func TestContainerErrors(t *testing.T) {
	pkl := stateDict("w", "FloatStorage", "0", 2, 0, i64s(2), i64s(1))
	two := f32bytes(1, 2)
	zipped := func(recs ...record) []byte { return torchZip(t, pkl, recs...) }
	badCRC := zipped(record{name: "archive/data/0", data: f32bytes(1, 2)})
	badCRC[bytes.Index(badCRC, two)] ^= 1

	legacyObj := func(view []any, numel int64) []byte {
		return newPK().op("}").str("w").legacyTensor("0", numel, view, 0, i64s(2), i64s(1)).op("s.").Bytes()
	}
	obj := legacyObj(nil, 2)
	okLegacy := legacyFile(obj, littleEndian, []string{"0"}, i64s(2), [][]byte{two})

	var tarHead [512]byte
	copy(tarHead[257:], "ustar")

	for _, c := range []struct {
		name string
		file []byte
		want error // nil: loads
		msg  string
	}{
		{"zip baseline", zipped(record{name: "archive/data/0", data: two}), nil, ""},
		{"zip little-endian byteorder", zipped(record{name: "archive/data/0", data: two}, record{name: "archive/byteorder", data: []byte("little")}), nil, ""},
		{"zip big-endian byteorder", zipped(record{name: "archive/data/0", data: two}, record{name: "archive/byteorder", data: []byte("big")}), ErrUnsupported, `byte order "big"`},
		{"zip deflated storage", zipped(record{name: "archive/data/0", data: two, method: zip.Deflate}), ErrUnsupported, "record archive/data/0 is compressed"},
		{"zip missing storage record", zipped(), ErrCorrupt, `tensor "w": storage "0": no zip record data/0`},
		{"zip storage one byte short", zipped(record{name: "archive/data/0", data: two[:7]}), ErrCorrupt, "(8 bytes) but record data/0 holds 7 bytes"},
		{"zip storage CRC mismatch", badCRC, ErrCorrupt, "checksum error"},
		{"zip without data.pkl", func() []byte {
			var buf bytes.Buffer
			w := zip.NewWriter(&buf)
			f, _ := w.Create("archive/other.pkl")
			f.Write(pkl)
			w.Close()
			return buf.Bytes()
		}(), ErrCorrupt, "no <dir>/data.pkl"},
		{"zip with two data.pkl", torchZip(t, pkl, record{name: "other/data.pkl", data: pkl}), ErrCorrupt, "two pickles"},
		{"zip storage declared twice", torchZip(t, newPK().op("}").str("a").tensor("FloatStorage", "0", 2, 0, i64s(2), i64s(1)).
			str("b").tensor("HalfStorage", "0", 4, 0, i64s(4), i64s(1)).op("u").Bytes()), ErrCorrupt, ""},
		{"bad tensor outside the state dict", torchZip(t, newPK().op("}(").str("state_dict").op("}").str("w").
			tensor("FloatStorage", "0", 2, 0, i64s(2), i64s(1)).op("s").str("momentum").
			tensor("FloatStorage", "0", 2, 1, i64s(2), i64s(1)).op("u.").Bytes(), record{name: "archive/data/0", data: two}),
			ErrCorrupt, "tensor outside the state dict (data.pkl, byte"},
		{"zip bare storage without record", torchZip(t, newPK().op("}(").str("w").tensor("FloatStorage", "0", 2, 0, i64s(2), i64s(1)).
			str("s").op("(").str("storage").global("torch", "FloatStorage").str("1").str("cpu").int(3).op("tQu.").Bytes(),
			record{name: "archive/data/0", data: two}), ErrNotStateDict, `maps "s" to a storage`},
		{"zip storage without record inside a wrapper", torchZip(t, newPK().op("}(").str("state_dict").op("}").str("w").
			tensor("FloatStorage", "0", 2, 0, i64s(2), i64s(1)).op("s").str("extra").op("(").str("storage").global("torch", "FloatStorage").
			str("1").str("cpu").int(3).op("tQu.").Bytes(), record{name: "archive/data/0", data: two}),
			ErrCorrupt, `storage "1": no zip record data/1`},
		{"legacy baseline", okLegacy, nil, ""},
		{"legacy without system info check", legacyFile(obj, "\x80\x02}.", []string{"0"}, i64s(2), [][]byte{two}), nil, ""},
		{"legacy big-endian", legacyFile(obj, "\x80\x02}X\x0d\x00\x00\x00little_endian\x89s.", []string{"0"}, i64s(2), [][]byte{two}), ErrUnsupported, "big-endian"},
		{"legacy wrong magic", append([]byte("\x80\x02K\x05."), okLegacy[15:]...), ErrCorrupt, "magic number is 5"},
		{"legacy protocol 1000", append(append(append([]byte{}, okLegacy[:15]...), "\x80\x02M\xe8\x03."...), okLegacy[21:]...), ErrUnsupported, "protocol version 1000"},
		{"legacy trailing bytes", append(append([]byte{}, okLegacy...), 0), ErrCorrupt, "1 bytes after the last storage"},
		{"legacy storage not listed", legacyFile(obj, littleEndian, nil, nil, nil), ErrCorrupt, `storage "0" has no data`},
		{"legacy storage listed twice", legacyFile(obj, littleEndian, []string{"0", "0"}, i64s(2, 2), [][]byte{two, two}), ErrCorrupt, "listed twice"},
		{"legacy unknown storage listed", legacyFile(obj, littleEndian, []string{"0", "9"}, i64s(2, 2), [][]byte{two, two}), ErrCorrupt, `storage "9" is listed but no tensor uses it`},
		{"legacy storage bytes cut", legacyFile(obj, littleEndian, []string{"0"}, i64s(2), [][]byte{two[:5]}), ErrCorrupt, "unexpected end of data"},
		{"legacy view past its root", legacyFile(legacyObj([]any{"v", int64(1), int64(2)}, 2), littleEndian, []string{"0"}, i64s(2), [][]byte{two}),
			ErrCorrupt, `storage view "v" (offset 1, 2 elements) exceeds storage "0"`},
		{"legacy tensor past its view", legacyFile(legacyObj([]any{"v", int64(1), int64(1)}, 2), littleEndian, []string{"0"}, i64s(2), [][]byte{two}),
			ErrCorrupt, `storage "0/v" (1 F32 elements): reaches element 1`},
		{"legacy module pickle", legacyFile(newPK().str("module").str("Net").op("\x86Q.").Bytes(), littleEndian, nil, nil, nil), ErrUnsupported, "whole nn.Module"},
		{"tar container", tarHead[:], ErrUnsupported, "tar-format"},
		{"empty file", nil, ErrCorrupt, "neither a zip archive nor a legacy pickle"},
		{"text file", []byte("hello"), ErrCorrupt, `starts with "hell"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			sd, err := readBytes(c.file)
			if c.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if w := sd.Tensors["w"]; !slices.Equal(w.F32, []float32{1, 2}) {
					t.Errorf("w = %v", w)
				}
				return
			}
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("err = %v\nwant %v containing %q", err, c.want, c.msg)
			}
		})
	}
}
