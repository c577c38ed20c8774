package mlp

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/anya-edge/anya/ml/onnx"
)

func TestCheckRejectsBadNets(t *testing.T) {
	good := func() *Net { return Random(rand.New(rand.NewPCG(1, 1)), []int{3, 4, 2}, "Relu", "") }
	cases := []struct {
		name   string
		mutate func(n *Net)
	}{
		{"no layers", func(n *Net) { n.Layers = nil }},
		{"wrong rows", func(n *Net) { n.Inputs = 5 }},
		{"ragged row", func(n *Net) { n.Layers[1].W[0] = n.Layers[1].W[0][:1] }},
		{"unknown activation", func(n *Net) { n.Layers[0].Act = "Gelu" }},
	}
	if err := good().Check(); err != nil {
		t.Fatalf("good net: %v", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := good()
			tc.mutate(n)
			if err := n.Check(); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestForwardSoftmaxSumsToOne(t *testing.T) {
	n := Random(rand.New(rand.NewPCG(2, 2)), []int{5, 7, 4}, "Tanh", "Softmax")
	out := n.Forward([]float32{1, -2, 3, 0.5, 0})
	var s float64
	for _, v := range out[len(out)-1] {
		s += v
	}
	if math.Abs(s-1) > 1e-12 {
		t.Fatalf("softmax sums to %v", s)
	}
}

func TestExportsDecode(t *testing.T) {
	n := Random(rand.New(rand.NewPCG(3, 3)), []int{4, 8, 1}, "Relu", "")
	calib := [][]float32{{1, 2, 3, 4}, {-1, 0, 2, 5}}
	for name, mk := range map[string]func() (*onnx.Model, error){
		"matmul": func() (*onnx.Model, error) { return n.Float(false) },
		"gemm":   func() (*onnx.Model, error) { return n.Float(true) },
		"qdq":    func() (*onnx.Model, error) { return n.QDQ(calib, QuantOptions{}) },
	} {
		t.Run(name, func(t *testing.T) {
			m, err := mk()
			if err != nil {
				t.Fatal(err)
			}
			back, err := onnx.Decode(onnx.Encode(m))
			if err != nil {
				t.Fatal(err)
			}
			if len(back.Graph.Nodes) != len(m.Graph.Nodes) || len(back.Graph.Initializers) != len(m.Graph.Initializers) {
				t.Fatalf("round trip lost nodes or initializers")
			}
		})
	}
}
