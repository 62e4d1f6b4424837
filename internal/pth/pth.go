// Package pth reads PyTorch checkpoint files (torch.save of a state dict) without executing
// anything: a restricted unpickler that resolves globals only from an allowlist of state-dict
// types, in both containers torch writes — the zip archive (torch ≥ 1.6: <dir>/data.pkl plus one
// <dir>/data/<key> record per storage) and the legacy stream (magic number, protocol version and
// system-info pickles, the object pickle, the storage-key list, then each storage as an 8-byte
// element count and its raw bytes).
//
// Every storage is checked against what its persistent id declares (known dtype, element count ×
// item size = the stored bytes), every tensor view against its storage (offset + extent in range,
// no negative strides), and what a file may make the reader allocate is bounded by a constant
// times its size, so a hostile file gets an error, never code execution, a panic or an unbounded
// allocation.
package pth

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"strings"

	"github.com/chnet/chnet/internal/regfile"
)

// Error classes; every error Read returns wraps exactly one of them.
var (
	ErrCorrupt      = errors.New("corrupt or truncated checkpoint")
	ErrForbidden    = errors.New("refused")
	ErrLimit        = errors.New("resource limit exceeded")
	ErrUnsupported  = errors.New("unsupported")
	ErrNotStateDict = errors.New("not a state dict")
)

// classErr is an error of one class; Read puts the class in front of the whole message, once.
type classErr struct {
	class error
	msg   string
}

func (e *classErr) Error() string { return e.msg }
func (e *classErr) Unwrap() error { return e.class }

func errf(class error, format string, a ...any) error {
	return &classErr{class, fmt.Sprintf(format, a...)}
}

// Tensor is one state-dict entry, row-major. Float dtypes (F32, F16, BF16, F64) are converted to
// float32 in F32 (F64 rounds); integer and boolean dtypes (I64, I32, I16, I8, U8, BOOL) widen to
// int64 in I64. DType names the stored type.
type Tensor struct {
	DType string
	Shape []int
	F32   []float32
	I64   []int64
}

// StateDict holds the tensors of a checkpoint; Keys lists them in file order.
type StateDict struct {
	Keys    []string
	Tensors map[string]Tensor
}

// Load reads a checkpoint file; errors are prefixed with its path.
func Load(path string) (*StateDict, error) {
	f, size, err := regfile.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sd, err := Read(f, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return sd, nil
}

// Read reads a checkpoint of size bytes. The result is the top-level dict of tensors, or the one
// a training checkpoint holds under "state_dict" or "model". Errors read "<class>: <where>: <what>"
// and wrap ErrCorrupt, ErrForbidden, ErrLimit, ErrUnsupported or ErrNotStateDict.
func Read(r io.ReaderAt, size int64) (*StateDict, error) {
	sd, err := read(r, size)
	if err != nil {
		var c *classErr
		if errors.As(err, &c) {
			return nil, fmt.Errorf("%w: %s", c.class, err.Error())
		}
		return nil, err
	}
	return sd, nil
}

func read(r io.ReaderAt, size int64) (*StateDict, error) {
	if size < 0 {
		return nil, errf(ErrCorrupt, "negative size")
	}
	head := make([]byte, 4)
	n, err := r.ReadAt(head, 0)
	if n == 0 && size > 0 && err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read: %w", err) // an I/O failure, not a property of the file
	}
	head = head[:n]
	b := newBudget(size)
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return readZip(r, size, b)
	case bytes.HasPrefix(head, []byte{0x80}):
		return readLegacy(r, size, b)
	}
	tar := make([]byte, 5)
	if k, _ := r.ReadAt(tar, 257); k == 5 && string(tar) == "ustar" {
		return nil, errf(ErrUnsupported, "tar-format checkpoint (torch < 0.4)")
	}
	return nil, errf(ErrCorrupt, "neither a zip archive nor a legacy pickle stream (starts with %q)", head)
}

// zipArchive resolves storages to <dir>/data/<key> records.
type zipArchive struct {
	size     int64
	b        *budget
	entries  map[string]*zip.File // by storage key
	storages map[string]*storageRef
	order    []*storageRef // storages in first-reference order
}

