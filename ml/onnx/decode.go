package onnx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// maxElements bounds the elements of one tensor (and the product of its dims).
const maxElements = 1 << 28

// ErrFormat is matched (errors.Is) by every error about malformed bytes.
var ErrFormat = errors.New("malformed ONNX")

func formatErr(what string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrFormat, fmt.Sprintf(what, args...))
}

// field is one decoded protobuf field: x holds varint and fixed values, b bytes values.
type field struct {
	num protowire.Number
	typ protowire.Type
	x   uint64
	b   []byte
}

// eachField calls fn for every field of the message b.
func eachField(b []byte, fn func(f field) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return formatErr("bad tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.x, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b)
			f.x = uint64(v)
		case protowire.Fixed64Type:
			f.x, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(b)
		case protowire.StartGroupType:
			_, n = protowire.ConsumeGroup(num, b)
		default:
			return formatErr("field %d: wire type %d", num, typ)
		}
		if n < 0 {
			return formatErr("field %d: %v", num, protowire.ParseError(n))
		}
		b = b[n:]
		if typ == protowire.StartGroupType {
			continue
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// want checks a field's wire type.
func (f field) want(t protowire.Type, what string) error {
	if f.typ != t {
		return formatErr("%s: wire type %d, want %d", what, f.typ, t)
	}
	return nil
}

// appendInts decodes a repeated int64/int32 field, packed or not.
func appendInts(dst []int64, f field, what string) ([]int64, error) {
	switch f.typ {
	case protowire.VarintType:
		return append(dst, int64(f.x)), nil
	case protowire.BytesType:
		b := f.b
		for len(b) > 0 {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, formatErr("%s: %v", what, protowire.ParseError(n))
			}
			dst = append(dst, int64(v))
			b = b[n:]
		}
		return dst, nil
	}
	return nil, formatErr("%s: wire type %d", what, f.typ)
}

// appendFloats decodes a repeated float field, packed or not.
func appendFloats(dst []float32, f field, what string) ([]float32, error) {
	switch f.typ {
	case protowire.Fixed32Type:
		return append(dst, math.Float32frombits(uint32(f.x))), nil
	case protowire.BytesType:
		if len(f.b)%4 != 0 {
			return nil, formatErr("%s: packed floats of %d bytes", what, len(f.b))
		}
		for i := 0; i < len(f.b); i += 4 {
			dst = append(dst, math.Float32frombits(binary.LittleEndian.Uint32(f.b[i:])))
		}
		return dst, nil
	}
	return nil, formatErr("%s: wire type %d", what, f.typ)
}

// Decode parses an ONNX model (a serialized ModelProto).
func Decode(b []byte) (*Model, error) {
	m := &Model{Opsets: map[string]int64{}}
	sawGraph := false
	err := eachField(b, func(f field) error {
		switch f.num {
		case 1: // ir_version
			if err := f.want(protowire.VarintType, "ir_version"); err != nil {
				return err
			}
			m.IRVersion = int64(f.x)
		case 2: // producer_name
			if err := f.want(protowire.BytesType, "producer_name"); err != nil {
				return err
			}
			m.Producer = string(f.b)
		case 7: // graph
			if err := f.want(protowire.BytesType, "graph"); err != nil {
				return err
			}
			if sawGraph {
				return formatErr("more than one graph")
			}
			sawGraph = true
			g, err := decodeGraph(f.b)
			if err != nil {
				return fmt.Errorf("graph: %w", err)
			}
			m.Graph = *g
		case 8: // opset_import
			if err := f.want(protowire.BytesType, "opset_import"); err != nil {
				return err
			}
			var domain string
			var version int64
			err := eachField(f.b, func(f field) error {
				switch {
				case f.num == 1 && f.typ == protowire.BytesType:
					domain = string(f.b)
				case f.num == 2 && f.typ == protowire.VarintType:
					version = int64(f.x)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("opset_import: %w", err)
			}
			m.Opsets[domain] = version
		case 25: // functions
			return errors.New("model-local functions are not supported")
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("decode ONNX model: %w", err)
	}
	if !sawGraph {
		return nil, fmt.Errorf("decode ONNX model: %w", formatErr("no graph"))
	}
	if len(m.Opsets) == 0 {
		return nil, fmt.Errorf("decode ONNX model: %w", formatErr("no opset_import"))
	}
	return m, nil
}

func decodeGraph(b []byte) (*Graph, error) {
	g := &Graph{}
	err := eachField(b, func(f field) error {
		switch f.num {
		case 1, 5, 11, 12, 15:
			if err := f.want(protowire.BytesType, "graph field"); err != nil {
				return err
			}
		}
		switch f.num {
		case 1: // node
			n, err := decodeNode(f.b)
			if err != nil {
				return fmt.Errorf("node %d: %w", len(g.Nodes), err)
			}
			g.Nodes = append(g.Nodes, *n)
		case 2:
			g.Name = string(f.b)
		case 5: // initializer
			t, err := decodeTensor(f.b)
			if err != nil {
				return fmt.Errorf("initializer %d: %w", len(g.Initializers), err)
			}
			g.Initializers = append(g.Initializers, t)
		case 11, 12: // input, output
			v, err := decodeValueInfo(f.b)
			if err != nil {
				return fmt.Errorf("input/output: %w", err)
			}
			if f.num == 11 {
				g.Inputs = append(g.Inputs, *v)
			} else {
				g.Outputs = append(g.Outputs, *v)
			}
		case 15:
			return errors.New("sparse initializers are not supported")
		}
		return nil
	})
	return g, err
}

func decodeNode(b []byte) (*Node, error) {
	n := &Node{}
	err := eachField(b, func(f field) error {
		switch f.num {
		case 1, 2, 3, 4, 5, 7:
			if err := f.want(protowire.BytesType, "node field"); err != nil {
				return err
			}
		}
		switch f.num {
		case 1:
			n.Inputs = append(n.Inputs, string(f.b))
		case 2:
			n.Outputs = append(n.Outputs, string(f.b))
		case 3:
			n.Name = string(f.b)
		case 4:
			n.OpType = string(f.b)
		case 7:
			n.Domain = string(f.b)
		case 5:
			a, err := decodeAttr(f.b)
			if err != nil {
				return fmt.Errorf("attribute %d: %w", len(n.Attrs), err)
			}
			n.Attrs = append(n.Attrs, *a)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if n.OpType == "" {
		return nil, formatErr("node %q has no op_type", n.Name)
	}
	return n, nil
}

func decodeAttr(b []byte) (*Attribute, error) {
	a := &Attribute{}
	err := eachField(b, func(f field) error {
		var err error
		switch f.num {
		case 1:
			err = f.want(protowire.BytesType, "attribute name")
			a.Name = string(f.b)
		case 20:
			err = f.want(protowire.VarintType, "attribute type")
			a.Type = AttrType(f.x)
		case 2:
			err = f.want(protowire.Fixed32Type, "attribute f")
			a.F = math.Float32frombits(uint32(f.x))
		case 3:
			err = f.want(protowire.VarintType, "attribute i")
			a.I = int64(f.x)
		case 4:
			err = f.want(protowire.BytesType, "attribute s")
			a.S = string(f.b)
		case 5:
			if err = f.want(protowire.BytesType, "attribute t"); err == nil {
				a.T, err = decodeTensor(f.b)
			}
		case 7:
			a.Floats, err = appendFloats(a.Floats, f, "attribute floats")
		case 8:
			a.Ints, err = appendInts(a.Ints, f, "attribute ints")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	switch a.Type {
	case AttrFloat, AttrInt, AttrString, AttrFloats, AttrInts:
	case AttrTensor:
		if a.T == nil {
			return nil, formatErr("tensor attribute %q without a tensor", a.Name)
		}
	default:
		return nil, fmt.Errorf("attribute %q: type %d is not supported", a.Name, a.Type)
	}
	return a, nil
}

func decodeTensor(b []byte) (*Tensor, error) {
	t := &Tensor{}
	var raw []byte
	var hasRaw bool
	err := eachField(b, func(f field) error {
		var err error
		switch f.num {
		case 1:
			t.Dims, err = appendInts(t.Dims, f, "dims")
		case 2:
			err = f.want(protowire.VarintType, "data_type")
			t.DataType = DataType(int32(f.x))
		case 3:
			return errors.New("segmented tensors are not supported")
		case 4:
			t.Floats, err = appendFloats(t.Floats, f, "float_data")
		case 5, 7:
			t.Ints, err = appendInts(t.Ints, f, "int_data")
		case 8:
			err = f.want(protowire.BytesType, "name")
			t.Name = string(f.b)
		case 9:
			err = f.want(protowire.BytesType, "raw_data")
			raw, hasRaw = f.b, true
		case 13, 14:
			if f.num == 14 && f.typ == protowire.VarintType && f.x == 0 {
				return nil // DEFAULT location
			}
			return errors.New("external tensor data is not supported")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	n := 1
	for _, d := range t.Dims {
		if d < 0 || d > maxElements {
			return nil, formatErr("tensor %q: dim %d", t.Name, d)
		}
		n *= int(d)
		if n > maxElements {
			return nil, formatErr("tensor %q: more than %d elements", t.Name, maxElements)
		}
	}
	size := t.DataType.size()
	if size == 0 {
		return nil, fmt.Errorf("tensor %q: element type %v is not supported", t.Name, t.DataType)
	}
	if hasRaw {
		if len(t.Floats) > 0 || len(t.Ints) > 0 {
			return nil, formatErr("tensor %q: raw_data and typed data together", t.Name)
		}
		if len(raw) != n*size {
			return nil, formatErr("tensor %q: raw_data has %d bytes, dims %v of %v need %d", t.Name, len(raw), t.Dims, t.DataType, n*size)
		}
		decodeRaw(t, raw, n)
		return t, nil
	}
	if t.DataType == Float {
		if len(t.Ints) > 0 || len(t.Floats) != n {
			return nil, formatErr("tensor %q: %d float values for dims %v", t.Name, len(t.Floats), t.Dims)
		}
		return t, nil
	}
	if len(t.Floats) > 0 || len(t.Ints) != n {
		return nil, formatErr("tensor %q: %d %v values for dims %v", t.Name, len(t.Ints), t.DataType, t.Dims)
	}
	for i, v := range t.Ints {
		if t.Ints[i] = narrow(t.DataType, v); t.Ints[i] != v && t.DataType != Int32 && t.DataType != Int16 {
			return nil, formatErr("tensor %q: value %d out of range for %v", t.Name, v, t.DataType)
		}
	}
	return t, nil
}

// narrow reinterprets a value read from int32_data/int64_data as the tensor's type
// (int32_data holds int32 values sign-extended as varints, which arrive as uint64).
func narrow(t DataType, v int64) int64 {
	switch t {
	case Int8:
		return int64(int8(v))
	case Uint8:
		return int64(uint8(v))
	case Int16:
		return int64(int16(v))
	case Int32:
		return int64(int32(v))
	case Bool:
		if v != 0 {
			return 1
		}
	}
	return v
}

func decodeRaw(t *Tensor, raw []byte, n int) {
	if t.DataType == Float {
		t.Floats = make([]float32, n)
		for i := range t.Floats {
			t.Floats[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return
	}
	t.Ints = make([]int64, n)
	for i := range t.Ints {
		switch t.DataType {
		case Int8:
			t.Ints[i] = int64(int8(raw[i]))
		case Uint8:
			t.Ints[i] = int64(raw[i])
		case Bool:
			t.Ints[i] = int64(min(raw[i], 1))
		case Int16:
			t.Ints[i] = int64(int16(binary.LittleEndian.Uint16(raw[2*i:])))
		case Int32:
			t.Ints[i] = int64(int32(binary.LittleEndian.Uint32(raw[4*i:])))
		case Int64:
			t.Ints[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
		}
	}
}

func decodeValueInfo(b []byte) (*ValueInfo, error) {
	v := &ValueInfo{}
	err := eachField(b, func(f field) error {
		switch {
		case f.num == 1 && f.typ == protowire.BytesType:
			v.Name = string(f.b)
		case f.num == 2 && f.typ == protowire.BytesType: // TypeProto
			return eachField(f.b, func(f field) error {
				if f.num != 1 { // only tensor_type
					if f.num == 4 || f.num == 5 || f.num == 8 {
						return fmt.Errorf("value %q: only tensor types are supported", v.Name)
					}
					return nil
				}
				if err := f.want(protowire.BytesType, "tensor_type"); err != nil {
					return err
				}
				return eachField(f.b, func(f field) error {
					switch {
					case f.num == 1 && f.typ == protowire.VarintType:
						v.ElemType = DataType(int32(f.x))
					case f.num == 2 && f.typ == protowire.BytesType:
						v.HasShape = true
						return eachField(f.b, func(f field) error {
							if f.num != 1 || f.typ != protowire.BytesType {
								return nil
							}
							d := Dim{Value: -1}
							err := eachField(f.b, func(f field) error {
								switch {
								case f.num == 1 && f.typ == protowire.VarintType:
									d.Value = int64(f.x)
								case f.num == 2 && f.typ == protowire.BytesType:
									d.Param = string(f.b)
								}
								return nil
							})
							v.Shape = append(v.Shape, d)
							return err
						})
					}
					return nil
				})
			})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if v.Name == "" {
		return nil, formatErr("value without a name")
	}
	return v, nil
}
