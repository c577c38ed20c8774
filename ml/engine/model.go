package engine

import (
	"errors"
	"fmt"

	"github.com/anya-edge/anya/ml/onnx"
)

// Options change how a model is executed.
type Options struct {
	// Float keeps float Gemm/MatMul layers in float32 instead of quantizing them
	// dynamically to int8. QDQ layers run in int8 either way.
	Float bool
}

// IO describes a graph input or output; -1 in Shape is a dimension of any size (the batch).
type IO struct {
	Name  string
	Shape []int
	id    int
}

// Model is a compiled graph, immutable and safe for concurrent use.
type Model struct {
	vals    []value // constants, and placeholders for everything computed
	inputs  []IO
	outputs []int
	outIO   []IO
	steps   []step
}

// Inputs describes the graph's inputs, in the order Run takes them.
func (m *Model) Inputs() []IO { return m.inputs }

// Outputs describes the graph's outputs, in the order Run returns them.
func (m *Model) Outputs() []IO { return m.outIO }

// Steps is the number of operations left after folding and fusion (for tests and logs).
func (m *Model) Steps() int { return len(m.steps) }

// Load decodes and compiles an ONNX model.
func Load(b []byte, opt Options) (*Model, error) {
	om, err := onnx.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	m, err := Compile(om, opt)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	return m, nil
}

// step is one operation of a compiled graph.
type step interface {
	name() string
	ins() []int
	outs() []int
	// run checks its inputs' shapes, sizes its outputs and computes them.
	run(f *frame, sc *scratch) error
}

// dqConst remembers the integers behind a folded DequantizeLinear of a constant.
type dqConst struct {
	q     value // the integer tensor
	scale []float32
	zp    []float32
	axis  int
}

// compiler is the state of Compile.
type compiler struct {
	opt   Options
	opset int64
	m     *Model
	ids   map[string]int
	prod  map[int]*producer // value id → the runtime node that computes it
	dq    map[int]*dqConst  // value id → folded DequantizeLinear of a constant
	uses  map[string]int    // value name → how many node inputs and graph outputs read it
}

type producer struct {
	node *onnx.Node
	in   []int
	st   step
}

func (c *compiler) newValue(v value) int {
	c.m.vals = append(c.m.vals, v)
	return len(c.m.vals) - 1
}

// Compile checks and compiles a decoded model.
func Compile(om *onnx.Model, opt Options) (*Model, error) {
	c := &compiler{opt: opt, m: &Model{}, ids: map[string]int{}, prod: map[int]*producer{}, dq: map[int]*dqConst{}}
	for d, v := range om.Opsets {
		if d != "" && d != "ai.onnx" {
			continue // a domain no node uses is harmless; nodes are checked below
		}
		c.opset = v
	}
	if c.opset < 7 || c.opset > 23 {
		return nil, fmt.Errorf("opset %d of ai.onnx: supported are 7 to 23", c.opset)
	}
	g := &om.Graph
	c.uses = map[string]int{}
	for i := range g.Nodes {
		for _, name := range g.Nodes[i].Inputs {
			c.uses[name]++
		}
	}
	for _, o := range g.Outputs {
		c.uses[o.Name]++
	}
	for i := range g.Nodes {
		if g.Nodes[i].OpType == "QuantizeLinear" {
			// A QDQ model says itself which layers are quantized: the others stay float.
			c.opt.Float = true
		}
	}
	for _, t := range g.Initializers {
		if t.Name == "" {
			return nil, errors.New("initializer without a name")
		}
		if _, dup := c.ids[t.Name]; dup {
			return nil, fmt.Errorf("initializer %q defined twice", t.Name)
		}
		v, err := constant(t)
		if err != nil {
			return nil, err
		}
		c.ids[t.Name] = c.newValue(v)
	}
	for _, in := range g.Inputs {
		if _, isInit := c.ids[in.Name]; isInit {
			continue // old-style models list initializers as inputs too
		}
		if in.ElemType != onnx.Float {
			return nil, fmt.Errorf("input %q is %v: only float inputs are supported", in.Name, in.ElemType)
		}
		if !in.HasShape || len(in.Shape) > maxRank {
			return nil, fmt.Errorf("input %q: a shape of rank 0 to %d must be declared", in.Name, maxRank)
		}
		io := IO{Name: in.Name}
		for _, d := range in.Shape {
			if d.Value < 0 || d.Param != "" {
				io.Shape = append(io.Shape, -1)
			} else if d.Value > maxElements {
				return nil, fmt.Errorf("input %q: dimension %d", in.Name, d.Value)
			} else {
				io.Shape = append(io.Shape, int(d.Value))
			}
		}
		io.id = c.newValue(value{dtype: onnx.Float})
		c.ids[in.Name] = io.id
		c.m.inputs = append(c.m.inputs, io)
	}
	for i := range g.Nodes {
		n := &g.Nodes[i]
		if err := c.node(n); err != nil {
			return nil, fmt.Errorf("node %q (%s): %w", n.Name, n.OpType, err)
		}
	}
	if len(g.Outputs) == 0 {
		return nil, errors.New("graph has no outputs")
	}
	for _, o := range g.Outputs {
		id, ok := c.ids[o.Name]
		if !ok {
			return nil, fmt.Errorf("output %q is not computed by the graph", o.Name)
		}
		c.m.outputs = append(c.m.outputs, id)
		io := IO{Name: o.Name, id: id}
		for _, d := range o.Shape {
			if d.Value < 0 || d.Param != "" {
				io.Shape = append(io.Shape, -1)
			} else {
				io.Shape = append(io.Shape, int(d.Value))
			}
		}
		c.m.outIO = append(c.m.outIO, io)
	}
	c.prune()
	return c.m, nil
}

