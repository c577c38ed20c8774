package onnx

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func sample() *Model {
	batch := Dim{Value: -1, Param: "N"}
	return &Model{IRVersion: 8, Opsets: map[string]int64{"": 13}, Producer: "test", Graph: Graph{
		Name: "g",
		Nodes: []Node{
			{Name: "mm", OpType: "MatMul", Inputs: []string{"x", "w"}, Outputs: []string{"h"}},
			{Name: "q", OpType: "QuantizeLinear", Inputs: []string{"h", "s", "z"}, Outputs: []string{"hq"},
				Attrs: []Attribute{{Name: "axis", Type: AttrInt, I: 1}, {Name: "fs", Type: AttrFloats, Floats: []float32{1.5, -2}},
					{Name: "is", Type: AttrInts, Ints: []int64{-1, 3}}, {Name: "f", Type: AttrFloat, F: 0.25}, {Name: "s", Type: AttrString, S: "hi"}}},
		},
		Initializers: []*Tensor{
			{Name: "w", DataType: Float, Dims: []int64{2, 2}, Floats: []float32{1, 2, 3, 4}},
			{Name: "s", DataType: Float, Floats: []float32{0.5}},
			{Name: "z", DataType: Uint8, Ints: []int64{200}},
			{Name: "i8", DataType: Int8, Dims: []int64{3}, Ints: []int64{-128, 0, 127}},
			{Name: "i64", DataType: Int64, Dims: []int64{2}, Ints: []int64{-1, 1 << 40}},
			{Name: "i32", DataType: Int32, Dims: []int64{1}, Ints: []int64{-7}},
		},
		Inputs:  []ValueInfo{{Name: "x", ElemType: Float, HasShape: true, Shape: []Dim{batch, {Value: 2}}}},
		Outputs: []ValueInfo{{Name: "hq", ElemType: Uint8, HasShape: true, Shape: []Dim{batch, {Value: 2}}}},
	}}
}

func TestRoundTrip(t *testing.T) {
	m := sample()
	got, err := Decode(Encode(m))
	if err != nil {
		t.Fatal(err)
	}
	if got.IRVersion != 8 || got.Opset() != 13 || got.Producer != "test" || got.Graph.Name != "g" {
		t.Fatalf("header: %+v", got)
	}
	for i, want := range m.Graph.Initializers {
		g := got.Graph.Initializers[i]
		if g.Name != want.Name || g.DataType != want.DataType || len(g.Dims) != len(want.Dims) ||
			len(g.Floats) != len(want.Floats) || len(g.Ints) != len(want.Ints) {
			t.Fatalf("initializer %d: %+v, want %+v", i, g, want)
		}
		for j := range want.Ints {
			if g.Ints[j] != want.Ints[j] {
				t.Fatalf("initializer %s[%d] = %d, want %d", want.Name, j, g.Ints[j], want.Ints[j])
			}
		}
		for j := range want.Floats {
			if g.Floats[j] != want.Floats[j] {
				t.Fatalf("initializer %s[%d] = %v, want %v", want.Name, j, g.Floats[j], want.Floats[j])
			}
		}
	}
	q := got.Graph.Nodes[1]
	if a, ok := q.Attr("fs"); !ok || len(a.Floats) != 2 || a.Floats[1] != -2 {
		t.Fatalf("floats attribute: %+v", a)
	}
	if a, ok := q.Attr("is"); !ok || len(a.Ints) != 2 || a.Ints[0] != -1 {
		t.Fatalf("ints attribute: %+v", a)
	}
	if a, ok := q.Attr("f"); !ok || a.F != 0.25 {
		t.Fatalf("float attribute: %+v", a)
	}
	in := got.Graph.Inputs[0]
	if in.Name != "x" || len(in.Shape) != 2 || in.Shape[0].Param != "N" || in.Shape[1].Value != 2 {
		t.Fatalf("input: %+v", in)
	}
}

// TestDecodeTypedData reads tensors stored in the typed fields (float_data, int32_data)
// instead of raw_data, as some exporters write them.
func TestDecodeTypedData(t *testing.T) {
	tensor := func(dt DataType, field protowire.Number, vals ...uint64) []byte {
		var b []byte
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(len(vals)))
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(dt))
		for _, v := range vals {
			if field == 4 {
				b = protowire.AppendTag(b, 4, protowire.Fixed32Type)
				b = protowire.AppendFixed32(b, uint32(v))
			} else {
				b = protowire.AppendTag(b, field, protowire.VarintType)
				b = protowire.AppendVarint(b, v)
			}
		}
		return b
	}
	cases := []struct {
		name string
		b    []byte
		want []int64
		err  string
	}{
		{"int8 in int32_data", tensor(Int8, 5, uint64(0xffffffffffffff80), 5), []int64{-128, 5}, ""},
		{"uint8 in int32_data", tensor(Uint8, 5, 255, 0), []int64{255, 0}, ""},
		{"int8 out of range", tensor(Int8, 5, 300), nil, "out of range"},
		{"count mismatch", tensor(Int64, 7, 1, 2)[2:], nil, "values for dims"},
		{"float_data", tensor(Float, 4, 0x3f800000), nil, ""},
		{"unsupported type", tensor(DataType(10), 5, 1), nil, "not supported"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tt, err := decodeTensor(tc.b)
			if tc.err != "" || err != nil {
				if tc.err == "" || err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			for i, w := range tc.want {
				if tt.Ints[i] != w {
					t.Fatalf("value %d = %d, want %d", i, tt.Ints[i], w)
				}
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	good := Encode(sample())
	withTensor := func(mut func(tt *Tensor)) []byte {
		m := sample()
		mut(m.Graph.Initializers[0])
		return Encode(m)
	}
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "no graph"},
		{"garbage", []byte("this is not protobuf at all"), "malformed"},
		{"truncated", good[:len(good)/2], "malformed"},
		{"one byte short", good[:len(good)-1], "malformed"},
		{"raw_data too short", withTensor(func(tt *Tensor) { tt.Dims = []int64{2, 3} }), "raw_data has 16 bytes"},
		{"negative dim", withTensor(func(tt *Tensor) { tt.Dims = []int64{-4} }), "dim -4"},
		{"huge dims", withTensor(func(tt *Tensor) { tt.Dims = []int64{1 << 20, 1 << 20} }), "more than"},
		{"two graphs", append(append([]byte{}, good...), appendMessage(nil, 7, appendMessage(nil, 5, appendString(appendMessage(nil, 13, nil), 8, "e")))...), "more than one graph"},
		{"no opset", Encode(&Model{IRVersion: 8, Graph: sample().Graph}), "no opset_import"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.b)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
	var ext []byte
	ext = appendMessage(ext, 13, nil)
	if _, err := decodeTensor(ext); err == nil || !strings.Contains(err.Error(), "external") {
		t.Errorf("external data: %v", err)
	}
	if _, err := Decode(good[:3]); !errors.Is(err, ErrFormat) {
		t.Errorf("truncated model: %v does not match ErrFormat", err)
	}
}

// FuzzDecode: any input gives a model or an error, never a panic, and what decodes
// re-encodes and decodes again.
func FuzzDecode(f *testing.F) {
	f.Add(Encode(sample()))
	f.Add([]byte{})
	f.Add([]byte{0x3a, 0x02, 0x0a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		if _, err := Decode(Encode(m)); err != nil {
			t.Fatalf("re-encoded model does not decode: %v", err)
		}
	})
}