func readZip(r io.ReaderAt, size int64, b *budget) (*StateDict, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, errf(ErrCorrupt, "zip: %v", err)
	}
	// torch names every record <dir>/...; the pickle is <dir>/data.pkl.
	var pkl *zip.File
	for _, f := range zr.File {
		dir, rest, ok := strings.Cut(f.Name, "/")
		if ok && dir != "" && rest == "data.pkl" {
			if pkl != nil {
				return nil, errf(ErrCorrupt, "zip holds two pickles, %s and %s", pkl.Name, f.Name)
			}
			pkl = f
		}
	}
	if pkl == nil {
		return nil, errf(ErrCorrupt, "zip archive has no <dir>/data.pkl record (not a torch.save file?)")
	}
	prefix := strings.TrimSuffix(pkl.Name, "data.pkl")
	z := &zipArchive{size: size, b: b, entries: map[string]*zip.File{}, storages: map[string]*storageRef{}}
	for _, f := range zr.File {
		switch {
		case strings.HasPrefix(f.Name, prefix+"data/"):
			key := strings.TrimPrefix(f.Name, prefix+"data/")
			if z.entries[key] != nil {
				return nil, errf(ErrCorrupt, "zip holds record %s twice", f.Name)
			}
			z.entries[key] = f
		case f.Name == prefix+"byteorder": // written by torch ≥ 2.1; absent means little-endian
			order, err := z.read(f)
			if err != nil {
				return nil, err
			}
			if string(order) != "little" {
				return nil, errf(ErrUnsupported, "byte order %q", order)
			}
		}
	}
	data, err := z.read(pkl)
	if err != nil {
		return nil, err
	}
	var tensors []*tensorRef
	u := &unpickler{r: newReader(bytes.NewReader(data), 0, int64(len(data))), what: "data.pkl",
		persist: z.persistentLoad, b: b, tensors: &tensors}
	root, err := u.load()
	if err != nil {
		return nil, err
	}
	return finish(root, tensors, z.order, b)
}

// read returns a record's bytes. Records must be stored uncompressed, as torch writes them, so
// their size is bounded by the file's; reading to EOF makes archive/zip verify the CRC-32.
func (z *zipArchive) read(f *zip.File) ([]byte, error) {
	if f.Method != zip.Store {
		return nil, errf(ErrUnsupported, "zip record %s is compressed (method %d); torch stores records uncompressed", f.Name, f.Method)
	}
	if f.UncompressedSize64 > uint64(z.size) {
		return nil, errf(ErrCorrupt, "zip record %s declares %d bytes in a %d-byte file", f.Name, f.UncompressedSize64, z.size)
	}
	n := int64(f.UncompressedSize64)
	if err := z.b.charge(n); err != nil {
		return nil, fmt.Errorf("zip record %s: %w", f.Name, err)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, errf(ErrCorrupt, "zip record %s: %v", f.Name, err)
	}
	defer rc.Close()
	buf := make([]byte, n)
	if _, err := io.ReadFull(rc, buf); err != nil {
		return nil, errf(ErrCorrupt, "zip record %s: %v", f.Name, err)
	}
	var one [1]byte
	for range 16 {
		k, err := rc.Read(one[:])
		if k > 0 {
			return nil, errf(ErrCorrupt, "zip record %s is longer than declared", f.Name)
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, errf(ErrCorrupt, "zip record %s: %v", f.Name, err)
		}
	}
	return nil, errf(ErrCorrupt, "zip record %s does not end", f.Name)
}

// storageFields reads the fields both containers' persistent ids share: the storage type (1),
// the storage key (2) and the element count (4).
func storageFields(t pyTuple) (storageType, string, int64, error) {
	st, ok := t[1].(storageType)
	if !ok {
		return st, "", 0, errf(ErrCorrupt, "storage type is %s", an(t[1]))
	}
	key, ok := asString(t[2])
	if !ok {
		return st, "", 0, errf(ErrCorrupt, "storage key is %s", an(t[2]))
	}
	numel, ok := t[4].(int64)
	if !ok || numel < 0 {
		return st, key, 0, errf(ErrCorrupt, "storage %q: element count %s", key, brief(t[4]))
	}
	return st, key, numel, nil
}

