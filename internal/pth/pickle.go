package pth

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits on what one file may make the reader build. Pickles written by Python stay far below
// them: its pickler recurses per nesting level (so MARKs nest a few hundred deep at most) and
// batches list and dict items by 1000.
const (
	maxStack     = 1 << 18 // values on the pickle stack
	maxMarks     = 1 << 10 // MARKs open at once (nesting depth)
	maxMemo      = 1 << 20 // memo entries per pickle
	maxObjects   = 1 << 22 // containers, strings and tensors built, whole file
	maxLine      = 1 << 10 // text-opcode argument (GLOBAL names, INT, ...)
	maxLongBytes = 64      // LONG1/LONG4 payload; the legacy magic number needs 10
	maxDims      = 64      // tensor rank
	allocFactor  = 16      // allocation budget: allocFactor × file size + allocSlack
	allocSlack   = 1 << 20
)

// Python values as the unpickler builds them: nil (None), bool, int64, *big.Int, float64,
// string, pyBytes, pyTuple, *pyList, *pyDict, callable, storageType, *storageRef, *tensorRef.
type (
	pyTuple []any
	pyBytes []byte
	pyList  struct{ items []any }
)

// pyDict keeps insertion order, as Python's dict does; index maps hashed keys to positions.
type pyDict struct {
	keys    []any
	vals    []any
	index   map[any]int
	ordered bool // collections.OrderedDict: the only object that takes BUILD (torch's _metadata)
}

func newDict(ordered bool) *pyDict { return &pyDict{index: map[any]int{}, ordered: ordered} }

func (d *pyDict) get(k string) (any, bool) {
	i, ok := d.index[k]
	if !ok {
		return nil, false
	}
	return d.vals[i], true
}

// Hashed forms of dict keys whose Go values are not comparable or would collide.
type (
	noneKey  struct{}
	bigKey   string
	bytesKey string
	tupleKey string
)

// hashKey maps a Python key to a comparable Go value with Python's equality (True == 1 == 1.0).
// Tuple keys are limited to a few scalars so that hashing a memoised key stays cheap.
func (u *unpickler) hashKey(k any, inTuple bool) (any, error) {
	switch k := k.(type) {
	case string:
		return k, nil
	case int64:
		return k, nil
	case bool:
		if k {
			return int64(1), nil
		}
		return int64(0), nil
	case float64:
		if k == math.Trunc(k) && math.Abs(k) < 1<<63 {
			return int64(k), nil
		}
		return k, nil
	case nil:
		return noneKey{}, nil
	case *big.Int:
		return bigKey(k.String()), nil
	case pyBytes:
		if err := u.b.charge(int64(len(k))); err != nil {
			return nil, err
		}
		return bytesKey(k), nil
	case pyTuple:
		if inTuple || len(k) > 16 {
			return nil, errf(ErrUnsupported, "dict key is a nested or long tuple")
		}
		var sb strings.Builder
		for _, e := range k {
			h, err := u.hashKey(e, true)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(&sb, "%T:%v,", h, h)
		}
		return tupleKey(sb.String()), nil
	}
	return nil, errf(ErrCorrupt, "dict key of type %s is unhashable or unsupported", describe(k))
}

func (u *unpickler) setItem(d *pyDict, k, v any) error {
	h, err := u.hashKey(k, false)
	if err != nil {
		return err
	}
	if i, ok := d.index[h]; ok { // Python keeps the first position and the last value
		d.vals[i] = v
		return nil
	}
	if err := u.newObj(48); err != nil {
		return err
	}
	d.index[h] = len(d.keys)
	d.keys = append(d.keys, k)
	d.vals = append(d.vals, v)
	return nil
}

// callable is an allowlisted function or class that REDUCE/NEWOBJ may apply. Nothing is ever
// executed: each one is interpreted by call.
type callable int

const (
	callOrderedDict callable = iota + 1
	callRebuildTensorV2
	callRebuildTensor
	callRebuildParameter
	callRebuildParameterWithState
	callSize
)

