package onnxgo

import (
	"errors"
	"fmt"
	"sort"

	onnxgo "github.com/owulveryck/onnx-go"
	"gonum.org/v1/gonum/graph"
	"gonum.org/v1/gonum/graph/simple"
	"gorgonia.org/tensor"

	"github.com/anya-edge/anya/ml/engine"
	"github.com/anya-edge/anya/ml/onnx"
)

// Options change how Load reads a model.
type Options struct {
	// Engine is passed to engine.Compile.
	Engine engine.Options
	// Opset is the ai.onnx opset the model is taken to use; 0 means 13.
	Opset int64
	// Inputs gives the shapes of graph inputs by name (−1: any size), for inputs with
	// symbolic dimensions, which onnx-go drops.
	Inputs map[string][]int
}

// Load parses an ONNX model with onnx-go into a Backend and compiles it with ml/engine.
func Load(b []byte, opt Options) (*engine.Model, error) {
	om, err := Decode(b, opt)
	if err != nil {
		return nil, err
	}
	em, err := engine.Compile(om, opt.Engine)
	if err != nil {
		return nil, fmt.Errorf("onnxgo: compile: %w", err)
	}
	return em, nil
}

// Decode parses an ONNX model with onnx-go into a Backend and returns its translation.
func Decode(b []byte, opt Options) (om *onnx.Model, err error) {
	be := NewBackend()
	m := onnxgo.NewModel(be)
	defer func() {
		if r := recover(); r != nil {
			om, err = nil, fmt.Errorf("onnxgo: onnx-go panicked: %v", r)
		}
	}()
	if err := m.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("onnxgo: onnx-go: %w", err)
	}
	om, err = be.Model(m, opt)
	if err != nil {
		return nil, fmt.Errorf("onnxgo: %w", err)
	}
	return om, nil
}

// node is one value of the graph: a graph input, an initializer or an operator's output.
type node struct {
	id   int64
	name string
	t    tensor.Tensor
}

func (n *node) ID() int64                       { return n.id }
func (n *node) SetName(s string)                { n.name = s }
func (n *node) GetName() string                 { return n.name }
func (n *node) SetTensor(t tensor.Tensor) error { n.t = t; return nil }
func (n *node) GetTensor() tensor.Tensor        { return n.t }

// op is one ApplyOperation call: an ONNX node.
type op struct {
	onnxgo.Operation
	outs []*node
}

// Backend is an onnx-go Backend that records the graph onnx-go builds. It is for one model.
type Backend struct {
	*simple.WeightedDirectedGraph
	// inputs[id] lists the inputs of the operator whose output is node id, by position.
	inputs map[int64][]int64
	ops    []op
	err    error
}

// NewBackend returns an empty Backend.
func NewBackend() *Backend {
	return &Backend{WeightedDirectedGraph: simple.NewWeightedDirectedGraph(0, 0), inputs: map[int64][]int64{}}
}

// NewNode returns a value node carrying a name and a tensor.
func (b *Backend) NewNode() graph.Node {
	return &node{id: b.WeightedDirectedGraph.NewNode().ID()}
}

// SetWeightedEdge records that the operator producing e.From takes e.To at position
// e.Weight; it keeps repeated inputs (Mul(x, x)), which the simple graph would merge.
func (b *Backend) SetWeightedEdge(e graph.WeightedEdge) {
	from, to, w := e.From().ID(), e.To().ID(), int(e.Weight())
	if w < 0 || w > 1<<16 {
		b.fail(fmt.Errorf("input position %v", e.Weight()))
		return
	}
	in := b.inputs[from]
	for len(in) <= w {
		in = append(in, -1)
	}
	in[w] = to
	b.inputs[from] = in
	if from == to {
		b.fail(fmt.Errorf("value %d is its own operator's input", from))
		return // the simple graph panics on self loops
	}
	b.WeightedDirectedGraph.SetWeightedEdge(e)
}

// ApplyOperation records one ONNX node with its outputs.
func (b *Backend) ApplyOperation(o onnxgo.Operation, outs ...graph.Node) error {
	rec := op{Operation: o}
	for _, n := range outs {
		nn, ok := n.(*node)
		if !ok {
			return fmt.Errorf("onnxgo: %s: output node of type %T", o.Name, n)
		}
		rec.outs = append(rec.outs, nn)
	}
	b.ops = append(b.ops, rec)
	return nil
}

func (b *Backend) fail(err error) {
	if b.err == nil {
		b.err = err
	}
}

func (b *Backend) value(id int64) (*node, error) {
	n, ok := b.Node(id).(*node)
	if !ok || n == nil {
		return nil, fmt.Errorf("no value node %d", id)
	}
	return n, nil
}

