package pth

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"math"
	"testing"
)

// pk builds pickles opcode by opcode for table tests.
type pk struct{ bytes.Buffer }

func newPK() *pk {
	p := &pk{}
	p.WriteString("\x80\x02")
	return p
}

func (p *pk) op(s string) *pk { p.WriteString(s); return p }

func (p *pk) str(s string) *pk {
	p.WriteByte('X')
	binary.Write(&p.Buffer, binary.LittleEndian, uint32(len(s)))
	p.WriteString(s)
	return p
}

func (p *pk) int(v int64) *pk {
	if v >= 0 && v < 256 {
		p.WriteByte('K')
		p.WriteByte(byte(v))
		return p
	}
	p.WriteString("\x8a\x08")
	binary.Write(&p.Buffer, binary.LittleEndian, v)
	return p
}

func (p *pk) global(module, name string) *pk { return p.op("c" + module + "\n" + name + "\n") }

func (p *pk) ints(v ...int64) *pk {
	p.op("(")
	for _, x := range v {
		p.int(x)
	}
	return p.op("t")
}

// tensor writes _rebuild_tensor_v2 over a zip-style persistent id.
func (p *pk) tensor(storageType, key string, numel, offset int64, size, stride []int64) *pk {
	p.global("torch._utils", "_rebuild_tensor_v2")
	p.op("((").str("storage").global("torch", storageType).str(key).str("cpu").int(numel).op("tQ")
	return p.rebuildArgs(offset, size, stride)
}

func (p *pk) rebuildArgs(offset int64, size, stride []int64) *pk {
	p.int(offset).ints(size...).ints(stride...).op("\x89").global("collections", "OrderedDict").op(")R")
	return p.op("tR")
}

// legacyTensor writes _rebuild_tensor_v2 over a legacy persistent id; view is nil or
// (view key, offset, numel).
func (p *pk) legacyTensor(key string, numel int64, view []any, offset int64, size, stride []int64) *pk {
	p.global("torch._utils", "_rebuild_tensor_v2")
	p.op("((").str("storage").global("torch", "FloatStorage").str(key).str("cpu").int(numel)
	if view == nil {
		p.op("N")
	} else {
		p.str(view[0].(string)).int(view[1].(int64)).int(view[2].(int64)).op("\x87")
	}
	p.op("tQ")
	return p.rebuildArgs(offset, size, stride)
}

// legacyFile lays out a legacy stream: magic, protocol 1001, system info, the object
// pickle, the key list, then each storage's element count and bytes.
func legacyFile(obj []byte, sysInfo string, keys []string, counts []int64, data [][]byte) []byte {
	var b bytes.Buffer
	b.WriteString("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.")
	b.WriteString("\x80\x02M\xe9\x03.")
	b.WriteString(sysInfo)
	b.Write(obj)
	kl := newPK().op("]")
	if len(keys) > 0 {
		kl.op("(")
		for _, k := range keys {
			kl.str(k)
		}
		kl.op("e")
	}
	b.Write(kl.op(".").Bytes())
	for i := range counts {
		binary.Write(&b, binary.LittleEndian, counts[i])
		b.Write(data[i])
	}
	return b.Bytes()
}

const littleEndian = "\x80\x02}X\x0d\x00\x00\x00little_endian\x88s."

// stateDict pickles {name: tensor} for one tensor.
func stateDict(name, storageType, key string, numel, offset int64, size, stride []int64) []byte {
	p := newPK().op("}").str(name).tensor(storageType, key, numel, offset, size, stride).op("s.")
	return p.Bytes()
}

type record struct {
	name   string
	data   []byte
	method uint16
}

// torchZip lays records out as torch.save does: archive/data.pkl, archive/data/<key>.
func torchZip(t testing.TB, pkl []byte, records ...record) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	all := append([]record{{name: "archive/data.pkl", data: pkl}}, records...)
	for _, r := range all {
		f, err := w.CreateHeader(&zip.FileHeader{Name: r.name, Method: r.method})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(r.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func f32bytes(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func readBytes(b []byte) (*StateDict, error) { return Read(bytes.NewReader(b), int64(len(b))) }
