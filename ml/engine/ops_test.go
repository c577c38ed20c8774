package engine

import (
	"math"
	"strings"
	"testing"

	"github.com/anya-edge/anya/ml/onnx"
)

// opCase is a one-node graph over input x of shape in, with constants, and its expected
// output.
type opCase struct {
	name    string
	op      string
	attrs   []onnx.Attribute
	in      []int
	consts  []*onnx.Tensor // extra inputs after x, in order
	opset   int64
	x       []float32
	want    []float32
	shape   []int
	wantErr string
}

func (tc opCase) model() *onnx.Model {
	inputs := []string{"x"}
	for _, c := range tc.consts {
		inputs = append(inputs, c.Name)
	}
	dims := make([]onnx.Dim, len(tc.in))
	for i, d := range tc.in {
		dims[i] = onnx.Dim{Value: int64(d)}
	}
	opset := tc.opset
	if opset == 0 {
		opset = 13
	}
	return &onnx.Model{IRVersion: 8, Opsets: map[string]int64{"": opset}, Graph: onnx.Graph{
		Nodes:        []onnx.Node{{Name: "n", OpType: tc.op, Inputs: inputs, Outputs: []string{"y"}, Attrs: tc.attrs}},
		Initializers: tc.consts,
		Inputs:       []onnx.ValueInfo{{Name: "x", ElemType: onnx.Float, HasShape: true, Shape: dims}},
		Outputs:      []onnx.ValueInfo{{Name: "y", ElemType: onnx.Float}},
	}}
}

func f32(name string, dims []int64, v ...float32) *onnx.Tensor {
	return &onnx.Tensor{Name: name, DataType: onnx.Float, Dims: dims, Floats: v}
}

func i64(name string, v ...int64) *onnx.Tensor {
	return &onnx.Tensor{Name: name, DataType: onnx.Int64, Dims: []int64{int64(len(v))}, Ints: v}
}

func ints(name string, v ...int64) onnx.Attribute {
	return onnx.Attribute{Name: name, Type: onnx.AttrInts, Ints: v}
}

func intAttr(name string, v int64) onnx.Attribute {
	return onnx.Attribute{Name: name, Type: onnx.AttrInt, I: v}
}

func e(x float64) float32 { return float32(x) }

