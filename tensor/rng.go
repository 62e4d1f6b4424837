package tensor

import "math"

// RNG is a small deterministic generator (PCG-XSH-RR 64/32) for initialisation, shuffling and
// augmentation. Its sequence depends only on the seed, never on the Go version, so a seed
// reproduces a run exactly.
type RNG struct {
	state, inc uint64
}

// NewRNG seeds a generator; different streams with the same seed are independent.
func NewRNG(seed, stream uint64) *RNG {
	r := &RNG{inc: stream<<1 | 1}
	r.Uint32()
	r.state += seed
	r.Uint32()
	return r
}

// Uint32 returns the next 32 random bits.
func (r *RNG) Uint32() uint32 {
	old := r.state
	r.state = old*6364136223846793005 + r.inc
	x := uint32(((old >> 18) ^ old) >> 27)
	rot := uint32(old >> 59)
	return x>>rot | x<<((-rot)&31)
}

// Float64 is uniform in [0, 1) with 53 random bits.
func (r *RNG) Float64() float64 {
	hi := uint64(r.Uint32()) << 21
	lo := uint64(r.Uint32()) >> 11
	return float64(hi|lo) / (1 << 53)
}

// Uniform is uniform in [lo, hi).
func (r *RNG) Uniform(lo, hi float64) float64 { return lo + (hi-lo)*r.Float64() }

// Normal draws from N(0, 1) by the Box-Muller transform.
func (r *RNG) Normal() float64 {
	u1 := r.Float64()
	for u1 == 0 {
		u1 = r.Float64()
	}
	u2 := r.Float64()
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}

// Intn is uniform in [0, n); n must be positive.
func (r *RNG) Intn(n int) int {
	// Lemire's multiply-shift with rejection: unbiased for any n < 2^32.
	bound := uint32(n)
	for {
		m := uint64(r.Uint32()) * uint64(bound)
		if uint32(m) >= (-bound)%bound {
			return int(m >> 32)
		}
	}
}

// Perm returns a random permutation of [0, n) (Fisher-Yates).
func (r *RNG) Perm(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	for i := n - 1; i > 0; i-- {
		j := r.Intn(i + 1)
		p[i], p[j] = p[j], p[i]
	}
	return p
}

// State returns the generator's internal state, for checkpoints.
func (r *RNG) State() [2]uint64 { return [2]uint64{r.state, r.inc} }

// SetState restores a state returned by State.
func (r *RNG) SetState(s [2]uint64) { r.state, r.inc = s[0], s[1] }