// node compiles one node: it is folded when its inputs are constant, fused when it is a
// quantized layer, and otherwise appended as a step.
func (c *compiler) node(n *onnx.Node) error {
	if n.Domain != "" && n.Domain != "ai.onnx" {
		return fmt.Errorf("unsupported operator %s in domain %q", n.OpType, n.Domain)
	}
	in := make([]int, len(n.Inputs))
	allConst := true
	for i, name := range n.Inputs {
		if name == "" {
			in[i] = -1
			continue
		}
		id, ok := c.ids[name]
		if !ok {
			return fmt.Errorf("input %q is not defined before this node", name)
		}
		in[i] = id
		allConst = allConst && c.m.vals[id].konst
	}
	if len(n.Outputs) == 0 {
		return errors.New("node has no outputs")
	}
	out := make([]int, len(n.Outputs))
	for i, name := range n.Outputs {
		if _, dup := c.ids[name]; dup || name == "" {
			return fmt.Errorf("output %q is empty or defined twice", name)
		}
		out[i] = c.newValue(value{dtype: onnx.Float, shape: make([]int, 0, maxRank)})
		c.ids[name] = out[i]
	}
	st, err := c.build(n, in, out)
	if err != nil {
		return err
	}
	if !allConst {
		c.m.steps = append(c.m.steps, st)
		for _, o := range out {
			c.prod[o] = &producer{node: n, in: in, st: st}
		}
		return nil
	}
	// Constant folding: run the step once now on a frame holding the constants.
	f := frame{vals: c.m.vals}
	if err := st.run(&f, &scratch{}); err != nil {
		return fmt.Errorf("fold constants: %w", err)
	}
	for _, o := range out {
		c.m.vals[o].konst = true
	}
	if n.OpType == "DequantizeLinear" && c.m.vals[in[0]].ints != nil {
		d := &dqConst{q: c.m.vals[in[0]], scale: c.m.vals[in[1]].data}
		if len(in) > 2 && in[2] >= 0 {
			d.zp = c.m.vals[in[2]].data
		}
		d.axis = int(attrInt(n, "axis", 1))
		c.dq[out[0]] = d
	}
	return nil
}

// prune drops the steps whose outputs nobody reads.
func (c *compiler) prune() {
	live := map[int]bool{}
	for _, o := range c.m.outputs {
		live[o] = true
	}
	var kept []step
	for i := len(c.m.steps) - 1; i >= 0; i-- {
		st := c.m.steps[i]
		used := false
		for _, o := range st.outs() {
			used = used || live[o]
		}
		if !used {
			continue
		}
		for _, id := range st.ins() {
			if id >= 0 {
				live[id] = true
			}
		}
		kept = append(kept, st)
	}
	for i, j := 0, len(kept)-1; i < j; i, j = i+1, j-1 {
		kept[i], kept[j] = kept[j], kept[i]
	}
	c.m.steps = kept
}

func attrInt(n *onnx.Node, name string, def int64) int64 {
	if a, ok := n.Attr(name); ok {
		return a.I
	}
	return def
}

func attrFloat(n *onnx.Node, name string, def float32) float32 {
	if a, ok := n.Attr(name); ok {
		return a.F
	}
	return def
}