var callableNames = map[callable]string{
	callOrderedDict:               "collections.OrderedDict",
	callRebuildTensorV2:           "torch._utils._rebuild_tensor_v2",
	callRebuildTensor:             "torch._utils._rebuild_tensor",
	callRebuildParameter:          "torch._utils._rebuild_parameter",
	callRebuildParameterWithState: "torch._utils._rebuild_parameter_with_state",
	callSize:                      "torch.Size",
}

// storageType is an allowlisted storage class (torch.FloatStorage, ...): it only tags the
// persistent ids of storages with their dtype.
type storageType struct {
	name string
	dt   dtype
}

// resolveGlobal is the allowlist: anything it does not name is refused.
func resolveGlobal(module, name string) (any, error) {
	full := module + "." + name
	for c, n := range callableNames {
		if n == full {
			return c, nil
		}
	}
	// torch.cuda.*Storage appears in legacy files saved from a GPU; torch itself maps any
	// *Storage name to its CPU type.
	if module == "torch" || module == "torch.cuda" {
		if dt, ok := storageDTypes[name]; ok {
			return storageType{name: full, dt: dt}, nil
		}
	}
	return nil, errf(ErrForbidden, "global %s is not on the allowlist of state-dict types", full)
}

// describe names a value's Python type for error messages.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int64, *big.Int:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case pyBytes:
		return "bytes"
	case pyTuple:
		return "tuple"
	case *pyList:
		return "list"
	case *pyDict:
		if v.ordered {
			return "OrderedDict"
		}
		return "dict"
	case callable:
		return callableNames[v]
	case storageType:
		return v.name
	case *storageRef:
		return "storage"
	case *tensorRef:
		return "tensor"
	}
	return fmt.Sprintf("%T", v)
}

// an is describe with an indefinite article: "a list", "an int", "None".
func an(v any) string {
	d := describe(v)
	switch {
	case d == "None":
		return d
	case strings.ContainsRune("aeiouAEIOU", rune(d[0])):
		return "an " + d
	}
	return "a " + d
}

// brief shows a scalar's value and any other value's type, keeping messages short whatever
// the file holds.
func brief(v any) string {
	switch v := v.(type) {
	case int64, bool, float64, *big.Int:
		return fmt.Sprint(v)
	case string:
		if len(v) > 40 {
			return fmt.Sprintf("%q…", v[:40])
		}
		return fmt.Sprintf("%q", v)
	}
	return an(v)
}

// reader reads a byte range of an io.ReaderAt through a small buffer, refusing any read past
// the range's end before allocating for it.
type reader struct {
	ra    io.ReaderAt
	pos   int64 // absolute offset of the next byte
	end   int64
	buf   []byte
	bufAt int64
}

var errTruncated = errf(ErrCorrupt, "unexpected end of data (truncated file?)")

func newReader(ra io.ReaderAt, off, end int64) *reader {
	return &reader{ra: ra, pos: off, end: end}
}

func (r *reader) remaining() int64 { return r.end - r.pos }

func (r *reader) fill() error {
	n := min(r.end-r.pos, 64<<10)
	if n <= 0 {
		return errTruncated
	}
	if cap(r.buf) < int(n) {
		r.buf = make([]byte, n)
	}
	r.buf = r.buf[:n]
	k, err := r.ra.ReadAt(r.buf, r.pos)
	if k < int(n) {
		if err == nil || errors.Is(err, io.EOF) {
			return errTruncated
		}
		return errf(ErrCorrupt, "read at %d: %v", r.pos, err)
	}
	r.bufAt = r.pos
	return nil
}

func (r *reader) byte() (byte, error) {
	if r.pos >= r.end {
		return 0, errTruncated
	}
	if r.pos < r.bufAt || r.pos >= r.bufAt+int64(len(r.buf)) {
		if err := r.fill(); err != nil {
			return 0, err
		}
	}
	c := r.buf[r.pos-r.bufAt]
	r.pos++
	return c, nil
}

