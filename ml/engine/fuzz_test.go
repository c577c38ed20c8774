package engine

import (
	"math/rand/v2"
	"testing"

	"github.com/anya-edge/anya/ml/mlp"
	"github.com/anya-edge/anya/ml/onnx"
)

// FuzzLoad: any bytes give a model or an error, never a panic; a model that loads runs
// (or fails with an error) on an input of its declared shape.
func FuzzLoad(f *testing.F) {
	r := rand.New(rand.NewPCG(1, 1))
	net := mlp.Random(r, []int{3, 4, 2}, "Tanh", "Softmax")
	fm, _ := net.Float(false)
	gm, _ := net.Float(true)
	qm, _ := net.QDQ([][]float32{{1, 2, 3}, {-1, 0, 1}}, mlp.QuantOptions{})
	for _, m := range []*onnx.Model{fm, gm, qm} {
		f.Add(onnx.Encode(m))
	}
	for _, tc := range opCases() {
		f.Add(onnx.Encode(tc.model()))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Load(b, Options{})
		if err != nil {
			return
		}
		var in []Tensor
		for _, io := range m.Inputs() {
			shape := make([]int, len(io.Shape))
			n := 1
			for i, d := range io.Shape {
				if d < 0 {
					d = 2
				}
				shape[i] = d
				n *= d
			}
			if n > 1<<16 {
				return
			}
			data := make([]float32, n)
			for i := range data {
				data[i] = float32(i%7) - 3
			}
			in = append(in, Tensor{Shape: shape, Data: data})
		}
		_, _ = m.NewSession().Run(in...)
	})
}
