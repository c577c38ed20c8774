package onnxgo

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/anya-edge/anya/ml/engine"
	"github.com/anya-edge/anya/ml/mlp"
	"github.com/anya-edge/anya/ml/onnx"
)

func batch(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

func run(t *testing.T, m *engine.Model, in engine.Tensor) []float32 {
	t.Helper()
	out, err := m.NewSession().Run(in)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return append([]float32(nil), out[0].Data...)
}

// TestAgreesWithOwnDecoder loads the same float models through onnx-go and through
// ml/onnx: both end in engine.Compile, so the outputs must be identical bit for bit, in
// float and in int8 (dynamic quantization).
func TestAgreesWithOwnDecoder(t *testing.T) {
	cases := []struct {
		name      string
		sizes     []int
		act, last string
		gemm      bool
	}{
		{"relu matmul", []int{32, 64, 64, 1}, "Relu", "", false},
		{"relu gemm", []int{32, 64, 64, 1}, "Relu", "", true},
		{"tanh softmax", []int{10, 24, 5}, "Tanh", "Softmax", true},
		{"sigmoid odd sizes", []int{7, 13, 3}, "Sigmoid", "Sigmoid", false},
	}
	for _, tc := range cases {
		for _, float := range []bool{true, false} {
			name := tc.name + map[bool]string{true: "/float", false: "/int8"}[float]
			t.Run(name, func(t *testing.T) {
				r := rand.New(rand.NewPCG(1, uint64(len(tc.name))))
				om, err := mlp.Random(r, tc.sizes, tc.act, tc.last).Float(tc.gemm)
				if err != nil {
					t.Fatal(err)
				}
				b := onnx.Encode(om)
				eopt := engine.Options{Float: float}
				want, err := engine.Load(b, eopt)
				if err != nil {
					t.Fatalf("engine.Load: %v", err)
				}
				in := om.Graph.Inputs[0].Name
				got, err := Load(b, Options{Engine: eopt, Inputs: map[string][]int{in: {-1, tc.sizes[0]}}})
				if err != nil {
					t.Fatalf("onnxgo.Load: %v", err)
				}
				if got.Steps() != want.Steps() {
					t.Errorf("%d steps, ml/onnx path %d", got.Steps(), want.Steps())
				}
				for _, n := range []int{1, 5} {
					x := engine.Tensor{Shape: []int{n, tc.sizes[0]}, Data: batch(r, n*tc.sizes[0])}
					g, w := run(t, got, x), run(t, want, x)
					if len(g) != len(w) {
						t.Fatalf("%d outputs, want %d", len(g), len(w))
					}
					for i := range w {
						if math.Float32bits(g[i]) != math.Float32bits(w[i]) {
							t.Fatalf("batch %d: out[%d] = %v, ml/onnx path %v", n, i, g[i], w[i])
						}
					}
				}
			})
		}
	}
}

// small builds y = op(x, ...) graphs by hand.
func small(nodes []onnx.Node, inits []*onnx.Tensor) []byte {
	return onnx.Encode(&onnx.Model{IRVersion: 8, Opsets: map[string]int64{"": 13}, Graph: onnx.Graph{
		Nodes:        nodes,
		Initializers: inits,
		Inputs:       []onnx.ValueInfo{{Name: "x", ElemType: onnx.Float, HasShape: true, Shape: []onnx.Dim{{Value: 1}, {Value: 4}}}},
		Outputs:      []onnx.ValueInfo{{Name: "y", ElemType: onnx.Float, HasShape: true, Shape: []onnx.Dim{{Value: 1}, {Value: 4}}}},
	}})
}

func TestGraphs(t *testing.T) {
	x := []float32{1, -2, 3, -4}
	two := &onnx.Tensor{Name: "two", DataType: onnx.Float, Dims: []int64{1}, Floats: []float32{2}}
	constTwo := onnx.Node{Name: "c", OpType: "Constant", Outputs: []string{"k"},
		Attrs: []onnx.Attribute{{Name: "value", Type: onnx.AttrTensor, T: &onnx.Tensor{DataType: onnx.Float, Dims: []int64{1}, Floats: []float32{2}}}}}
	cases := []struct {
		name  string
		model []byte
		want  []float32
	}{
		{"repeated input", small([]onnx.Node{{OpType: "Mul", Inputs: []string{"x", "x"}, Outputs: []string{"y"}}}, nil), []float32{1, 4, 9, 16}},
		{"input order", small([]onnx.Node{{OpType: "Sub", Inputs: []string{"two", "x"}, Outputs: []string{"y"}}}, []*onnx.Tensor{two}), []float32{1, 4, -1, 6}},
		{"constant node", small([]onnx.Node{constTwo, {OpType: "Mul", Inputs: []string{"x", "k"}, Outputs: []string{"y"}}}, nil), []float32{2, -4, 6, -8}},
		{"chain with attributes", small([]onnx.Node{
			{OpType: "Relu", Inputs: []string{"x"}, Outputs: []string{"r"}},
			{OpType: "Softmax", Inputs: []string{"r"}, Outputs: []string{"y"}, Attrs: []onnx.Attribute{{Name: "axis", Type: onnx.AttrInt, I: 1}}},
		}, nil), softmax([]float32{1, 0, 3, 0})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Load(tc.model, Options{Engine: engine.Options{Float: true}})
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			got := run(t, m, engine.Tensor{Shape: []int{1, 4}, Data: x})
			for i := range tc.want {
				if math.Abs(float64(got[i]-tc.want[i])) > 1e-6 {
					t.Fatalf("y = %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func softmax(v []float32) []float32 {
	var s float64
	for _, x := range v {
		s += math.Exp(float64(x))
	}
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(math.Exp(float64(x)) / s)
	}
	return out
}

func TestErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	net := mlp.Random(r, []int{8, 16, 2}, "Relu", "")
	calib := make([][]float32, 16)
	for i := range calib {
		calib[i] = batch(r, 8)
	}
	qm, err := net.QDQ(calib, mlp.QuantOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fm, err := net.Float(true)
	if err != nil {
		t.Fatal(err)
	}
	good := onnx.Encode(fm)
	cases := []struct {
		name  string
		model []byte
		want  string
	}{
		// onnx-go cannot decode int8 initializers: QDQ models take ml/onnx's path.
		{"qdq int8 model", onnx.Encode(qm), "int8"},
		{"unsupported operator", small([]onnx.Node{{OpType: "Conv", Inputs: []string{"x", "x"}, Outputs: []string{"y"}}}, nil), "Conv"},
		{"garbage", []byte("not an onnx model at all"), "onnxgo"},
		{"truncated", good[:len(good)/2], "onnxgo"},
		{"empty", nil, "onnxgo"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.model, Options{})
			if err == nil {
				t.Fatal("loaded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
	if _, err := engine.Load(onnx.Encode(qm), engine.Options{}); err != nil {
		t.Fatalf("the QDQ model must load through ml/onnx: %v", err)
	}
}

// TestSymbolicBatchNeedsInputs: onnx-go drops the symbolic batch dimension, so without
// Options.Inputs the model wants rank-1 inputs and refuses a batch, with an error.
func TestSymbolicBatchNeedsInputs(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	om, err := mlp.Random(r, []int{4, 3}, "Relu", "").Float(false)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(onnx.Encode(om), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Inputs()[0].Shape; len(got) != 1 || got[0] != 4 {
		t.Fatalf("input shape %v, want [4] (onnx-go keeps only fixed dimensions)", got)
	}
	if _, err := m.NewSession().Run(engine.Tensor{Shape: []int{2, 4}, Data: make([]float32, 8)}); err == nil {
		t.Fatal("ran a rank-2 input on a rank-1 declaration")
	}
}

func FuzzLoad(f *testing.F) {
	r := rand.New(rand.NewPCG(7, 8))
	om, _ := mlp.Random(r, []int{4, 3}, "Tanh", "Softmax").Float(true)
	f.Add(onnx.Encode(om))
	f.Fuzz(func(t *testing.T, b []byte) {
		// Whatever the bytes, Load returns a model or an error: a panic fails the fuzzer.
		m, err := Load(b, Options{})
		if err == nil && m == nil {
			t.Fatal("nil model without an error")
		}
	})
}