// bytes returns the next n bytes in a fresh slice.
func (r *reader) bytes(n int64) ([]byte, error) {
	if n < 0 || n > r.remaining() {
		return nil, errTruncated
	}
	out := make([]byte, n)
	done := int64(0)
	if r.pos >= r.bufAt && r.pos < r.bufAt+int64(len(r.buf)) {
		done = int64(copy(out, r.buf[r.pos-r.bufAt:]))
	}
	if done < n {
		k, err := r.ra.ReadAt(out[done:], r.pos+done)
		if int64(k) < n-done {
			if err == nil || errors.Is(err, io.EOF) {
				return nil, errTruncated
			}
			return nil, errf(ErrCorrupt, "read at %d: %v", r.pos+done, err)
		}
	}
	r.pos += n
	return out, nil
}

func (r *reader) skip(n int64) error {
	if n < 0 || n > r.remaining() {
		return errTruncated
	}
	r.pos += n
	return nil
}

// line reads a text-opcode argument up to its newline.
func (r *reader) line() (string, error) {
	var sb strings.Builder
	for {
		c, err := r.byte()
		if err != nil {
			return "", err
		}
		if c == '\n' {
			return sb.String(), nil
		}
		if sb.Len() >= maxLine {
			return "", errf(ErrLimit, "text argument longer than %d bytes", maxLine)
		}
		sb.WriteByte(c)
	}
}

func (r *reader) uint(n int) (uint64, error) {
	var v uint64
	for i := 0; i < n; i++ {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= uint64(c) << (8 * i)
	}
	return v, nil
}

// budget bounds what a file can make the reader allocate, in bytes and in objects.
type budget struct {
	limit, left int64
	objects     int64
}

func newBudget(size int64) *budget {
	lim := int64(math.MaxInt64)
	if size < (math.MaxInt64-allocSlack)/allocFactor {
		lim = allocFactor*size + allocSlack
	}
	return &budget{limit: lim, left: lim}
}

func (b *budget) charge(n int64) error {
	if n < 0 || n > b.left {
		return errf(ErrLimit, "the file asks for more memory than %d bytes (%d× its size)", b.limit, allocFactor)
	}
	b.left -= n
	return nil
}

// persistentLoader resolves a BINPERSID id to a storage; nil where a pickle may hold none.
type persistentLoader func(pid any) (any, error)

type unpickler struct {
	r       *reader
	what    string // the pickle's name in errors ("data.pkl", "object pickle", ...)
	stack   []any
	marks   []int
	memo    map[uint64]any
	persist persistentLoader
	b       *budget
	tensors *[]*tensorRef // every tensor rebuilt, so all can be checked, not just the returned ones
}

func (u *unpickler) newObj(bytes int64) error {
	u.b.objects++
	if u.b.objects > maxObjects {
		return errf(ErrLimit, "more than %d objects", maxObjects)
	}
	return u.b.charge(bytes)
}

func (u *unpickler) push(v any) error {
	if len(u.stack) >= maxStack {
		return errf(ErrLimit, "pickle stack deeper than %d", maxStack)
	}
	u.stack = append(u.stack, v)
	return nil
}

func (u *unpickler) markBase() int {
	if len(u.marks) == 0 {
		return 0
	}
	return u.marks[len(u.marks)-1]
}

var errUnderflow = errf(ErrCorrupt, "pickle stack underflow")

func (u *unpickler) pop() (any, error) {
	if len(u.stack) <= u.markBase() {
		return nil, errUnderflow
	}
	v := u.stack[len(u.stack)-1]
	u.stack = u.stack[:len(u.stack)-1]
	return v, nil
}

func (u *unpickler) top() (any, error) {
	if len(u.stack) <= u.markBase() {
		return nil, errUnderflow
	}
	return u.stack[len(u.stack)-1], nil
}

// popMark removes the values above the last MARK, and the MARK, returning them in a new slice
// (the stack's backing array is reused by later pushes).
func (u *unpickler) popMark() ([]any, error) {
	if len(u.marks) == 0 {
		return nil, errf(ErrCorrupt, "no MARK on the stack")
	}
	m := u.marks[len(u.marks)-1]
	u.marks = u.marks[:len(u.marks)-1]
	if err := u.newObj(16 * int64(len(u.stack)-m)); err != nil {
		return nil, err
	}
	items := append([]any(nil), u.stack[m:]...)
	u.stack = u.stack[:m]
	return items, nil
}