// persistentLoad resolves a zip persistent id ("storage", type, key, location, numel).
func (z *zipArchive) persistentLoad(pid any) (any, error) {
	t, ok := pid.(pyTuple)
	if !ok || len(t) != 5 {
		return nil, errf(ErrCorrupt, "persistent id is %s, not a 5-tuple", an(pid))
	}
	if tag, _ := asString(t[0]); tag != "storage" {
		return nil, errf(ErrUnsupported, "persistent id of kind %s", brief(t[0]))
	}
	st, key, numel, err := storageFields(t)
	if err != nil {
		return nil, err
	}
	if s := z.storages[key]; s != nil {
		if s.dt != st.dt || s.numel != numel {
			return nil, errf(ErrCorrupt, "storage %q declared as %d %s and as %d %s", key, s.numel, s.dt.name, numel, st.dt.name)
		}
		return s, nil
	}
	if err := z.b.charge(128); err != nil {
		return nil, err
	}
	s := &storageRef{key: key, dt: st.dt, numel: numel}
	f := z.entries[key]
	nbytes, ok := mulOK(numel, st.dt.size)
	switch {
	case f == nil:
		s.err = errf(ErrCorrupt, "no zip record data/%s", key)
	case !ok || uint64(nbytes) != f.UncompressedSize64: // the CVE-2026-24747 shape
		s.err = errf(ErrCorrupt, "declared %d %s elements (%d bytes) but record data/%s holds %d bytes",
			numel, st.dt.name, nbytes, key, f.UncompressedSize64)
	default:
		var data []byte
		s.load = func() ([]byte, error) {
			if data == nil {
				var err error
				if data, err = z.read(f); err != nil {
					return nil, err
				}
			}
			return data, nil
		}
	}
	z.storages[key] = s
	z.order = append(z.order, s)
	return s, nil
}

// legacyMagic is the first pickle of a legacy file: 0x1950a86a20f9469cfc6c.
var legacyMagic, _ = new(big.Int).SetString("1950a86a20f9469cfc6c", 16)

// legacyRoot is a storage of a legacy file, stored whole after the key list.
type legacyRoot struct {
	dt     dtype
	numel  int64
	ref    *storageRef // the storage itself (views get their own refs)
	dataAt int64       // file offset of its bytes; -1 until the key list places it
}

type legacyArchive struct {
	r     io.ReaderAt
	size  int64
	b     *budget
	roots map[string]*legacyRoot
	order []string // roots in first-reference order, for deterministic errors
	views map[string]*storageRef
}

func readLegacy(r io.ReaderAt, size int64, b *budget) (*StateDict, error) {
	src := newReader(r, 0, size)
	var tensors []*tensorRef
	run := func(what string, persist persistentLoader) (any, error) {
		u := &unpickler{r: src, what: what, persist: persist, b: b, tensors: &tensors}
		return u.load()
	}
	magic, err := run("legacy header (magic number)", nil)
	if err != nil {
		return nil, err
	}
	if m, ok := magic.(*big.Int); !ok || m.Cmp(legacyMagic) != 0 {
		return nil, errf(ErrCorrupt, "legacy magic number is %s, not %v", brief(magic), legacyMagic)
	}
	proto, err := run("legacy header (protocol version)", nil)
	if err != nil {
		return nil, err
	}
	if proto != int64(1001) {
		return nil, errf(ErrUnsupported, "legacy protocol version %s (want 1001)", brief(proto))
	}
	info, err := run("legacy header (system info)", nil)
	if err != nil {
		return nil, err
	}
	if d, ok := info.(*pyDict); !ok {
		return nil, errf(ErrCorrupt, "legacy system info is %s, not a dict", an(info))
	} else if le, ok := d.get("little_endian"); ok && le != true {
		return nil, errf(ErrUnsupported, "big-endian legacy checkpoint")
	}
	lg := &legacyArchive{r: r, size: size, b: b, roots: map[string]*legacyRoot{}, views: map[string]*storageRef{}}
	root, err := run("object pickle", lg.persistentLoad)
	if err != nil {
		return nil, err
	}
	keysV, err := run("storage key list", nil)
	if err != nil {
		return nil, err
	}
	keys, ok := keysV.(*pyList)
	if !ok {
		return nil, errf(ErrCorrupt, "storage key list is %s", an(keysV))
	}
	for _, kv := range keys.items {
		key, ok := asString(kv)
		if !ok {
			return nil, errf(ErrCorrupt, "storage key list holds %s", an(kv))
		}
		rt := lg.roots[key]
		if rt == nil {
			return nil, errf(ErrCorrupt, "storage %q is listed but no tensor uses it", key)
		}
		if rt.dataAt >= 0 {
			return nil, errf(ErrCorrupt, "storage %q is listed twice", key)
		}
		cnt, err := src.bytes(8)
		if err != nil {
			return nil, fmt.Errorf("storage %q: element count: %w", key, err)
		}
		if n := int64(binary.LittleEndian.Uint64(cnt)); n != rt.numel {
			return nil, errf(ErrCorrupt, "storage %q: the file stores %d elements, the pickle declared %d", key, n, rt.numel)
		}
		rt.dataAt = src.pos
		if err := src.skip(rt.numel * rt.dt.size); err != nil { // product bounded by persistentLoad
			return nil, fmt.Errorf("storage %q (%d %s elements): %w", key, rt.numel, rt.dt.name, err)
		}
	}
	for _, key := range lg.order {
		if lg.roots[key].dataAt < 0 {
			return nil, errf(ErrCorrupt, "storage %q has no data in the file", key)
		}
	}
	if n := src.remaining(); n != 0 {
		return nil, errf(ErrCorrupt, "%d bytes after the last storage", n)
	}
	return finish(root, tensors, nil, b) // legacy storages were checked against the data already
}

