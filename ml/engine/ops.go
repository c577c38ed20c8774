package engine

import (
	"errors"
	"fmt"
	"math"

	"github.com/anya-edge/anya/ml/kernel"
	"github.com/anya-edge/anya/ml/onnx"
)

// base holds what every step has.
type base struct {
	nm      string
	in, out []int
}

func (b *base) name() string { return b.nm }
func (b *base) ins() []int   { return b.in }
func (b *base) outs() []int  { return b.out }

// build makes the step for node n.
func (c *compiler) build(n *onnx.Node, in, out []int) (step, error) {
	b := base{nm: fmt.Sprintf("%q (%s)", n.Name, n.OpType), in: in, out: out}
	need := func(lo, hi, outs int) error {
		if len(in) < lo || len(in) > hi {
			return fmt.Errorf("%d inputs, want %d to %d", len(in), lo, hi)
		}
		for i := range lo {
			if in[i] < 0 {
				return fmt.Errorf("input %d is required", i)
			}
		}
		if len(out) != outs {
			return fmt.Errorf("%d outputs, want %d", len(out), outs)
		}
		return nil
	}
	switch n.OpType {
	case "Constant":
		a, ok := n.Attr("value")
		if !ok || a.Type != onnx.AttrTensor || len(in) != 0 || len(out) != 1 {
			return nil, errors.New("Constant needs a tensor attribute \"value\", no inputs and one output")
		}
		v, err := constant(a.T)
		if err != nil {
			return nil, err
		}
		return &constStep{base: b, v: v}, nil
	case "Relu", "Sigmoid", "Tanh", "Identity":
		if err := need(1, 1, 1); err != nil {
			return nil, err
		}
		// A ReLU that alone reads a linear layer's result is applied by the layer.
		if p := c.prod[in[0]]; n.OpType == "Relu" && p != nil && c.uses[n.Inputs[0]] == 1 {
			if l, ok := p.st.(*linear); ok && !l.relu {
				l.relu = true
				return &unary{base: b, op: "Identity"}, nil
			}
		}
		return &unary{base: b, op: n.OpType}, nil
	case "Add", "Sub", "Mul", "Div":
		if err := need(2, 2, 1); err != nil {
			return nil, err
		}
		return &binary{base: b, op: n.OpType[0]}, nil
	case "Softmax":
		if err := need(1, 1, 1); err != nil {
			return nil, err
		}
		def := int64(1)
		if c.opset >= 13 {
			def = -1
		}
		return &softmax{base: b, axis: int(attrInt(n, "axis", def)), coerce2D: c.opset < 13}, nil
	case "Concat":
		if len(in) < 1 || len(out) != 1 {
			return nil, errors.New("Concat needs inputs and one output")
		}
		for _, id := range in {
			if id < 0 {
				return nil, errors.New("Concat input omitted")
			}
		}
		a, ok := n.Attr("axis")
		if !ok {
			return nil, errors.New("Concat without axis")
		}
		return &concat{base: b, axis: int(a.I)}, nil
	case "Flatten":
		if err := need(1, 1, 1); err != nil {
			return nil, err
		}
		return &reshape{base: b, flatten: true, axis: int(attrInt(n, "axis", 1))}, nil
	case "Reshape":
		if err := need(2, 2, 1); err != nil {
			return nil, err
		}
		if !c.m.vals[in[1]].konst || c.m.vals[in[1]].ints == nil {
			return nil, errors.New("Reshape needs a constant int64 shape")
		}
		return &reshape{base: b, target: c.m.vals[in[1]].ints, allowZero: attrInt(n, "allowzero", 0) != 0}, nil
	case "Transpose":
		if err := need(1, 1, 1); err != nil {
			return nil, err
		}
		var perm []int
		if a, ok := n.Attr("perm"); ok {
			for _, p := range a.Ints {
				perm = append(perm, int(p))
			}
		}
		return &transpose{base: b, perm: perm}, nil
	case "QuantizeLinear", "DequantizeLinear":
		if err := need(2, 3, 1); err != nil {
			return nil, err
		}
		return c.qdq(n, b)
	case "MatMul":
		if err := need(2, 2, 1); err != nil {
			return nil, err
		}
		return c.linearOrGeneric(n, b, false, false, 1, 1, -1)
	case "Gemm":
		if err := need(2, 3, 1); err != nil {
			return nil, err
		}
		bias := -1
		if len(in) == 3 {
			bias = in[2]
		}
		return c.linearOrGeneric(n, b, attrInt(n, "transA", 0) != 0, attrInt(n, "transB", 0) != 0,
			attrFloat(n, "alpha", 1), attrFloat(n, "beta", 1), bias)
	}
	return nil, fmt.Errorf("unsupported operator %s", n.OpType)
}