func (u *unpickler) memoPut(k uint64) error {
	v, err := u.top()
	if err != nil {
		return err
	}
	if _, ok := u.memo[k]; !ok {
		if len(u.memo) >= maxMemo {
			return errf(ErrLimit, "memo larger than %d entries", maxMemo)
		}
		if err := u.newObj(32); err != nil {
			return err
		}
	}
	u.memo[k] = v
	return nil
}

func (u *unpickler) memoGet(k uint64) error {
	v, ok := u.memo[k]
	if !ok {
		return errf(ErrCorrupt, "memo entry %d referenced before it was stored", k)
	}
	return u.push(v)
}

func (u *unpickler) str(n int64, what string) (string, error) {
	if err := u.newObj(n); err != nil {
		return "", err
	}
	b, err := u.r.bytes(n)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", errf(ErrCorrupt, "%s is not valid UTF-8", what)
	}
	return string(b), nil
}

func (u *unpickler) rawBytes(n int64) (pyBytes, error) {
	if err := u.newObj(n); err != nil {
		return nil, err
	}
	b, err := u.r.bytes(n)
	return pyBytes(b), err
}

// long decodes a little-endian two's-complement integer (LONG1/LONG4).
func (u *unpickler) long(n int64) (any, error) {
	if n > maxLongBytes {
		return nil, errf(ErrLimit, "integer of %d bytes", n)
	}
	b, err := u.r.bytes(n)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return int64(0), nil
	}
	if n <= 8 {
		var v uint64
		for i := n - 1; i >= 0; i-- {
			v = v<<8 | uint64(b[i])
		}
		shift := 64 - 8*uint(n)
		return int64(v<<shift) >> shift, nil
	}
	be := make([]byte, n)
	for i := range b {
		be[n-1-int64(i)] = b[i]
	}
	v := new(big.Int).SetBytes(be)
	if b[n-1]&0x80 != 0 {
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(8*n)))
	}
	if v.IsInt64() {
		return v.Int64(), nil
	}
	return v, nil
}

func (u *unpickler) textInt(s string) (any, error) {
	s = strings.TrimSuffix(s, "L")
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return v, nil
	}
	if len(s) > 3*maxLongBytes {
		return nil, errf(ErrLimit, "integer of %d digits", len(s))
	}
	v, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return nil, errf(ErrCorrupt, "bad integer %q", s)
	}
	return v, nil
}

func asString(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case pyBytes: // keys written by Python 2 and read with encoding="bytes"
		if utf8.Valid(v) {
			return string(v), true
		}
	}
	return "", false
}

// Opcode names, for error messages.
var opNames = map[byte]string{
	'(': "MARK", '.': "STOP", '0': "POP", '1': "POP_MARK", '2': "DUP", 'F': "FLOAT", 'I': "INT",
	'J': "BININT", 'K': "BININT1", 'L': "LONG", 'M': "BININT2", 'N': "NONE", 'P': "PERSID",
	'Q': "BINPERSID", 'R': "REDUCE", 'S': "STRING", 'T': "BINSTRING", 'U': "SHORT_BINSTRING",
	'V': "UNICODE", 'X': "BINUNICODE", 'a': "APPEND", 'b': "BUILD", 'c': "GLOBAL", 'd': "DICT",
	'}': "EMPTY_DICT", 'e': "APPENDS", 'g': "GET", 'h': "BINGET", 'i': "INST", 'j': "LONG_BINGET",
	'l': "LIST", ']': "EMPTY_LIST", 'o': "OBJ", 'p': "PUT", 'q': "BINPUT", 'r': "LONG_BINPUT",
	's': "SETITEM", 't': "TUPLE", ')': "EMPTY_TUPLE", 'u': "SETITEMS", 'G': "BINFLOAT",
	0x80: "PROTO", 0x81: "NEWOBJ", 0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4", 0x85: "TUPLE1",
	0x86: "TUPLE2", 0x87: "TUPLE3", 0x88: "NEWTRUE", 0x89: "NEWFALSE", 0x8a: "LONG1", 0x8b: "LONG4",
	'B': "BINBYTES", 'C': "SHORT_BINBYTES", 0x8c: "SHORT_BINUNICODE", 0x8d: "BINUNICODE8",
	0x8e: "BINBYTES8", 0x8f: "EMPTY_SET", 0x90: "ADDITEMS", 0x91: "FROZENSET", 0x92: "NEWOBJ_EX",
	0x93: "STACK_GLOBAL", 0x94: "MEMOIZE", 0x95: "FRAME", 0x96: "BYTEARRAY8", 0x97: "NEXT_BUFFER",
	0x98: "READONLY_BUFFER",
}

