package mlp

import (
	"errors"
	"fmt"
	"math"

	"github.com/anya-edge/anya/ml/onnx"
)

// Layer is y = act(x·W + B), W with In rows and Out columns.
type Layer struct {
	W   [][]float32 // [in][out]
	B   []float32   // [out]
	Act string      // "", "Relu", "Tanh", "Sigmoid" or "Softmax"
}

// Net is a stack of layers over an input of Inputs features, with a batch dimension "N".
type Net struct {
	Inputs int
	Layers []Layer
	// Names of the graph's input and output ("x" and "y" when empty).
	InputName, OutputName string
}

func (n *Net) names() (string, string) {
	in, out := n.InputName, n.OutputName
	if in == "" {
		in = "x"
	}
	if out == "" {
		out = "y"
	}
	return in, out
}

// Check verifies the layer sizes.
func (n *Net) Check() error {
	width := n.Inputs
	if width <= 0 || len(n.Layers) == 0 {
		return errors.New("mlp: no inputs or no layers")
	}
	for i, l := range n.Layers {
		if len(l.W) != width || len(l.B) == 0 {
			return fmt.Errorf("mlp: layer %d has %d rows, want %d", i, len(l.W), width)
		}
		for _, r := range l.W {
			if len(r) != len(l.B) {
				return fmt.Errorf("mlp: layer %d: row of %d, want %d", i, len(r), len(l.B))
			}
		}
		switch l.Act {
		case "", "Relu", "Tanh", "Sigmoid", "Softmax":
		default:
			return fmt.Errorf("mlp: layer %d: activation %q", i, l.Act)
		}
		width = len(l.B)
	}
	return nil
}

// Outputs is the width of the last layer.
func (n *Net) Outputs() int { return len(n.Layers[len(n.Layers)-1].B) }

// Forward evaluates the net on one input in float64 and returns each layer's output
// (the last is the net's).
func (n *Net) Forward(x []float32) [][]float64 {
	cur := make([]float64, len(x))
	for i, v := range x {
		cur[i] = float64(v)
	}
	var outs [][]float64
	for _, l := range n.Layers {
		y := make([]float64, len(l.B))
		for j := range y {
			s := float64(l.B[j])
			for k, v := range cur {
				s += v * float64(l.W[k][j])
			}
			y[j] = s
		}
		activate(l.Act, y)
		outs = append(outs, y)
		cur = y
	}
	return outs
}

func activate(act string, y []float64) {
	switch act {
	case "Relu":
		for j := range y {
			y[j] = max(y[j], 0)
		}
	case "Tanh":
		for j := range y {
			y[j] = math.Tanh(y[j])
		}
	case "Sigmoid":
		for j := range y {
			y[j] = 1 / (1 + math.Exp(-y[j]))
		}
	case "Softmax":
		mx := math.Inf(-1)
		for _, v := range y {
			mx = max(mx, v)
		}
		var s float64
		for j := range y {
			y[j] = math.Exp(y[j] - mx)
			s += y[j]
		}
		for j := range y {
			y[j] /= s
		}
	}
}

// graph collects nodes and initializers.
type graph struct {
	g onnx.Graph
}

func (g *graph) init(t *onnx.Tensor) string {
	g.g.Initializers = append(g.g.Initializers, t)
	return t.Name
}

func (g *graph) node(op, name string, in []string, attrs ...onnx.Attribute) string {
	out := name + "_out"
	g.g.Nodes = append(g.g.Nodes, onnx.Node{Name: name, OpType: op, Inputs: in, Outputs: []string{out}, Attrs: attrs})
	return out
}