// constStep is a Constant node; having no inputs, it is folded at load.
type constStep struct {
	base
	v value
}

func (o *constStep) run(f *frame, _ *scratch) error {
	y := &f.vals[o.out[0]]
	if err := y.setShape(o.v.shape); err != nil {
		return err
	}
	copy(y.data, o.v.data)
	y.dtype, y.ints = o.v.dtype, o.v.ints
	return nil
}

// unary is an elementwise function.
type unary struct {
	base
	op string
}

func (u *unary) run(f *frame, _ *scratch) error {
	x, y := &f.vals[u.in[0]], &f.vals[u.out[0]]
	if u.op == "Identity" {
		y.shape, y.data = append(y.shape[:0], x.shape...), x.data
		return nil
	}
	if err := y.setShape(x.shape); err != nil {
		return err
	}
	switch u.op {
	case "Relu":
		for i, v := range x.data {
			y.data[i] = max(v, 0)
		}
	case "Sigmoid":
		for i, v := range x.data {
			y.data[i] = float32(1 / (1 + math.Exp(-float64(v))))
		}
	case "Tanh":
		kernel.Tanh(y.data, x.data)
	}
	return nil
}

// broadcastShape sets dst to the numpy broadcast of a and b.
func broadcastShape(dst *[maxRank]int, a, b []int) ([]int, error) {
	r := max(len(a), len(b))
	out := dst[:r]
	for i := range r {
		da, db := 1, 1
		if j := len(a) - r + i; j >= 0 {
			da = a[j]
		}
		if j := len(b) - r + i; j >= 0 {
			db = b[j]
		}
		switch {
		case da == db, db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			return nil, fmt.Errorf("shapes %v and %v do not broadcast", a, b)
		}
	}
	return out, nil
}

// binary is an elementwise arithmetic operator with broadcasting.
type binary struct {
	base
	op byte // A, S, M, D
}

func (o *binary) apply(x, y float32) float32 {
	switch o.op {
	case 'A':
		return x + y
	case 'S':
		return x - y
	case 'M':
		return x * y
	}
	return x / y
}

func (o *binary) run(f *frame, _ *scratch) error {
	a, b, y := &f.vals[o.in[0]], &f.vals[o.in[1]], &f.vals[o.out[0]]
	shape, err := broadcastShape(&f.tmp, a.shape, b.shape)
	if err != nil {
		return err
	}
	if err := y.setShape(shape); err != nil {
		return err
	}
	n := len(y.data)
	switch {
	case len(a.data) == n && len(b.data) == n:
		for i := range y.data {
			y.data[i] = o.apply(a.data[i], b.data[i])
		}
	case len(a.data) == n && isSuffix(b.shape, y.shape):
		m := len(b.data)
		for i := 0; i < n; i += m {
			ys, as := y.data[i:i+m], a.data[i:i+m]
			for j := range ys {
				ys[j] = o.apply(as[j], b.data[j])
			}
		}
	case len(b.data) == n && isSuffix(a.shape, y.shape):
		m := len(a.data)
		for i := 0; i < n; i += m {
			ys, bs := y.data[i:i+m], b.data[i:i+m]
			for j := range ys {
				ys[j] = o.apply(a.data[j], bs[j])
			}
		}
	default:
		var sa, sb [maxRank]int
		bstrides(sa[:len(y.shape)], a.shape, y.shape)
		bstrides(sb[:len(y.shape)], b.shape, y.shape)
		var idx [maxRank]int
		ia, ib := 0, 0
		r := len(y.shape)
		for i := range y.data {
			y.data[i] = o.apply(a.data[ia], b.data[ib])
			for d := r - 1; d >= 0; d-- {
				idx[d]++
				ia += sa[d]
				ib += sb[d]
				if idx[d] < y.shape[d] {
					break
				}
				ia -= sa[d] * idx[d]
				ib -= sb[d] * idx[d]
				idx[d] = 0
			}
		}
	}
	return nil
}

