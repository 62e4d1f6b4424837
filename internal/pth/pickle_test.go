package pth

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"testing"
)

// repr prints an unpickled value the way Python would.
func repr(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		if v {
			return "True"
		}
		return "False"
	case int64:
		return strconv.FormatInt(v, 10)
	case *big.Int:
		return v.String()
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case string:
		return "'" + v + "'"
	case pyBytes:
		return "b'" + string(v) + "'"
	case pyTuple:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = repr(e)
		}
		if len(v) == 1 {
			return "(" + parts[0] + ",)"
		}
		return "(" + strings.Join(parts, ", ") + ")"
	case *pyList:
		parts := make([]string, len(v.items))
		for i, e := range v.items {
			parts[i] = repr(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case *pyDict:
		parts := make([]string, len(v.keys))
		for i, k := range v.keys {
			parts[i] = repr(k) + ": " + repr(v.vals[i])
		}
		s := "{" + strings.Join(parts, ", ") + "}"
		if v.ordered {
			s = "OrderedDict(" + s + ")"
		}
		return s
	}
	return describe(v)
}

func unpickle(b []byte) (any, error) { return unpickleBudget(b, newBudget(int64(len(b)))) }

func unpickleBudget(b []byte, bud *budget) (any, error) {
	var tensors []*tensorRef
	u := &unpickler{r: newReader(bytes.NewReader(b), 0, int64(len(b))), what: "test", b: bud, tensors: &tensors}
	return u.load()
}

func le64(v uint64) string {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return string(b[:])
}

func be64(v uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return string(b[:])
}

const od = "ccollections\nOrderedDict\n"

