package mlp

import (
	"math"
	"math/rand/v2"
)

// Random makes a net of the given widths (sizes[0] inputs) with Glorot-uniform weights and
// small biases; hidden layers use act, the last layer last.
func Random(r *rand.Rand, sizes []int, act, last string) *Net {
	n := &Net{Inputs: sizes[0]}
	for i := 1; i < len(sizes); i++ {
		in, out := sizes[i-1], sizes[i]
		lim := math.Sqrt(6 / float64(in+out))
		l := Layer{W: make([][]float32, in), B: make([]float32, out), Act: act}
		if i == len(sizes)-1 {
			l.Act = last
		}
		for k := range l.W {
			l.W[k] = make([]float32, out)
			for j := range l.W[k] {
				l.W[k][j] = float32((2*r.Float64() - 1) * lim)
			}
		}
		for j := range l.B {
			l.B[j] = float32(0.1 * (2*r.Float64() - 1))
		}
		n.Layers = append(n.Layers, l)
	}
	return n
}