// isSuffix reports whether s (ignoring leading 1s) equals the trailing dims of full, so that
// s repeats along full's leading dims.
func isSuffix(s, full []int) bool {
	for len(s) > 0 && s[0] == 1 {
		s = s[1:]
	}
	if len(s) > len(full) {
		return false
	}
	off := len(full) - len(s)
	for i, d := range s {
		if full[off+i] != d {
			return false
		}
	}
	return true
}

// bstrides sets st to the strides of a tensor of shape s broadcast to out (0 where it
// repeats).
func bstrides(st []int, s, out []int) {
	stride := 1
	for i := len(out) - 1; i >= 0; i-- {
		j := len(s) - len(out) + i
		if j < 0 || s[j] == 1 {
			st[i] = 0
		} else {
			st[i] = stride
		}
		if j >= 0 {
			stride *= s[j]
		}
	}
}

// normAxis maps a possibly negative axis to 0…rank-1.
func normAxis(axis, rank int) (int, error) {
	if axis < 0 {
		axis += rank
	}
	if axis < 0 || axis >= max(rank, 1) {
		return 0, fmt.Errorf("axis out of range for rank %d", rank)
	}
	return axis, nil
}

type softmax struct {
	base
	axis     int
	coerce2D bool // opset < 13: softmax over all dims from axis on
}

func (o *softmax) run(f *frame, _ *scratch) error {
	x, y := &f.vals[o.in[0]], &f.vals[o.out[0]]
	axis, err := normAxis(o.axis, len(x.shape))
	if err != nil {
		return err
	}
	if err := y.setShape(x.shape); err != nil {
		return err
	}
	if len(x.shape) == 0 {
		y.data[0] = 1
		return nil
	}
	outer, n, inner := numel(x.shape[:axis]), x.shape[axis], numel(x.shape[axis+1:])
	if o.coerce2D {
		n, inner = n*inner, 1
	}
	if n == 0 {
		return nil
	}
	for o := range outer {
		for i := range inner {
			base := o*n*inner + i
			mx := x.data[base]
			for j := 1; j < n; j++ {
				mx = max(mx, x.data[base+j*inner])
			}
			var sum float64
			for j := range n {
				e := math.Exp(float64(x.data[base+j*inner] - mx))
				y.data[base+j*inner] = float32(e)
				sum += e
			}
			for j := range n {
				y.data[base+j*inner] = float32(float64(y.data[base+j*inner]) / sum)
			}
		}
	}
	return nil
}

type concat struct {
	base
	axis int
}

func (o *concat) run(f *frame, _ *scratch) error {
	first := &f.vals[o.in[0]]
	r := len(first.shape)
	axis, err := normAxis(o.axis, r)
	if err != nil {
		return err
	}
	shape := f.tmp[:r]
	copy(shape, first.shape)
	shape[axis] = 0
	for _, id := range o.in {
		s := f.vals[id].shape
		if len(s) != r {
			return fmt.Errorf("inputs of rank %d and %d", r, len(s))
		}
		for d := range r {
			if d != axis && s[d] != first.shape[d] {
				return fmt.Errorf("shapes %v and %v differ off axis %d", first.shape, s, axis)
			}
		}
		shape[axis] += s[axis]
	}
	y := &f.vals[o.out[0]]
	if err := y.setShape(shape); err != nil {
		return err
	}
	outer, inner := numel(shape[:axis]), numel(shape[axis+1:])
	off := 0
	for i := range outer {
		for _, id := range o.in {
			v := &f.vals[id]
			chunk := v.shape[axis] * inner
			copy(y.data[off:off+chunk], v.data[i*chunk:(i+1)*chunk])
			off += chunk
		}
	}
	return nil
}