// TestOpcodes runs one small pickle per opcode family and compares the value with what
// Python's pickle.loads gives for the same bytes.
func TestOpcodes(t *testing.T) {
	for _, c := range []struct{ name, pickle, want string }{
		{"BININT1", "K\x05.", "5"},
		{"BININT2", "M\x01\x02.", "513"},
		{"BININT negative", "J\xff\xff\xff\xff.", "-1"},
		{"LONG1 -1", "\x8a\x01\xff.", "-1"},
		{"LONG1 -32768", "\x8a\x02\x00\x80.", "-32768"},
		{"LONG1 empty", "\x8a\x00.", "0"},
		{"LONG1 2^64", "\x8a\x09" + le64(0) + "\x01.", "18446744073709551616"},
		{"LONG1 -2^64", "\x8a\x09" + le64(0) + "\xff.", "-18446744073709551616"},
		{"LONG1 int64 min", "\x8a\x08" + le64(1<<63) + ".", "-9223372036854775808"},
		{"LONG4", "\x8b\x01\x00\x00\x00\x7f.", "127"},
		{"INT", "I42\n.", "42"},
		{"INT True", "I01\n.", "True"},
		{"INT False", "I00\n.", "False"},
		{"INT big", "I99999999999999999999\n.", "99999999999999999999"},
		{"LONG", "L-7L\n.", "-7"},
		{"FLOAT", "F1.5\n.", "1.5"},
		{"BINFLOAT", "G" + be64(math.Float64bits(-0.25)) + ".", "-0.25"},
		{"NONE, NEWTRUE, NEWFALSE", "N\x88\x89\x87.", "(None, True, False)"},
		{"SHORT_BINUNICODE", "\x8c\x03h\xc3\xa9.", "'hé'"},
		{"BINUNICODE", "X\x03\x00\x00\x00abc.", "'abc'"},
		{"BINUNICODE8", "\x8d" + le64(2) + "hi.", "'hi'"},
		{"BINSTRING", "T\x02\x00\x00\x00py.", "'py'"},
		{"SHORT_BINSTRING", "U\x02py.", "'py'"},
		{"SHORT_BINBYTES", "C\x02ab.", "b'ab'"},
		{"BINBYTES", "B\x01\x00\x00\x00z.", "b'z'"},
		{"BINBYTES8", "\x8e" + le64(1) + "z.", "b'z'"},
		{"BYTEARRAY8", "\x96" + le64(1) + "z.", "b'z'"},
		{"tuples", "((K\x01K\x02K\x03K\x04t)K\x05\x85K\x06K\x07\x86t.", "((1, 2, 3, 4), (), (5,), (6, 7))"},
		{"lists", "](K\x01K\x02eK\x03a(K\x04l\x86.", "([1, 2, 3], [4])"},
		{"dicts", "}(K\x01K\x02K\x03K\x04uK\x05K\x06s(K\x07K\x08d\x86.", "({1: 2, 3: 4, 5: 6}, {7: 8})"},
		{"dict keys True == 1 == 1.0", "}K\x01X\x01\x00\x00\x00as\x88X\x01\x00\x00\x00bsF1.0\nX\x01\x00\x00\x00cs.", "{1: 'c'}"},
		{"tuple keys", "}K\x01X\x01\x00\x00\x00a\x86K\x01sK\x01X\x01\x00\x00\x00a\x86K\x02s.", "{(1, 'a'): 2}"},
		{"BINPUT/BINGET", "K\x07q\x00h\x00\x86.", "(7, 7)"},
		{"PUT/GET", "K\x07p3\ng3\n\x86.", "(7, 7)"},
		{"LONG_BINPUT/LONG_BINGET", "K\x07r\x00\x01\x00\x00j\x00\x01\x00\x00\x86.", "(7, 7)"},
		{"MEMOIZE", "K\x07\x94K\x08\x94h\x00h\x01\x86.", "(7, 8)"},
		{"memo shares the object", "]q\x00K\x01ah\x00K\x02a.", "[1, 2]"},
		{"DUP", "K\x012\x86.", "(1, 1)"},
		{"POP", "K\x01K\x020.", "1"},
		{"POP of a bare MARK", "K\x01(0.", "1"},
		{"POP_MARK", "K\x01(K\x02K\x031.", "1"},
		{"FRAME", "\x95" + le64(3) + "K\x01.", "1"},
		{"PROTO 5", "\x80\x05K\x01.", "1"},
		{"OrderedDict", od + ")R.", "OrderedDict({})"},
		{"OrderedDict via STACK_GLOBAL", "X\x0b\x00\x00\x00collectionsX\x0b\x00\x00\x00OrderedDict\x93)R.", "OrderedDict({})"},
		{"OrderedDict via NEWOBJ", od + ")\x81.", "OrderedDict({})"},
		{"OrderedDict via NEWOBJ_EX", od + ")}\x92.", "OrderedDict({})"},
		{"OrderedDict BUILD drops _metadata", od + ")RK\x01K\x02s}X\x09\x00\x00\x00_metadata}sb.", "OrderedDict({1: 2})"},
		{"OrderedDict BUILD with slot state", od + ")R}N\x86b.", "OrderedDict({})"},
		{"OrderedDict from pairs (Python 2)", od + "((K\x01K\x02t(K\x03K\x04tl\x85R.", "OrderedDict({1: 2, 3: 4})"},
		{"torch.Size", "ctorch\nSize\nK\x02K\x03\x86\x85R.", "(2, 3)"},
		{"storage type", "ctorch.cuda\nHalfStorage\n.", "torch.cuda.HalfStorage"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := unpickle([]byte("\x80\x02" + c.pickle))
			if err != nil {
				t.Fatal(err)
			}
			if got := repr(v); got != c.want {
				t.Errorf("got %s, want %s", got, c.want)
			}
		})
	}
}