// persistentLoad resolves a legacy persistent id
// ("storage", type, root key, location, root numel, view) where view is None or
// (view key, offset, numel) in elements of the root.
func (lg *legacyArchive) persistentLoad(pid any) (any, error) {
	t, ok := pid.(pyTuple)
	if !ok || len(t) == 0 {
		return nil, errf(ErrCorrupt, "persistent id is %s, not a tuple", an(pid))
	}
	tag, _ := asString(t[0])
	if tag == "module" {
		return nil, errf(ErrUnsupported, "the file pickles a whole nn.Module; save and load its state_dict() instead")
	}
	if tag != "storage" || len(t) != 6 {
		return nil, errf(ErrCorrupt, "persistent id of kind %s with %d fields", brief(t[0]), len(t))
	}
	st, key, numel, err := storageFields(t)
	if err != nil {
		return nil, err
	}
	rt := lg.roots[key]
	if rt == nil {
		// A storage larger than the file cannot follow in it; refusing now keeps later
		// offset arithmetic within int64.
		if nbytes, ok := mulOK(numel, st.dt.size); !ok || nbytes > lg.size {
			return nil, errf(ErrCorrupt, "storage %q declares %d %s elements, more than the %d-byte file holds", key, numel, st.dt.name, lg.size)
		}
		if err := lg.b.charge(128); err != nil {
			return nil, err
		}
		rt = &legacyRoot{dt: st.dt, numel: numel, dataAt: -1}
		rt.ref = &storageRef{key: key, dt: st.dt, numel: numel, load: lg.loader(rt, 0, numel)}
		lg.roots[key] = rt
		lg.order = append(lg.order, key)
	} else if rt.dt != st.dt || rt.numel != numel {
		return nil, errf(ErrCorrupt, "storage %q declared as %d %s and as %d %s", key, rt.numel, rt.dt.name, numel, st.dt.name)
	}
	if t[5] == nil {
		return rt.ref, nil
	}
	view, ok := t[5].(pyTuple)
	if !ok || len(view) != 3 {
		return nil, errf(ErrCorrupt, "storage %q: view metadata is %s, not a 3-tuple", key, an(t[5]))
	}
	vkey, ok1 := asString(view[0])
	off, ok2 := view[1].(int64)
	vn, ok3 := view[2].(int64)
	if !ok1 || !ok2 || !ok3 {
		return nil, errf(ErrCorrupt, "storage %q: malformed view metadata", key)
	}
	if off < 0 || vn < 0 || off > numel-vn {
		return nil, errf(ErrCorrupt, "storage view %q (offset %d, %d elements) exceeds storage %q (%d elements)", vkey, off, vn, key, numel)
	}
	if v := lg.views[vkey]; v != nil { // torch keeps the first view under a key
		return v, nil
	}
	if err := lg.b.charge(128); err != nil {
		return nil, err
	}
	v := &storageRef{key: key + "/" + vkey, dt: st.dt, numel: vn, load: lg.loader(rt, off, vn)}
	lg.views[vkey] = v
	return v, nil
}

// loader reads elements [off, off+n) of a root storage once its data offset is known.
func (lg *legacyArchive) loader(rt *legacyRoot, off, n int64) func() ([]byte, error) {
	var data []byte
	return func() ([]byte, error) {
		if data != nil {
			return data, nil
		}
		nb := n * rt.dt.size
		if err := lg.b.charge(nb); err != nil {
			return nil, err
		}
		buf := make([]byte, nb)
		if k, err := lg.r.ReadAt(buf, rt.dataAt+off*rt.dt.size); int64(k) < nb {
			return nil, errf(ErrCorrupt, "reading storage: %v", err)
		}
		data = buf
		return data, nil
	}
}