func opCases() []opCase {
	x23 := []float32{1, 2, 3, 4, 5, 6}
	s := func(a, b, c float64) []float32 { // softmax of three
		m := math.Max(a, math.Max(b, c))
		ea, eb, ec := math.Exp(a-m), math.Exp(b-m), math.Exp(c-m)
		t := ea + eb + ec
		return []float32{e(ea / t), e(eb / t), e(ec / t)}
	}
	return []opCase{
		{name: "relu", op: "Relu", in: []int{4}, x: []float32{-1, 0, 2, -3}, want: []float32{0, 0, 2, 0}, shape: []int{4}},
		{name: "sigmoid", op: "Sigmoid", in: []int{2}, x: []float32{0, 2}, want: []float32{0.5, e(1 / (1 + math.Exp(-2)))}, shape: []int{2}},
		{name: "tanh", op: "Tanh", in: []int{2}, x: []float32{0, -1}, want: []float32{0, e(math.Tanh(-1))}, shape: []int{2}},
		{name: "identity", op: "Identity", in: []int{2}, x: []float32{7, 8}, want: []float32{7, 8}, shape: []int{2}},
		{name: "add row", op: "Add", in: []int{2, 3}, consts: []*onnx.Tensor{f32("b", []int64{3}, 10, 20, 30)}, x: x23,
			want: []float32{11, 22, 33, 14, 25, 36}, shape: []int{2, 3}},
		{name: "mul column", op: "Mul", in: []int{2, 3}, consts: []*onnx.Tensor{f32("b", []int64{2, 1}, 2, -1)}, x: x23,
			want: []float32{2, 4, 6, -4, -5, -6}, shape: []int{2, 3}},
		{name: "sub scalar", op: "Sub", in: []int{2, 3}, consts: []*onnx.Tensor{f32("b", nil, 1)}, x: x23,
			want: []float32{0, 1, 2, 3, 4, 5}, shape: []int{2, 3}},
		{name: "div both ways", op: "Div", in: []int{2, 1}, consts: []*onnx.Tensor{f32("b", []int64{1, 3}, 1, 2, 4)}, x: []float32{8, 16},
			want: []float32{8, 4, 2, 16, 8, 4}, shape: []int{2, 3}},
		{name: "add no broadcast", op: "Add", in: []int{2, 3}, consts: []*onnx.Tensor{f32("b", []int64{2}, 1, 2)}, x: x23, wantErr: "do not broadcast"},
		{name: "softmax last axis", op: "Softmax", in: []int{2, 3}, x: x23, want: append(s(1, 2, 3), s(4, 5, 6)...), shape: []int{2, 3}},
		{name: "softmax axis 0", op: "Softmax", in: []int{3, 1}, attrs: []onnx.Attribute{intAttr("axis", 0)}, x: []float32{1, 2, 3}, want: s(1, 2, 3), shape: []int{3, 1}},
		{name: "softmax opset 11 coerces to 2-D", op: "Softmax", opset: 11, in: []int{1, 3, 1}, x: []float32{1, 2, 3}, want: s(1, 2, 3), shape: []int{1, 3, 1}},
		{name: "softmax bad axis", op: "Softmax", in: []int{2, 3}, attrs: []onnx.Attribute{intAttr("axis", 2)}, x: x23, wantErr: "axis out of range"},
		{name: "concat axis 1", op: "Concat", in: []int{2, 1}, attrs: []onnx.Attribute{intAttr("axis", 1)},
			consts: []*onnx.Tensor{f32("c", []int64{2, 2}, 7, 8, 9, 10)}, x: []float32{1, 2}, want: []float32{1, 7, 8, 2, 9, 10}, shape: []int{2, 3}},
		{name: "concat axis 0", op: "Concat", in: []int{1, 2}, attrs: []onnx.Attribute{intAttr("axis", -2)},
			consts: []*onnx.Tensor{f32("c", []int64{1, 2}, 7, 8)}, x: []float32{1, 2}, want: []float32{1, 2, 7, 8}, shape: []int{2, 2}},
		{name: "concat mismatch", op: "Concat", in: []int{1, 2}, attrs: []onnx.Attribute{intAttr("axis", 0)},
			consts: []*onnx.Tensor{f32("c", []int64{1, 3}, 7, 8, 9)}, x: []float32{1, 2}, wantErr: "differ off axis"},
		{name: "reshape with -1 and 0", op: "Reshape", in: []int{2, 3}, consts: []*onnx.Tensor{i64("s", 0, -1, 1)}, x: x23, want: x23, shape: []int{2, 3, 1}},
		{name: "reshape wrong size", op: "Reshape", in: []int{2, 3}, consts: []*onnx.Tensor{i64("s", 4, 2)}, x: x23, wantErr: "cannot reshape"},
		{name: "flatten", op: "Flatten", in: []int{2, 3, 1}, attrs: []onnx.Attribute{intAttr("axis", 1)}, x: x23, want: x23, shape: []int{2, 3}},
		{name: "flatten axis 0", op: "Flatten", in: []int{2, 3}, attrs: []onnx.Attribute{intAttr("axis", 0)}, x: x23, want: x23, shape: []int{1, 6}},
		{name: "transpose default", op: "Transpose", in: []int{2, 3}, x: x23, want: []float32{1, 4, 2, 5, 3, 6}, shape: []int{3, 2}},
		{name: "transpose perm", op: "Transpose", in: []int{1, 2, 3}, attrs: []onnx.Attribute{ints("perm", 2, 0, 1)}, x: x23,
			want: []float32{1, 4, 2, 5, 3, 6}, shape: []int{3, 1, 2}},
		{name: "transpose bad perm", op: "Transpose", in: []int{2, 3}, attrs: []onnx.Attribute{ints("perm", 0, 0)}, x: x23, wantErr: "not a permutation"},
		{name: "matmul batched", op: "MatMul", in: []int{2, 1, 3}, consts: []*onnx.Tensor{f32("w", []int64{3, 1}, 1, 0, -1)}, x: x23,
			want: []float32{-2, -2}, shape: []int{2, 1, 1}},
		{name: "gemm transA", op: "Gemm", in: []int{3, 2}, attrs: []onnx.Attribute{intAttr("transA", 1), {Name: "alpha", Type: onnx.AttrFloat, F: 2}},
			consts: []*onnx.Tensor{f32("w", []int64{3, 1}, 1, 0, -1)}, x: []float32{1, 4, 2, 5, 3, 6}, want: []float32{-4, -4}, shape: []int{2, 1}},
		{name: "quantize uint8", op: "QuantizeLinear", in: []int{4},
			consts: []*onnx.Tensor{f32("s", nil, 0.5), {Name: "z", DataType: onnx.Uint8, Ints: []int64{10}}},
			x:      []float32{0.25, 0.75, -100, 1000}, want: []float32{10, 12, 0, 255}, shape: []int{4}}, // 0.5 and 1.5 round to even
		{name: "quantize int8 per axis", op: "QuantizeLinear", in: []int{2, 2},
			consts: []*onnx.Tensor{f32("s", []int64{2}, 1, 0.1), {Name: "z", DataType: onnx.Int8, Dims: []int64{2}, Ints: []int64{0, -1}}},
			x:      []float32{1, 1, -2, -20}, want: []float32{1, 9, -2, -128}, shape: []int{2, 2}},
		{name: "dequantize", op: "DequantizeLinear", in: []int{2},
			consts: []*onnx.Tensor{f32("s", nil, 0.5), {Name: "z", DataType: onnx.Uint8, Ints: []int64{10}}},
			x:      []float32{10, 14}, want: []float32{0, 2}, shape: []int{2}},
		{name: "zero scale", op: "QuantizeLinear", in: []int{1}, consts: []*onnx.Tensor{f32("s", nil, 0)}, x: []float32{1}, wantErr: "not positive"},
	}
}