// TestOpcodeErrors: each malformed pickle fails with one error of the right class.
func TestOpcodeErrors(t *testing.T) {
	big := func(prefix string, n int, unit, suffix string) string {
		return prefix + strings.Repeat(unit, n) + suffix
	}
	var pairs strings.Builder // [(i, None) for i in range(1000)]
	pairs.WriteString("(")
	for i := range 1000 {
		pairs.Write([]byte{'M', byte(i), byte(i >> 8), 'N', 0x86})
	}
	pairs.WriteString("l")
	for _, c := range []struct {
		name, pickle string
		want         error
		msg          string
	}{
		{"empty", "", ErrCorrupt, "unexpected end of data"},
		{"no STOP", "K\x01", ErrCorrupt, "unexpected end of data"},
		{"unknown opcode", "\xff", ErrCorrupt, "unknown opcode 0xff"},
		{"PROTO 6", "\x80\x06", ErrUnsupported, "protocol 6"},
		{"STRING", "S'a'\n.", ErrUnsupported, "opcode STRING"},
		{"UNICODE", "Va\n.", ErrUnsupported, "opcode UNICODE"},
		{"INST", "ios\nsystem\n.", ErrUnsupported, "opcode INST"},
		{"OBJ", "(o.", ErrUnsupported, "opcode OBJ"},
		{"EXT1", "\x82\x01.", ErrUnsupported, "opcode EXT1"},
		{"EMPTY_SET", "\x8f.", ErrUnsupported, "opcode EMPTY_SET"},
		{"PERSID", "P1\n.", ErrUnsupported, "opcode PERSID"},
		{"NEXT_BUFFER", "\x97.", ErrUnsupported, "opcode NEXT_BUFFER"},
		{"STOP on empty stack", ".", ErrCorrupt, "opcode STOP: pickle stack underflow"},
		{"STOP above a MARK", "K\x01(.", ErrCorrupt, "stack underflow"},
		{"APPEND on empty stack", "a", ErrCorrupt, "stack underflow"},
		{"TUPLE without MARK", "K\x01t.", ErrCorrupt, "no MARK"},
		{"TUPLE2 short", "K\x01\x86.", ErrCorrupt, "stack underflow"},
		{"dangling BINGET", "h\x05.", ErrCorrupt, "memo entry 5 referenced before it was stored"},
		{"dangling GET", "g12\n.", ErrCorrupt, "memo entry 12"},
		{"BINPUT on empty stack", "q\x00.", ErrCorrupt, "stack underflow"},
		{"bad GET index", "gx\n.", ErrCorrupt, "bad memo index"},
		{"bad INT", "I1x\n.", ErrCorrupt, "bad integer"},
		{"bad FLOAT", "Fx\n.", ErrCorrupt, "bad float"},
		{"truncated BININT", "J\x01\x02", ErrCorrupt, "unexpected end of data"},
		{"truncated BINUNICODE", "X\x05\x00\x00\x00ab", ErrCorrupt, "runs past the end"},
		{"huge BINUNICODE8", "\x8d" + le64(1<<62) + ".", ErrCorrupt, "runs past the end"},
		{"truncated GLOBAL", "ccollections\n", ErrCorrupt, "unexpected end of data"},
		{"bad UTF-8", "X\x01\x00\x00\x00\xff.", ErrCorrupt, "not valid UTF-8"},
		{"negative LONG4", "\x8b\xff\xff\xff\xff.", ErrCorrupt, "negative length"},
		{"negative BINSTRING", "T\xff\xff\xff\xff.", ErrCorrupt, "negative length"},
		{"LONG4 too long", "\x8b\x00\x04\x00\x00" + strings.Repeat("\x01", 1024) + ".", ErrLimit, "integer of 1024 bytes"},
		{"text line too long", big("c", 2000, "a", "\n"), ErrLimit, "text argument longer than"},
		{"GLOBAL os.system", "cos\nsystem\n.", ErrForbidden, "global os.system"},
		{"GLOBAL nt.system", "cnt\nsystem\n.", ErrForbidden, "global nt.system"},
		{"GLOBAL torch.load", "ctorch\nload\n.", ErrForbidden, "global torch.load"},
		{"GLOBAL storage in another module", "cnumpy\nFloatStorage\n.", ErrForbidden, "global numpy.FloatStorage"},
		{"GLOBAL complex storage", "ctorch\nComplexFloatStorage\n.", ErrForbidden, "global torch.ComplexFloatStorage"},
		{"STACK_GLOBAL sys.exit", "X\x03\x00\x00\x00sysX\x04\x00\x00\x00exit\x93.", ErrForbidden, "global sys.exit"},
		{"STACK_GLOBAL non-strings", "K\x01K\x02\x93.", ErrCorrupt, "needs two strings"},
		{"REDUCE on a storage type", "ctorch\nFloatStorage\n)R.", ErrForbidden, "cannot call a torch.FloatStorage"},
		{"REDUCE on a string", "X\x01\x00\x00\x00f)R.", ErrForbidden, "cannot call a str"},
		{"REDUCE with a list", od + "]R.", ErrCorrupt, "called with a list, not an argument tuple"},
		{"NEWOBJ on a dict", "})\x81.", ErrForbidden, "cannot call a dict"},
		{"NEWOBJ_EX with kwargs", od + ")}K\x01K\x02s\x92.", ErrUnsupported, "keyword arguments"},
		{"BUILD on a list", "]}b.", ErrForbidden, "BUILD on a list"},
		{"BUILD on a plain dict", "}}b.", ErrCorrupt, "BUILD on a plain dict"},
		{"BUILD with a list state", od + ")R]b.", ErrCorrupt, "BUILD state is a list"},
		{"APPEND to a dict", "}K\x01a.", ErrCorrupt, "APPEND to a dict"},
		{"APPENDS to a tuple", ")(K\x01e.", ErrCorrupt, "APPEND to a tuple"},
		{"SETITEM on a tuple", ")K\x01K\x02s.", ErrCorrupt, "SETITEM on a tuple"},
		{"SETITEMS on a list", "](K\x01K\x02u.", ErrCorrupt, "SETITEMS on a list"},
		{"SETITEMS odd", "}(K\x01u.", ErrCorrupt, "odd number of items"},
		{"unhashable key", "}]K\x01s.", ErrCorrupt, "dict key of type list"},
		{"nested tuple key", "}K\x01\x85\x85K\x01s.", ErrUnsupported, "nested or long tuple"},
		{"persistent id without loader", "K\x01Q.", ErrCorrupt, "persistent id where none may appear"},
		{"OrderedDict of non-pairs", od + "(K\x01l\x85R.", ErrCorrupt, "item is an int, not a (key, value) pair"},
		{"torch.Size of strings", "ctorch\nSize\nX\x01\x00\x00\x00a\x85\x85R.", ErrCorrupt, "element 0 is a str"},
		{"rebuild_tensor_v2 arity", "ctorch._utils\n_rebuild_tensor_v2\n)R.", ErrCorrupt, "_rebuild_tensor_v2: 0 arguments"},
		{"rebuild_tensor_v2 storage", "ctorch._utils\n_rebuild_tensor_v2\n(NK\x00)))\x89Nt" + "R.", ErrCorrupt, "storage is None"},
		{"rebuild_parameter of a list", "ctorch._utils\n_rebuild_parameter\n]\x89N\x87R.", ErrCorrupt, "data is a list, not a tensor"},
		{"stack limit", big("", maxStack+1, "N", "."), ErrLimit, "pickle stack deeper than"},
		{"MARK limit", big("", maxMarks+1, "(", "."), ErrLimit, "MARKs nested deeper than"},
		// One OrderedDict(pairs) call copies 1000 entries for 8 pickle bytes; repeating it must
		// exhaust the allocation budget rather than memory.
		{"copy amplification", od + "q\x00" + pairs.String() + "q\x01" + strings.Repeat("h\x00h\x01\x85R0", 5000) + "N.", ErrLimit, "asks for more memory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := unpickle([]byte("\x80\x02" + c.pickle))
			if err == nil {
				t.Fatalf("got %s, want an error", repr(v))
			}
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("err = %v\nwant %v containing %q", err, c.want, c.msg)
			}
			n := 0
			for _, class := range []error{ErrCorrupt, ErrForbidden, ErrLimit, ErrUnsupported, ErrNotStateDict} {
				if errors.Is(err, class) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("err %v is in %d classes", err, n)
			}
		})
	}
}

// TestMemoLimit gives the pickle a generous budget so that the memo's own cap is what stops it.
func TestMemoLimit(t *testing.T) {
	b := []byte("\x80\x02N" + strings.Repeat("\x94", maxMemo+1) + ".")
	_, err := unpickleBudget(b, &budget{limit: 1 << 30, left: 1 << 30})
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "memo larger than") {
		t.Errorf("err = %v, want the memo limit", err)
	}
}

// TestErrorPosition: errors name the pickle, the byte offset and the opcode.
func TestErrorPosition(t *testing.T) {
	_, err := unpickle([]byte("\x80\x02K\x01K\x02cos\nsystem\n."))
	if want := "test: byte 6, opcode GLOBAL: global os.system"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want %q", err, want)
	}
	_, err = unpickle([]byte(fmt.Sprintf("\x80\x02%s", "K")))
	if want := "test: byte 2, opcode BININT1: unexpected end of data"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want %q", err, want)
	}
}
