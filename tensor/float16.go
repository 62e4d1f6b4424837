package tensor

import "github.com/x448/float16"

// ToFloat16 converts float32 values to IEEE 754 half precision (round to nearest even), the
// storage format of float16 checkpoints.
func ToFloat16(src []float32) []uint16 {
	out := make([]uint16, len(src))
	for i, v := range src {
		out[i] = uint16(float16.Fromfloat32(v))
	}
	return out
}

// FromFloat16 widens half-precision values to float32 exactly.
func FromFloat16(src []uint16) []float32 {
	out := make([]float32, len(src))
	for i, v := range src {
		out[i] = float16.Float16(v).Float32()
	}
	return out
}