func (g *graph) finish(n *Net, in, last string) *onnx.Model {
	inName, outName := n.names()
	// Rename the last value to the output name.
	for i := range g.g.Nodes {
		for j, o := range g.g.Nodes[i].Outputs {
			if o == last {
				g.g.Nodes[i].Outputs[j] = outName
			}
		}
	}
	_ = in
	batch := onnx.Dim{Value: -1, Param: "N"}
	g.g.Name = "mlp"
	g.g.Inputs = []onnx.ValueInfo{{Name: inName, ElemType: onnx.Float, HasShape: true, Shape: []onnx.Dim{batch, {Value: int64(n.Inputs)}}}}
	g.g.Outputs = []onnx.ValueInfo{{Name: outName, ElemType: onnx.Float, HasShape: true, Shape: []onnx.Dim{batch, {Value: int64(n.Outputs())}}}}
	return &onnx.Model{IRVersion: 8, Opsets: map[string]int64{"": 13}, Producer: "anya ml/mlp", Graph: g.g}
}

func floats(name string, dims []int64, v []float32) *onnx.Tensor {
	return &onnx.Tensor{Name: name, DataType: onnx.Float, Dims: dims, Floats: v}
}

// Float writes the net as a float32 ONNX model: MatMul + Add per layer (gemm false) or
// Gemm (gemm true), then the activation.
func (n *Net) Float(gemm bool) (*onnx.Model, error) {
	if err := n.Check(); err != nil {
		return nil, err
	}
	inName, _ := n.names()
	g := &graph{}
	cur := inName
	for i, l := range n.Layers {
		in, out := len(l.W), len(l.B)
		flat := make([]float32, 0, in*out)
		for _, r := range l.W {
			flat = append(flat, r...)
		}
		w := g.init(floats(fmt.Sprintf("w%d", i), []int64{int64(in), int64(out)}, flat))
		b := g.init(floats(fmt.Sprintf("b%d", i), []int64{int64(out)}, l.B))
		if gemm {
			cur = g.node("Gemm", fmt.Sprintf("gemm%d", i), []string{cur, w, b})
		} else {
			cur = g.node("MatMul", fmt.Sprintf("matmul%d", i), []string{cur, w})
			cur = g.node("Add", fmt.Sprintf("add%d", i), []string{cur, b})
		}
		if l.Act != "" {
			cur = g.node(l.Act, fmt.Sprintf("%s%d", l.Act, i), []string{cur})
		}
	}
	return g.finish(n, inName, cur), nil
}

// QDQ writes the net quantized in onnxruntime's QDQ form: each layer's input goes through
// QuantizeLinear/DequantizeLinear (uint8, asymmetric, range calibrated on calib: the
// min and max each layer's input takes over those samples, widened to include 0), the
// weights are int8, symmetric per output channel, stored [out][in] for Gemm with
// transB=1, and the bias is int32 at scale activation·weight, as onnxruntime's
// quantize_static writes them.
//
// QuantOptions adjusts QDQ.
type QuantOptions struct {
	// ReduceRange: see QDQ.
	ReduceRange bool
	// FloatFirst: see QDQ.
	FloatFirst bool
}