// Model translates what onnx-go built into an ml/onnx Model; m must be the onnx-go model
// that decoded into b.
func (b *Backend) Model(m *onnxgo.Model, opt Options) (*onnx.Model, error) {
	if b.err != nil {
		return nil, b.err
	}
	opset := opt.Opset
	if opset == 0 {
		opset = 13
	}
	om := &onnx.Model{IRVersion: 8, Opsets: map[string]int64{"": opset}, Producer: "onnx-go"}
	g := &om.Graph
	produced := map[int64]bool{}
	for _, o := range b.ops {
		for _, n := range o.outs {
			produced[n.id] = true
		}
	}
	isInput := map[int64]bool{}
	for _, id := range m.Input {
		n, err := b.value(id)
		if err != nil {
			return nil, fmt.Errorf("graph input: %w", err)
		}
		isInput[id] = true
		vi, err := inputInfo(n, opt.Inputs)
		if err != nil {
			return nil, fmt.Errorf("graph input %q: %w", n.name, err)
		}
		g.Inputs = append(g.Inputs, vi)
	}
	inited := map[int64]bool{}
	for i, o := range b.ops {
		nd := onnx.Node{Name: fmt.Sprintf("onnxgo%d:%s", i, o.Name), OpType: o.Name}
		if len(o.outs) == 0 {
			return nil, fmt.Errorf("node %s without outputs", nd.Name)
		}
		for _, out := range o.outs {
			nd.Outputs = append(nd.Outputs, out.name)
		}
		ins := b.inputs[o.outs[0].id]
		for _, id := range ins {
			if id < 0 {
				nd.Inputs = append(nd.Inputs, "")
				continue
			}
			in, err := b.value(id)
			if err != nil {
				return nil, fmt.Errorf("node %s: %w", nd.Name, err)
			}
			if produced[id] || isInput[id] {
				nd.Inputs = append(nd.Inputs, in.name)
				continue
			}
			if in.t == nil {
				if len(ins) == 1 {
					continue // the input onnx-go invents for an input-less node
				}
				return nil, fmt.Errorf("node %s: input %q is neither a graph input, an initializer nor computed", nd.Name, in.name)
			}
			if !inited[id] {
				t, err := fromTensor(in.name, in.t)
				if err != nil {
					return nil, fmt.Errorf("initializer %q: %w", in.name, err)
				}
				g.Initializers = append(g.Initializers, t)
				inited[id] = true
			}
			nd.Inputs = append(nd.Inputs, in.name)
		}
		attrs, err := attributes(o.Attributes)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", nd.Name, err)
		}
		nd.Attrs = attrs
		g.Nodes = append(g.Nodes, nd)
	}
	for _, id := range m.Output {
		n, err := b.value(id)
		if err != nil {
			return nil, fmt.Errorf("graph output: %w", err)
		}
		g.Outputs = append(g.Outputs, onnx.ValueInfo{Name: n.name, ElemType: onnx.Float})
	}
	return om, nil
}

// inputInfo declares a graph input: its shape from opt if given, else the fixed
// dimensions onnx-go kept.
func inputInfo(n *node, shapes map[string][]int) (onnx.ValueInfo, error) {
	vi := onnx.ValueInfo{Name: n.name, ElemType: onnx.Float, HasShape: true}
	if n.t == nil {
		return vi, errors.New("no declared type")
	}
	if n.t.Dtype() != tensor.Float32 {
		return vi, fmt.Errorf("element type %v: only float32 inputs are supported", n.t.Dtype())
	}
	shape, ok := shapes[n.name]
	if !ok {
		shape = n.t.Shape()
	}
	for _, d := range shape {
		if d < 0 {
			vi.Shape = append(vi.Shape, onnx.Dim{Value: -1, Param: "?"})
		} else {
			vi.Shape = append(vi.Shape, onnx.Dim{Value: int64(d)})
		}
	}
	return vi, nil
}

// fromTensor copies a gorgonia tensor (as onnx-go decodes initializers and tensor
// attributes) into an ml/onnx tensor. float64 values become float32.
func fromTensor(name string, t tensor.Tensor) (*onnx.Tensor, error) {
	ot := &onnx.Tensor{Name: name}
	for _, d := range t.Shape() {
		ot.Dims = append(ot.Dims, int64(d))
	}
	switch v := t.Data().(type) {
	case []float32:
		ot.DataType, ot.Floats = onnx.Float, append([]float32(nil), v...)
	case float32:
		ot.DataType, ot.Floats = onnx.Float, []float32{v}
	case []float64:
		ot.DataType = onnx.Float
		for _, x := range v {
			ot.Floats = append(ot.Floats, float32(x))
		}
	case float64:
		ot.DataType, ot.Floats = onnx.Float, []float32{float32(v)}
	case []int64:
		ot.DataType, ot.Ints = onnx.Int64, append([]int64(nil), v...)
	case int64:
		ot.DataType, ot.Ints = onnx.Int64, []int64{v}
	case []int32:
		ot.DataType = onnx.Int32
		for _, x := range v {
			ot.Ints = append(ot.Ints, int64(x))
		}
	case int32:
		ot.DataType, ot.Ints = onnx.Int32, []int64{int64(v)}
	case []bool:
		ot.DataType = onnx.Bool
		for _, x := range v {
			ot.Ints = append(ot.Ints, b2i(x))
		}
	case bool:
		ot.DataType, ot.Ints = onnx.Bool, []int64{b2i(v)}
	default:
		return nil, fmt.Errorf("element type %v not supported", t.Dtype())
	}
	if n := ot.Len(); n != len(ot.Floats)+len(ot.Ints) {
		return nil, fmt.Errorf("%d values for dims %v", len(ot.Floats)+len(ot.Ints), ot.Dims)
	}
	return ot, nil
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// attributes converts onnx-go's attribute values (sorted by name: a map has no order).
func attributes(m map[string]interface{}) ([]onnx.Attribute, error) {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []onnx.Attribute
	for _, k := range names {
		a := onnx.Attribute{Name: k}
		switch v := m[k].(type) {
		case float32:
			a.Type, a.F = onnx.AttrFloat, v
		case int64:
			a.Type, a.I = onnx.AttrInt, v
		case string:
			a.Type, a.S = onnx.AttrString, v
		case []float32:
			a.Type, a.Floats = onnx.AttrFloats, v
		case []int64:
			a.Type, a.Ints = onnx.AttrInts, v
		case tensor.Tensor:
			t, err := fromTensor("", v)
			if err != nil {
				return nil, fmt.Errorf("attribute %s: %w", k, err)
			}
			a.Type, a.T = onnx.AttrTensor, t
		default:
			return nil, fmt.Errorf("attribute %s of type %T not supported", k, v)
		}
		out = append(out, a)
	}
	return out, nil
}
