package engine

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/anya-edge/anya/ml/mlp"
	"github.com/anya-edge/anya/ml/onnx"
)

// BenchmarkMLP runs the 32→64→64→1 MLP (ml/ortcheck compares it with onnxruntime).
func BenchmarkMLP(b *testing.B) {
	r := rand.New(rand.NewPCG(42, 1))
	net := mlp.Random(r, []int{32, 64, 64, 1}, "Relu", "")
	_, calib := randBatch(r, 200, 32, 1)
	fm, _ := net.Float(true)
	qm, _ := net.QDQ(calib, mlp.QuantOptions{ReduceRange: true})
	for _, form := range []struct {
		name string
		m    *onnx.Model
		opt  Options
	}{{"qdq", qm, Options{}}, {"dynamic", fm, Options{}}, {"float", fm, Options{Float: true}}} {
		for _, batch := range []int{1, 256} {
			b.Run(fmt.Sprintf("%s/batch%d", form.name, batch), func(b *testing.B) {
				s := load(b, form.m, form.opt).NewSession()
				x, _ := randBatch(r, batch, 32, 1)
				in := Tensor{Shape: []int{batch, 32}, Data: x}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.Run(in); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
