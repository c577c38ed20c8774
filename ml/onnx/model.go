package onnx

import "fmt"

// DataType is an ONNX TensorProto.DataType.
type DataType int32

// The element types this package decodes.
const (
	Float DataType = 1
	Uint8 DataType = 2
	Int8  DataType = 3
	Int16 DataType = 5
	Int32 DataType = 6
	Int64 DataType = 7
	Bool  DataType = 9
)

func (t DataType) String() string {
	switch t {
	case Float:
		return "float"
	case Uint8:
		return "uint8"
	case Int8:
		return "int8"
	case Int16:
		return "int16"
	case Int32:
		return "int32"
	case Int64:
		return "int64"
	case Bool:
		return "bool"
	}
	return fmt.Sprintf("datatype(%d)", int32(t))
}

// size is the element size in raw_data, 0 for types not decoded.
func (t DataType) size() int {
	switch t {
	case Float, Int32:
		return 4
	case Uint8, Int8, Bool:
		return 1
	case Int16:
		return 2
	case Int64:
		return 8
	}
	return 0
}

// Tensor is a constant tensor (an initializer or a tensor attribute). Float tensors keep
// their values in Floats, every integer type (and bool) in Ints.
type Tensor struct {
	Name     string
	DataType DataType
	Dims     []int64
	Floats   []float32
	Ints     []int64
}

// Len is the number of elements the dims describe.
func (t *Tensor) Len() int {
	n := 1
	for _, d := range t.Dims {
		n *= int(d)
	}
	return n
}

// AttrType is an ONNX AttributeProto.AttributeType.
type AttrType int32

// Attribute types.
const (
	AttrFloat   AttrType = 1
	AttrInt     AttrType = 2
	AttrString  AttrType = 3
	AttrTensor  AttrType = 4
	AttrGraph   AttrType = 5
	AttrFloats  AttrType = 6
	AttrInts    AttrType = 7
	AttrStrings AttrType = 8
)

// Attribute is a node attribute.
type Attribute struct {
	Name   string
	Type   AttrType
	F      float32
	I      int64
	S      string
	T      *Tensor
	Floats []float32
	Ints   []int64
}

// Node is one operator application.
type Node struct {
	Name    string
	OpType  string
	Domain  string
	Inputs  []string // "" marks an omitted optional input
	Outputs []string
	Attrs   []Attribute
}

// Attr returns the attribute called name.
func (n *Node) Attr(name string) (*Attribute, bool) {
	for i := range n.Attrs {
		if n.Attrs[i].Name == name {
			return &n.Attrs[i], true
		}
	}
	return nil, false
}

// Dim is one dimension of a declared shape: a fixed Value, or a symbolic Param (such as
// "N" for the batch) when Value is negative.
type Dim struct {
	Value int64
	Param string
}

// ValueInfo declares a graph input or output.
type ValueInfo struct {
	Name     string
	ElemType DataType
	Shape    []Dim
	HasShape bool
}

// Graph is a model's computation.
type Graph struct {
	Name         string
	Nodes        []Node
	Initializers []*Tensor
	Inputs       []ValueInfo
	Outputs      []ValueInfo
}

// Model is a decoded ONNX model.
type Model struct {
	IRVersion int64
	// Opsets maps an operator domain ("" for the default ai.onnx) to its version.
	Opsets   map[string]int64
	Producer string
	Graph    Graph
}

// Opset is the version of the default domain (ai.onnx).
func (m *Model) Opset() int64 {
	if v, ok := m.Opsets[""]; ok {
		return v
	}
	return m.Opsets["ai.onnx"]
}
