package engine

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/anya-edge/anya/ml/mlp"
	"github.com/anya-edge/anya/ml/onnx"
)

func load(t testing.TB, m *onnx.Model, opt Options) *Model {
	t.Helper()
	em, err := Load(onnx.Encode(m), opt)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return em
}

func randBatch(r *rand.Rand, n, width int, scale float64) ([]float32, [][]float32) {
	flat := make([]float32, 0, n*width)
	rows := make([][]float32, n)
	for i := range rows {
		rows[i] = make([]float32, width)
		for j := range rows[i] {
			rows[i][j] = float32(r.NormFloat64() * scale)
		}
		flat = append(flat, rows[i]...)
	}
	return flat, rows
}

// TestMLPAgainstReference runs float and int8 executions of MLPs against mlp.Forward
// (float64). Float must agree to 1e-5 relative; dynamic int8 to a bound derived from the
// quantization steps of weights and activations.
func TestMLPAgainstReference(t *testing.T) {
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
		for _, mode := range []string{"float", "int8"} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				r := rand.New(rand.NewPCG(7, uint64(len(tc.name))))
				net := mlp.Random(r, tc.sizes, tc.act, tc.last)
				om, err := net.Float(tc.gemm)
				if err != nil {
					t.Fatal(err)
				}
				em := load(t, om, Options{Float: mode == "float"})
				s := em.NewSession()
				for _, batch := range []int{1, 5, 64} {
					x, rows := randBatch(r, batch, tc.sizes[0], 1)
					out, err := s.Run(Tensor{Shape: []int{batch, tc.sizes[0]}, Data: x})
					if err != nil {
						t.Fatal(err)
					}
					nout := tc.sizes[len(tc.sizes)-1]
					if got := out[0].Shape; len(got) != 2 || got[0] != batch || got[1] != nout {
						t.Fatalf("output shape %v", got)
					}
					for i, row := range rows {
						want := net.Forward(row)
						ref := want[len(want)-1]
						for j, w := range ref {
							g := float64(out[0].Data[i*nout+j])
							tol := 1e-5 * max(math.Abs(w), 1e-2)
							if mode == "int8" {
								tol = 0.03 * (1 + math.Abs(w))
							}
							if math.Abs(g-w) > tol {
								t.Fatalf("batch %d row %d out %d: %v, want %v (±%v)", batch, i, j, g, w, tol)
							}
						}
					}
				}
			})
		}
	}
}

// qdqReference evaluates a QDQ model's arithmetic independently: per layer, quantize the
// input with the model's scale and zero point, integer dot products with the int8
// weights, scale, int32 bias, activation.
func qdqReference(t *testing.T, m *onnx.Model, x []float32) []float64 {
	t.Helper()
	init := map[string]*onnx.Tensor{}
	for _, it := range m.Graph.Initializers {
		init[it.Name] = it
	}
	cur := make([]float64, len(x))
	for i, v := range x {
		cur[i] = float64(v)
	}
	for l := 0; ; l++ {
		w, ok := init[layerName("w", l, "_q")]
		if !ok {
			return cur
		}
		sa := float64(init[layerName("x", l, "_scale")].Floats[0])
		za := float64(init[layerName("x", l, "_zp")].Ints[0])
		ws := init[layerName("w", l, "_scale")].Floats
		bq := init[layerName("b", l, "_q")].Ints
		out, in := int(w.Dims[0]), int(w.Dims[1])
		q := make([]int64, in)
		for k, v := range cur {
			q[k] = int64(min(max(math.RoundToEven(float64(float32(v)/float32(sa)))+za, 0), 255) - za)
		}
		y := make([]float64, out)
		for j := range y {
			var acc int64
			for k := range in {
				acc += q[k] * w.Ints[j*in+k]
			}
			y[j] = (float64(acc) + float64(bq[j])) * sa * float64(ws[j])
		}
		for _, n := range m.Graph.Nodes {
			if n.Name == "Relu"+string(rune('0'+l)) {
				for j := range y {
					y[j] = max(y[j], 0)
				}
			}
		}
		cur = y
	}
}

func layerName(p string, l int, s string) string { return p + string(rune('0'+l)) + s }