// reshape implements Reshape, and Flatten (flatten set); the output shares the input's data.
type reshape struct {
	base
	target    []int64
	allowZero bool
	flatten   bool
	axis      int
}

func (o *reshape) run(f *frame, _ *scratch) error {
	x, y := &f.vals[o.in[0]], &f.vals[o.out[0]]
	n := len(x.data)
	if o.flatten {
		axis := o.axis
		if axis < 0 {
			axis += len(x.shape)
		}
		if axis < 0 || axis > len(x.shape) {
			return fmt.Errorf("Flatten axis %d for rank %d", o.axis, len(x.shape))
		}
		y.shape = append(y.shape[:0], numel(x.shape[:axis]), numel(x.shape[axis:]))
		y.data = x.data
		return nil
	}
	if len(o.target) > maxRank {
		return fmt.Errorf("shape of rank %d", len(o.target))
	}
	shape := f.tmp[:len(o.target)]
	known, infer := 1, -1
	for i, d := range o.target {
		switch {
		case d == 0 && !o.allowZero:
			if i >= len(x.shape) {
				return fmt.Errorf("shape %v copies dim %d of %v", o.target, i, x.shape)
			}
			shape[i] = x.shape[i]
		case d == -1:
			if infer >= 0 {
				return fmt.Errorf("shape %v has two -1", o.target)
			}
			infer = i
			shape[i] = 1
		case d < 0 || d > maxElements:
			return fmt.Errorf("shape %v", o.target)
		default:
			shape[i] = int(d)
		}
		known *= shape[i]
		if known > maxElements {
			return fmt.Errorf("shape %v too large", o.target)
		}
	}
	if infer >= 0 {
		if known == 0 || n%known != 0 {
			return fmt.Errorf("cannot reshape %v to %v", x.shape, o.target)
		}
		shape[infer] = n / known
		known = n
	}
	if known != n {
		return fmt.Errorf("cannot reshape %v (%d elements) to %v", x.shape, n, o.target)
	}
	y.shape = append(y.shape[:0], shape...)
	y.data = x.data
	return nil
}

type transpose struct {
	base
	perm []int
}

func (o *transpose) run(f *frame, _ *scratch) error {
	x, y := &f.vals[o.in[0]], &f.vals[o.out[0]]
	r := len(x.shape)
	var perm [maxRank]int
	if o.perm == nil {
		for i := range r {
			perm[i] = r - 1 - i
		}
	} else {
		if len(o.perm) != r {
			return fmt.Errorf("perm %v for rank %d", o.perm, r)
		}
		var seen [maxRank]bool
		for i, p := range o.perm {
			if p < 0 || p >= r || seen[p] {
				return fmt.Errorf("perm %v is not a permutation", o.perm)
			}
			seen[p] = true
			perm[i] = p
		}
	}
	shape := f.tmp[:r]
	var xst, st [maxRank]int
	s := 1
	for i := r - 1; i >= 0; i-- {
		xst[i] = s
		s *= x.shape[i]
	}
	for i := range r {
		shape[i] = x.shape[perm[i]]
		st[i] = xst[perm[i]]
	}
	if err := y.setShape(shape); err != nil {
		return err
	}
	var idx [maxRank]int
	src := 0
	for i := range y.data {
		y.data[i] = x.data[src]
		for d := r - 1; d >= 0; d-- {
			idx[d]++
			src += st[d]
			if idx[d] < y.shape[d] {
				break
			}
			src -= st[d] * idx[d]
			idx[d] = 0
		}
	}
	return nil
}