// finish picks the state dict out of the unpickled value, checks every tensor and storage the
// pickle built and materialises the state dict's tensors.
func finish(root any, all []*tensorRef, storages []*storageRef, b *budget) (*StateDict, error) {
	d, err := selectStateDict(root)
	if err != nil {
		return nil, err
	}
	names := map[*tensorRef]bool{}
	for i, k := range d.keys {
		t := d.vals[i].(*tensorRef)
		if err := t.check(); err != nil {
			return nil, fmt.Errorf("tensor %q: %w", k, err)
		}
		names[t] = true
	}
	for _, t := range all { // tensors elsewhere (optimizer state, ...) are checked too
		if !names[t] {
			if err := t.check(); err != nil {
				return nil, fmt.Errorf("tensor outside the state dict (%s, byte %d): %w", t.what, t.at, err)
			}
		}
	}
	for _, s := range storages { // including any no tensor uses
		if s.err != nil {
			return nil, fmt.Errorf("storage %q: %w", s.key, s.err)
		}
	}
	var need int64
	for i, k := range d.keys {
		t := d.vals[i].(*tensorRef)
		n, ok := mulOK(t.numel(), t.outSize())
		if !ok || n > math.MaxInt64-need {
			return nil, errf(ErrLimit, "tensor %q: %v elements", k, t.size)
		}
		need += n
	}
	if err := b.charge(need); err != nil {
		return nil, fmt.Errorf("tensors need %d bytes: %w", need, err)
	}
	sd := &StateDict{Keys: make([]string, len(d.keys)), Tensors: make(map[string]Tensor, len(d.keys))}
	for i, k := range d.keys {
		name := k.(string)
		t := d.vals[i].(*tensorRef)
		data, err := t.storage.load()
		if err != nil {
			return nil, fmt.Errorf("tensor %q: storage %q: %w", name, t.storage.key, err)
		}
		sd.Keys[i] = name
		sd.Tensors[name] = t.gather(data)
	}
	return sd, nil
}

// selectStateDict returns the dict of tensors: the value itself, or what a training checkpoint
// holds under "state_dict" or "model".
func selectStateDict(v any) (*pyDict, error) {
	d, ok := v.(*pyDict)
	if !ok {
		return nil, errf(ErrNotStateDict, "the file holds %s, not a dict of tensors", an(v))
	}
	why := tensorDictProblem(d)
	if why == "" {
		return d, nil
	}
	for _, k := range []string{"state_dict", "model"} {
		inner, ok := d.get(k)
		if !ok {
			continue
		}
		id, ok := inner.(*pyDict)
		if !ok {
			return nil, errf(ErrNotStateDict, "%q holds %s, not a dict of tensors", k, an(inner))
		}
		if p := tensorDictProblem(id); p != "" {
			return nil, errf(ErrNotStateDict, "%q: %s", k, p)
		}
		return id, nil
	}
	return nil, errf(ErrNotStateDict, "top-level dict (keys %s) %s, and has no \"state_dict\" or \"model\" entry", keyList(d), why)
}

// tensorDictProblem says why d is not a dict of string keys to tensors, or "" if it is.
func tensorDictProblem(d *pyDict) string {
	for i, k := range d.keys {
		s, ok := k.(string)
		if !ok {
			return fmt.Sprintf("has a key of type %s", describe(k))
		}
		if _, ok := d.vals[i].(*tensorRef); !ok {
			return fmt.Sprintf("maps %q to %s, not a tensor", s, an(d.vals[i]))
		}
	}
	return ""
}

func keyList(d *pyDict) string {
	var parts []string
	for i, k := range d.keys {
		if i == 8 {
			parts = append(parts, fmt.Sprintf("… %d more", len(d.keys)-i))
			break
		}
		parts = append(parts, brief(k))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// CheckFinite returns an error naming the first NaN or ±Inf value, if any.
func (t Tensor) CheckFinite() error {
	for i, v := range t.F32 {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("element %d of %v is %v", i, t.Shape, v)
		}
	}
	return nil
}

// CheckFinite returns an error naming the first tensor holding a NaN or ±Inf, if any.
func (sd *StateDict) CheckFinite() error {
	for _, k := range sd.Keys {
		if err := sd.Tensors[k].CheckFinite(); err != nil {
			return fmt.Errorf("tensor %q: %w", k, err)
		}
	}
	return nil
}