func TestQDQMatchesIntegerArithmetic(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	net := mlp.Random(r, []int{32, 64, 64, 1}, "Relu", "")
	_, calib := randBatch(r, 200, 32, 1)
	om, err := net.QDQ(calib, mlp.QuantOptions{})
	if err != nil {
		t.Fatal(err)
	}
	em := load(t, om, Options{})
	// Fusion leaves 3 int8 Gemm (each quantizing its input) and 2 Relu turned into
	// aliases (applied by the Gemm before them).
	if em.Steps() != 5 {
		t.Errorf("%d steps after fusion, want 5", em.Steps())
	}
	s := em.NewSession()
	x, rows := randBatch(r, 50, 32, 1)
	out, err := s.Run(Tensor{Shape: []int{50, 32}, Data: x})
	if err != nil {
		t.Fatal(err)
	}
	for i, row := range rows {
		want := qdqReference(t, om, row)[0]
		got := float64(out[0].Data[i])
		if math.Abs(got-want) > 1e-5*max(math.Abs(want), 1e-2) {
			t.Fatalf("row %d: %v, want %v", i, got, want)
		}
		ref := net.Forward(row)
		if f := ref[len(ref)-1][0]; math.Abs(got-f) > 0.05*(1+math.Abs(f)) {
			t.Fatalf("row %d: int8 %v is far from float %v", i, got, f)
		}
	}
}

func TestRunAllocatesNothingAfterWarmUp(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 3))
	net := mlp.Random(r, []int{32, 64, 64, 1}, "Relu", "")
	fm, _ := net.Float(true)
	_, calib := randBatch(r, 50, 32, 1)
	qm, _ := net.QDQ(calib, mlp.QuantOptions{})
	for name, em := range map[string]*Model{
		"float": load(t, fm, Options{Float: true}), "dynamic": load(t, fm, Options{}), "qdq": load(t, qm, Options{}),
	} {
		t.Run(name, func(t *testing.T) {
			s := em.NewSession()
			x, _ := randBatch(r, 256, 32, 1)
			in := Tensor{Shape: []int{256, 32}, Data: x}
			if _, err := s.Run(in); err != nil {
				t.Fatal(err)
			}
			if n := testing.AllocsPerRun(20, func() { _, _ = s.Run(in) }); n != 0 {
				t.Fatalf("%v allocations per Run", n)
			}
		})
	}
}

func TestBadInputsAreErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	net := mlp.Random(r, []int{4, 3, 2}, "Relu", "")
	om, _ := net.Float(false)
	em := load(t, om, Options{})
	cases := []struct {
		name string
		in   []Tensor
		want string
	}{
		{"no input", nil, "0 inputs"},
		{"wrong rank", []Tensor{{Shape: []int{4}, Data: make([]float32, 4)}}, "rank 1"},
		{"wrong width", []Tensor{{Shape: []int{1, 5}, Data: make([]float32, 5)}}, "shape [1 5]"},
		{"short data", []Tensor{{Shape: []int{2, 4}, Data: make([]float32, 7)}}, "7 values"},
		{"NaN", []Tensor{{Shape: []int{1, 4}, Data: []float32{0, float32(math.NaN()), 0, 0}}}, "element 1 is NaN"},
		{"Inf", []Tensor{{Shape: []int{1, 4}, Data: []float32{0, 0, float32(math.Inf(-1)), 0}}}, "element 2 is -Inf"},
		{"negative dim", []Tensor{{Shape: []int{-1, 4}, Data: nil}}, "shape [-1 4]"},
	}
	s := em.NewSession()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Run(tc.in...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestLoadRejects(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	net := mlp.Random(r, []int{4, 3, 2}, "Relu", "")
	good, _ := net.Float(false)
	cases := []struct {
		name   string
		change func(m *onnx.Model)
		want   string
	}{
		{"unsupported operator", func(m *onnx.Model) { m.Graph.Nodes[1].OpType = "Conv" }, `node "add0" (Conv): unsupported operator Conv`},
		{"other domain", func(m *onnx.Model) { m.Graph.Nodes[0].Domain = "com.microsoft" }, `unsupported operator MatMul in domain "com.microsoft"`},
		{"undefined input", func(m *onnx.Model) { m.Graph.Nodes[0].Inputs[0] = "nope" }, `input "nope" is not defined`},
		{"missing output", func(m *onnx.Model) { m.Graph.Outputs[0].Name = "zz" }, `output "zz" is not computed`},
		{"int input", func(m *onnx.Model) { m.Graph.Inputs[0].ElemType = onnx.Int64 }, "only float inputs"},
		{"old opset", func(m *onnx.Model) { m.Opsets[""] = 5 }, "opset 5"},
		{"bad weight shape", func(m *onnx.Model) {
			m.Graph.Initializers[0].Dims = []int64{3, 4}
		}, "input shape"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := net.Float(false)
			tc.change(m)
			em, err := Load(onnx.Encode(m), Options{})
			if err == nil {
				// Shape errors surface at the first run.
				_, err = em.NewSession().Run(Tensor{Shape: []int{1, 4}, Data: make([]float32, 4)})
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
	b := onnx.Encode(good)
	for _, cut := range []int{1, len(b) / 3, len(b) - 1} {
		if _, err := Load(b[:cut], Options{}); err == nil {
			t.Errorf("model truncated to %d of %d bytes loaded", cut, len(b))
		}
	}
}