// load runs the pickle up to STOP and returns its value. Every failure comes back as one error
// naming the pickle, the byte offset (in data.pkl for zip files, in the file for legacy ones)
// and the opcode.
func (u *unpickler) load() (any, error) {
	if u.memo == nil {
		u.memo = map[uint64]any{}
	}
	for {
		at := u.r.pos
		op, err := u.r.byte()
		if err != nil {
			return nil, fmt.Errorf("%s: byte %d: %w", u.what, at, err)
		}
		v, done, err := u.step(op)
		if err != nil {
			name := opNames[op]
			if name == "" {
				name = fmt.Sprintf("0x%02x", op)
			}
			return nil, fmt.Errorf("%s: byte %d, opcode %s: %w", u.what, at, name, err)
		}
		if done {
			return v, nil
		}
	}
}

func (u *unpickler) step(op byte) (v any, done bool, err error) {
	r := u.r
	switch op {
	case 0x80: // PROTO
		p, err := r.byte()
		if err != nil {
			return nil, false, err
		}
		if p > 5 {
			return nil, false, errf(ErrUnsupported, "pickle protocol %d", p)
		}
	case 0x95: // FRAME: framing only groups opcodes; the length is advisory
		if _, err := r.uint(8); err != nil {
			return nil, false, err
		}
	case '.':
		v, err := u.pop()
		return v, err == nil, err
	case '(':
		if len(u.marks) >= maxMarks {
			return nil, false, errf(ErrLimit, "MARKs nested deeper than %d", maxMarks)
		}
		u.marks = append(u.marks, len(u.stack))
	case '0': // POP: Python pops the MARK itself when nothing lies above it
		if len(u.stack) > u.markBase() {
			_, err = u.pop()
		} else {
			_, err = u.popMark()
		}
	case '1':
		_, err = u.popMark()
	case '2':
		if v, err = u.top(); err == nil {
			err = u.push(v)
		}
	case 'N':
		err = u.push(nil)
	case 0x88:
		err = u.push(true)
	case 0x89:
		err = u.push(false)
	case 'K', 'M', 'J':
		n := 1
		switch op {
		case 'M':
			n = 2
		case 'J':
			n = 4
		}
		var x uint64
		if x, err = r.uint(n); err == nil {
			if op == 'J' {
				err = u.push(int64(int32(uint32(x))))
			} else {
				err = u.push(int64(x))
			}
		}
	case 0x8a, 0x8b: // LONG1, LONG4
		var n uint64
		if op == 0x8a {
			n, err = r.uint(1)
		} else if n, err = r.uint(4); err == nil && int32(uint32(n)) < 0 {
			err = errf(ErrCorrupt, "negative length")
		}
		if err == nil {
			if v, err = u.long(int64(n)); err == nil {
				err = u.push(v)
			}
		}
	case 'I', 'L':
		var s string
		if s, err = r.line(); err == nil {
			switch {
			case op == 'I' && s == "00":
				err = u.push(false)
			case op == 'I' && s == "01":
				err = u.push(true)
			default:
				if v, err = u.textInt(s); err == nil {
					err = u.push(v)
				}
			}
		}
	case 'F':
		var s string
		if s, err = r.line(); err == nil {
			var f float64
			if f, err = strconv.ParseFloat(s, 64); err != nil {
				err = errf(ErrCorrupt, "bad float %q", s)
			} else {
				err = u.push(f)
			}
		}
	case 'G': // BINFLOAT is big-endian
		if b, e := r.bytes(8); e != nil {
			err = e
		} else {
			err = u.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
		}
	case 'X', 0x8c, 0x8d, 'T', 'U': // unicode; Python 2 str, decoded as UTF-8 like torch.load
		n, e := u.length(op)
		if e != nil {
			return nil, false, e
		}
		var s string
		if s, err = u.str(n, "string"); err == nil {
			err = u.push(s)
		}
	case 'B', 'C', 0x8e, 0x96:
		n, e := u.length(op)
		if e != nil {
			return nil, false, e
		}
		var b pyBytes
		if b, err = u.rawBytes(n); err == nil {
			err = u.push(b)
		}
	case ')':
		err = u.push(pyTuple{})
	case 0x85, 0x86, 0x87:
		n := int(op - 0x84)
		t := make(pyTuple, n)
		for i := n - 1; i >= 0 && err == nil; i-- {
			t[i], err = u.pop()
		}
		if err == nil {
			if err = u.newObj(16 * int64(n)); err == nil {
				err = u.push(t)
			}
		}
	case 't':
		var items []any
		if items, err = u.popMark(); err == nil {
			err = u.push(pyTuple(items))
		}
	case ']':
		if err = u.newObj(48); err == nil {
			err = u.push(&pyList{})
		}
	case 'l':
		var items []any
		if items, err = u.popMark(); err == nil {
			err = u.push(&pyList{items: items})
		}
	case '}':
		if err = u.newObj(64); err == nil {
			err = u.push(newDict(false))
		}
	case 'd':
		var items []any
		if items, err = u.popMark(); err == nil {
			d := newDict(false)
			if err = u.setItems(d, items); err == nil {
				err = u.push(d)
			}
		}
	case 'a':
		if v, err = u.pop(); err == nil {
			err = u.appendTo(v)
		}
	case 'e':
		var items []any
		if items, err = u.popMark(); err == nil {
			err = u.appendTo(items...)
		}
	case 's':
		var k, val, t any
		if val, err = u.pop(); err != nil {
			return nil, false, err
		}
		if k, err = u.pop(); err != nil {
			return nil, false, err
		}
		if t, err = u.top(); err != nil {
			return nil, false, err
		}
		d, ok := t.(*pyDict)
		if !ok { // CVE-2026-24747: SETITEM on a non-dict
			return nil, false, errf(ErrCorrupt, "SETITEM on %s", an(t))
		}
		err = u.setItem(d, k, val)
	case 'u':
		var items []any
		var t any
		if items, err = u.popMark(); err != nil {
			return nil, false, err
		}
		if t, err = u.top(); err != nil {
			return nil, false, err
		}
		d, ok := t.(*pyDict)
		if !ok {
			return nil, false, errf(ErrCorrupt, "SETITEMS on %s", an(t))
		}
		err = u.setItems(d, items)
	case 'p', 'g':
		var s string
		if s, err = r.line(); err != nil {
			return nil, false, err
		}
		k, e := strconv.ParseUint(s, 10, 64)
		if e != nil {
			return nil, false, errf(ErrCorrupt, "bad memo index %q", s)
		}
		if op == 'p' {
			err = u.memoPut(k)
		} else {
			err = u.memoGet(k)
		}
	case 'q', 'r', 'h', 'j':
		n := 1
		if op == 'r' || op == 'j' {
			n = 4
		}
		var k uint64
		if k, err = r.uint(n); err == nil {
			if op == 'q' || op == 'r' {
				err = u.memoPut(k)
			} else {
				err = u.memoGet(k)
			}
		}
	case 0x94: // MEMOIZE
		err = u.memoPut(uint64(len(u.memo)))
	case 'c':
		var mod, name string
		if mod, err = r.line(); err != nil {
			return nil, false, err
		}
		if name, err = r.line(); err != nil {
			return nil, false, err
		}
		if v, err = resolveGlobal(mod, name); err == nil {
			err = u.push(v)
		}
	case 0x93: // STACK_GLOBAL
		var mv, nv any
		if nv, err = u.pop(); err != nil {
			return nil, false, err
		}
		if mv, err = u.pop(); err != nil {
			return nil, false, err
		}
		mod, ok1 := mv.(string)
		name, ok2 := nv.(string)
		if !ok1 || !ok2 {
			return nil, false, errf(ErrCorrupt, "STACK_GLOBAL needs two strings, got %s and %s", an(mv), an(nv))
		}
		if v, err = resolveGlobal(mod, name); err == nil {
			err = u.push(v)
		}
	case 'R', 0x81: // REDUCE, NEWOBJ: apply an allowlisted callable to an argument tuple
		var args, fn any
		if args, err = u.pop(); err != nil {
			return nil, false, err
		}
		if fn, err = u.pop(); err != nil {
			return nil, false, err
		}
		if v, err = u.call(fn, args); err == nil {
			err = u.push(v)
		}
	case 0x92: // NEWOBJ_EX
		var kw, args, fn any
		if kw, err = u.pop(); err != nil {
			return nil, false, err
		}
		if args, err = u.pop(); err != nil {
			return nil, false, err
		}
		if fn, err = u.pop(); err != nil {
			return nil, false, err
		}
		if d, ok := kw.(*pyDict); !ok || len(d.keys) != 0 {
			return nil, false, errf(ErrUnsupported, "NEWOBJ_EX with keyword arguments")
		}
		if v, err = u.call(fn, args); err == nil {
			err = u.push(v)
		}
	case 'b': // BUILD: only the attribute dict torch attaches to state dicts, which is dropped
		var state, t any
		if state, err = u.pop(); err != nil {
			return nil, false, err
		}
		if t, err = u.top(); err != nil {
			return nil, false, err
		}
		switch t := t.(type) {
		case *pyDict:
			if !t.ordered {
				return nil, false, errf(ErrCorrupt, "BUILD on a plain dict")
			}
		case *tensorRef: // Parameter state (requires_grad, hooks): irrelevant to the values
		default:
			return nil, false, errf(ErrForbidden, "BUILD on %s", an(t))
		}
		switch state.(type) {
		case *pyDict, pyTuple, nil:
		default:
			return nil, false, errf(ErrCorrupt, "BUILD state is %s", an(state))
		}
	case 'Q': // BINPERSID
		var pid any
		if pid, err = u.pop(); err != nil {
			return nil, false, err
		}
		if u.persist == nil {
			return nil, false, errf(ErrCorrupt, "persistent id where none may appear")
		}
		if v, err = u.persist(pid); err == nil {
			err = u.push(v)
		}
	default:
		if name, ok := opNames[op]; ok {
			return nil, false, errf(ErrUnsupported, "opcode %s is not used by state dicts", name)
		}
		return nil, false, errf(ErrCorrupt, "unknown opcode 0x%02x", op)
	}
	return nil, false, err
}