// ReduceRange quantizes weights to 7 bits (−63…63), as onnxruntime's reduce_range option
// does: onnxruntime's u8×s8 kernel on AVX2 without VNNI (the box's and this build
// machine's CPUs) adds pairs of products in saturating int16 (VPMADDUBSW), so with full
// 8-bit weights its results are wrong wherever 255·|w₁| + 255·|w₂| exceeds 32767; its own
// documentation recommends reduce_range there. ml/engine is exact with either.
//
// floatFirst keeps the first layer in float32 (a Gemm on float weights): its input is the
// raw features, whose ranges differ too much for one per-tensor scale, and it is the
// smallest layer.
func (n *Net) QDQ(calib [][]float32, opt QuantOptions) (*onnx.Model, error) {
	qmax := 127.0
	if opt.ReduceRange {
		qmax = 63
	}
	if err := n.Check(); err != nil {
		return nil, err
	}
	if len(calib) == 0 {
		return nil, errors.New("mlp: no calibration samples")
	}
	// Ranges of each layer's input.
	lo := make([]float64, len(n.Layers))
	hi := make([]float64, len(n.Layers))
	for _, x := range calib {
		if len(x) != n.Inputs {
			return nil, fmt.Errorf("mlp: calibration sample of %d values, want %d", len(x), n.Inputs)
		}
		outs := n.Forward(x)
		for i := range n.Layers {
			var in []float64
			if i == 0 {
				for _, v := range x {
					in = append(in, float64(v))
				}
			} else {
				in = outs[i-1]
			}
			for _, v := range in {
				lo[i], hi[i] = min(lo[i], v), max(hi[i], v)
			}
		}
	}
	inName, _ := n.names()
	g := &graph{}
	cur := inName
	for i, l := range n.Layers {
		in, out := len(l.W), len(l.B)
		if i == 0 && opt.FloatFirst {
			flat := make([]float32, 0, in*out)
			for _, r := range l.W {
				flat = append(flat, r...)
			}
			w := g.init(floats("w0", []int64{int64(in), int64(out)}, flat))
			b := g.init(floats("b0", []int64{int64(out)}, l.B))
			cur = g.node("Gemm", "gemm0", []string{cur, w, b})
			if l.Act != "" {
				cur = g.node(l.Act, l.Act+"0", []string{cur})
			}
			continue
		}
		sa := float32((hi[i] - lo[i]) / 255)
		if sa == 0 {
			sa = 1
		}
		za := min(max(math.RoundToEven(-lo[i]/float64(sa)), 0), 255)
		s := g.init(floats(fmt.Sprintf("x%d_scale", i), nil, []float32{sa}))
		z := g.init(&onnx.Tensor{Name: fmt.Sprintf("x%d_zp", i), DataType: onnx.Uint8, Ints: []int64{int64(za)}})
		q := g.node("QuantizeLinear", fmt.Sprintf("x%d_q", i), []string{cur, s, z})
		dq := g.node("DequantizeLinear", fmt.Sprintf("x%d_dq", i), []string{q, s, z})

		wq := make([]int64, out*in)
		ws := make([]float32, out)
		bq := make([]int64, out)
		bs := make([]float32, out)
		for j := range out {
			var amax float64
			for k := range in {
				amax = max(amax, math.Abs(float64(l.W[k][j])))
			}
			ws[j] = float32(amax / qmax)
			if ws[j] == 0 {
				ws[j] = 1
			}
			for k := range in {
				wq[j*in+k] = int64(math.RoundToEven(float64(l.W[k][j] / ws[j])))
			}
			bs[j] = sa * ws[j]
			bq[j] = int64(math.RoundToEven(float64(l.B[j] / bs[j])))
		}
		w := g.init(&onnx.Tensor{Name: fmt.Sprintf("w%d_q", i), DataType: onnx.Int8, Dims: []int64{int64(out), int64(in)}, Ints: wq})
		wsn := g.init(floats(fmt.Sprintf("w%d_scale", i), []int64{int64(out)}, ws))
		wz := g.init(&onnx.Tensor{Name: fmt.Sprintf("w%d_zp", i), DataType: onnx.Int8, Dims: []int64{int64(out)}, Ints: make([]int64, out)})
		wdq := g.node("DequantizeLinear", fmt.Sprintf("w%d_dq", i), []string{w, wsn, wz}, onnx.Attribute{Name: "axis", Type: onnx.AttrInt, I: 0})
		b := g.init(&onnx.Tensor{Name: fmt.Sprintf("b%d_q", i), DataType: onnx.Int32, Dims: []int64{int64(out)}, Ints: bq})
		bsn := g.init(floats(fmt.Sprintf("b%d_scale", i), []int64{int64(out)}, bs))
		bdq := g.node("DequantizeLinear", fmt.Sprintf("b%d_dq", i), []string{b, bsn}, onnx.Attribute{Name: "axis", Type: onnx.AttrInt, I: 0})
		cur = g.node("Gemm", fmt.Sprintf("gemm%d", i), []string{dq, wdq, bdq}, onnx.Attribute{Name: "transB", Type: onnx.AttrInt, I: 1})
		if l.Act != "" {
			cur = g.node(l.Act, fmt.Sprintf("%s%d", l.Act, i), []string{cur})
		}
	}
	return g.finish(n, inName, cur), nil
}
