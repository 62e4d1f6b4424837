package tensor

import "testing"

func TestNarrowSplitViews(t *testing.T) {
	data := make([]float32, 2*4*3*3)
	for i := range data {
		data[i] = float32(i)
	}
	x, err := FromSlice(data, 2, 4, 3, 3)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := x.Split(1, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !parts[1].Shape().Equal(Shape{2, 3, 3, 3}) || parts[1].Offset() != 9 {
		t.Fatalf("split part 1: shape %v offset %d", parts[1].Shape(), parts[1].Offset())
	}
	if bs, ok := parts[1].BatchStride(); !ok || bs != 36 {
		t.Fatalf("batch stride %d %v, want 36 true", bs, ok)
	}
	if parts[1].IsContiguous() {
		t.Fatal("channel slice of a batch of 2 reported contiguous")
	}
	if _, err := x.Split(1, 2, 3); err == nil {
		t.Fatal("split with wrong sizes accepted")
	}
	if _, err := x.Narrow(2, 2, 2); err == nil {
		t.Fatal("narrow past the end accepted")
	}
	h, _ := x.Narrow(2, 1, 1)
	if _, ok := h.BatchStride(); ok {
		t.Fatal("row slice reported batch-strided")
	}
}

func TestShapeValidate(t *testing.T) {
	for _, s := range []Shape{{0, 3}, {2, -1}, {1 << 16, 1 << 16}} {
		if s.Validate() == nil {
			t.Errorf("shape %v accepted", s)
		}
	}
	if err := (Shape{2, 3, 4}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestFloat16RoundTrip(t *testing.T) {
	in := []float32{0, 1, -2.5, 65504, 1e-8, 0.1}
	out := FromFloat16(ToFloat16(in))
	want := []float32{0, 1, -2.5, 65504, 0, 0.099975586}
	for i := range in {
		if out[i] != want[i] {
			t.Errorf("%v -> %v, want %v", in[i], out[i], want[i])
		}
	}
}