// TestConstantFeedsReshape: a Constant node (as exporters write Reshape's shape) is folded
// at load and usable where a constant is required.
func TestConstantFeedsReshape(t *testing.T) {
	m := &onnx.Model{IRVersion: 8, Opsets: map[string]int64{"": 13}, Graph: onnx.Graph{
		Nodes: []onnx.Node{
			{Name: "shape", OpType: "Constant", Outputs: []string{"s"},
				Attrs: []onnx.Attribute{{Name: "value", Type: onnx.AttrTensor, T: i64("", 3, 2)}}},
			{Name: "r", OpType: "Reshape", Inputs: []string{"x", "s"}, Outputs: []string{"y"}},
		},
		Inputs:  []onnx.ValueInfo{{Name: "x", ElemType: onnx.Float, HasShape: true, Shape: []onnx.Dim{{Value: 2}, {Value: 3}}}},
		Outputs: []onnx.ValueInfo{{Name: "y", ElemType: onnx.Float}},
	}}
	em, err := Load(onnx.Encode(m), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if em.Steps() != 1 {
		t.Errorf("%d steps, want 1 (the Constant folded)", em.Steps())
	}
	out, err := em.NewSession().Run(Tensor{Shape: []int{2, 3}, Data: []float32{1, 2, 3, 4, 5, 6}})
	if err != nil || !equal(out[0].Shape, []int{3, 2}) {
		t.Fatalf("shape %v, err %v", out, err)
	}
}

func TestOps(t *testing.T) {
	for _, tc := range opCases() {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Load(onnx.Encode(tc.model()), Options{Float: true})
			var out []Tensor
			if err == nil {
				out, err = m.NewSession().Run(Tensor{Shape: tc.in, Data: tc.x})
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !equal(out[0].Shape, tc.shape) {
				t.Fatalf("shape %v, want %v", out[0].Shape, tc.shape)
			}
			for i, w := range tc.want {
				if math.Abs(float64(out[0].Data[i]-w)) > 1e-6 {
					t.Fatalf("y = %v, want %v", out[0].Data, tc.want)
				}
			}
		})
	}
}
