package engine

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/anya-edge/anya/ml/onnx"
)

// TestQDQMatMulPerColumn: the QDQ form around MatMul (weights [K, N] int8 quantized per
// column, axis=1, and an int8 activation) fuses into one integer layer and matches the
// integer arithmetic computed here.
func TestQDQMatMulPerColumn(t *testing.T) {
	const k, n, batch = 20, 6, 9
	r := rand.New(rand.NewPCG(21, 22))
	wq := make([]int64, k*n)
	for i := range wq {
		wq[i] = int64(r.IntN(255) - 127)
	}
	ws := make([]float32, n)
	for j := range ws {
		ws[j] = float32(0.001 + 0.01*r.Float64())
	}
	const sa, za = float32(0.03), int64(-5) // int8 activation with a zero point
	m := &onnx.Model{IRVersion: 8, Opsets: map[string]int64{"": 13}, Graph: onnx.Graph{
		Nodes: []onnx.Node{
			{Name: "q", OpType: "QuantizeLinear", Inputs: []string{"x", "sa", "za"}, Outputs: []string{"xq"}},
			{Name: "dq", OpType: "DequantizeLinear", Inputs: []string{"xq", "sa", "za"}, Outputs: []string{"xd"}},
			{Name: "wdq", OpType: "DequantizeLinear", Inputs: []string{"w", "ws"}, Outputs: []string{"wd"},
				Attrs: []onnx.Attribute{{Name: "axis", Type: onnx.AttrInt, I: 1}}},
			{Name: "mm", OpType: "MatMul", Inputs: []string{"xd", "wd"}, Outputs: []string{"y"}},
		},
		Initializers: []*onnx.Tensor{
			{Name: "sa", DataType: onnx.Float, Floats: []float32{sa}},
			{Name: "za", DataType: onnx.Int8, Ints: []int64{za}},
			{Name: "w", DataType: onnx.Int8, Dims: []int64{k, n}, Ints: wq},
			{Name: "ws", DataType: onnx.Float, Dims: []int64{n}, Floats: ws},
		},
		Inputs:  []onnx.ValueInfo{{Name: "x", ElemType: onnx.Float, HasShape: true, Shape: []onnx.Dim{{Param: "N", Value: -1}, {Value: k}}}},
		Outputs: []onnx.ValueInfo{{Name: "y", ElemType: onnx.Float}},
	}}
	em, err := Load(onnx.Encode(m), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if em.Steps() != 1 {
		t.Errorf("%d steps, want 1 fused integer layer", em.Steps())
	}
	x, rows := randBatch(r, batch, k, 2)
	out, err := em.NewSession().Run(Tensor{Shape: []int{batch, k}, Data: x})
	if err != nil {
		t.Fatal(err)
	}
	for i, row := range rows {
		for j := range n {
			var acc int64
			for kk, v := range row {
				q := int64(min(max(math.RoundToEven(float64(v/sa))+float64(za), -128), 127))
				acc += (q - za) * wq[kk*n+j]
			}
			want := float64(acc) * float64(sa) * float64(ws[j])
			if got := float64(out[0].Data[i*n+j]); math.Abs(got-want) > 1e-5*max(math.Abs(want), 1e-2) {
				t.Fatalf("y[%d][%d] = %v, want %v", i, j, got, want)
			}
		}
	}
}