// length reads the length prefix of a string or bytes opcode.
func (u *unpickler) length(op byte) (int64, error) {
	var n uint64
	var err error
	switch op {
	case 0x8c, 'U', 'C':
		n, err = u.r.uint(1)
	case 'X', 'B':
		n, err = u.r.uint(4)
	case 'T': // BINSTRING's length is signed
		n, err = u.r.uint(4)
		if err == nil && int32(uint32(n)) < 0 {
			return 0, errf(ErrCorrupt, "negative length")
		}
	default:
		n, err = u.r.uint(8)
	}
	if err != nil {
		return 0, err
	}
	if n > uint64(u.r.remaining()) {
		return 0, errf(ErrCorrupt, "length %d runs past the end of the data", n)
	}
	return int64(n), nil
}

func (u *unpickler) appendTo(items ...any) error {
	t, err := u.top()
	if err != nil {
		return err
	}
	l, ok := t.(*pyList)
	if !ok {
		return errf(ErrCorrupt, "APPEND to %s", an(t))
	}
	if err := u.newObj(16 * int64(len(items))); err != nil {
		return err
	}
	l.items = append(l.items, items...)
	return nil
}

func (u *unpickler) setItems(d *pyDict, items []any) error {
	if len(items)%2 != 0 {
		return errf(ErrCorrupt, "odd number of items for a dict")
	}
	for i := 0; i < len(items); i += 2 {
		if err := u.setItem(d, items[i], items[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// call interprets an allowlisted callable; nothing else may be called.
func (u *unpickler) call(fn, args any) (any, error) {
	c, ok := fn.(callable)
	if !ok {
		return nil, errf(ErrForbidden, "cannot call %s", an(fn))
	}
	a, ok := args.(pyTuple)
	if !ok {
		return nil, errf(ErrCorrupt, "%s called with %s, not an argument tuple", callableNames[c], an(args))
	}
	bad := func(format string, v ...any) error {
		return errf(ErrCorrupt, "%s: %s", callableNames[c], fmt.Sprintf(format, v...))
	}
	switch c {
	case callOrderedDict:
		if err := u.newObj(64); err != nil {
			return nil, err
		}
		d := newDict(true)
		if len(a) == 0 {
			return d, nil
		}
		if len(a) != 1 {
			return nil, bad("%d arguments", len(a))
		}
		// Python 2 pickled OrderedDict as OrderedDict([[k, v], ...]).
		var pairs []any
		switch p := a[0].(type) {
		case *pyList:
			pairs = p.items
		case pyTuple:
			pairs = p
		default:
			return nil, bad("argument is %s, not a list of pairs", an(a[0]))
		}
		for _, p := range pairs {
			var kv []any
			switch p := p.(type) {
			case *pyList:
				kv = p.items
			case pyTuple:
				kv = p
			}
			if len(kv) != 2 {
				return nil, bad("item is %s, not a (key, value) pair", an(p))
			}
			if err := u.setItem(d, kv[0], kv[1]); err != nil {
				return nil, err
			}
		}
		return d, nil
	case callSize:
		if len(a) != 1 {
			return nil, bad("%d arguments", len(a))
		}
		dims, err := intTuple(a[0])
		if err != nil {
			return nil, bad("%v", err)
		}
		t := make(pyTuple, len(dims))
		for i, d := range dims {
			t[i] = d
		}
		return t, u.newObj(16 * int64(len(t)))
	case callRebuildParameter, callRebuildParameterWithState:
		want := 3
		if c == callRebuildParameterWithState {
			want = 4
		}
		if len(a) != want {
			return nil, bad("%d arguments, want %d", len(a), want)
		}
		t, ok := a[0].(*tensorRef)
		if !ok {
			return nil, bad("data is %s, not a tensor", an(a[0]))
		}
		return t, nil
	case callRebuildTensorV2, callRebuildTensor:
		// _rebuild_tensor(storage, offset, size, stride); v2 adds requires_grad, backward_hooks
		// and, in newer torch, a metadata dict.
		if c == callRebuildTensor && len(a) != 4 || c == callRebuildTensorV2 && len(a) != 6 && len(a) != 7 {
			return nil, bad("%d arguments", len(a))
		}
		st, ok := a[0].(*storageRef)
		if !ok {
			return nil, bad("storage is %s", an(a[0]))
		}
		off, ok := a[1].(int64)
		if !ok {
			return nil, bad("storage offset is %s, not an int", an(a[1]))
		}
		size, err := intTuple(a[2])
		if err != nil {
			return nil, bad("size: %v", err)
		}
		stride, err := intTuple(a[3])
		if err != nil {
			return nil, bad("stride: %v", err)
		}
		if len(size) != len(stride) {
			return nil, bad("size %v and stride %v differ in rank", size, stride)
		}
		if err := u.newObj(96 + 16*int64(len(size))); err != nil {
			return nil, err
		}
		t := &tensorRef{storage: st, offset: off, size: size, stride: stride, what: u.what, at: u.r.pos}
		*u.tensors = append(*u.tensors, t)
		return t, nil
	}
	return nil, errf(ErrForbidden, "cannot call %s", describe(fn))
}

// intTuple reads a tuple (or torch.Size) of ints, such as a tensor's size or stride.
func intTuple(v any) ([]int64, error) {
	t, ok := v.(pyTuple)
	if !ok {
		return nil, fmt.Errorf("%s, not a tuple of ints", an(v))
	}
	if len(t) > maxDims {
		return nil, fmt.Errorf("%d dimensions (at most %d)", len(t), maxDims)
	}
	out := make([]int64, len(t))
	for i, e := range t {
		x, ok := e.(int64)
		if !ok {
			return nil, fmt.Errorf("element %d is %s, not an int", i, an(e))
		}
		out[i] = x
	}
	return out, nil
}
