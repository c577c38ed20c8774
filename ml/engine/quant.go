package engine

import (
	"errors"
	"fmt"
	"math"

	"github.com/anya-edge/anya/ml/kernel"
	"github.com/anya-edge/anya/ml/onnx"
)

// qdq is QuantizeLinear or DequantizeLinear, per tensor or per axis.
type qdq struct {
	base
	quantize bool
	axis     int
	lo, hi   float32 // saturation range of the quantized type
	qtype    onnx.DataType
}

func (c *compiler) qdq(n *onnx.Node, b base) (step, error) {
	o := &qdq{base: b, quantize: n.OpType == "QuantizeLinear", axis: int(attrInt(n, "axis", 1))}
	scale := &c.m.vals[b.in[1]]
	if !scale.konst {
		return nil, errors.New("the scale must be a constant")
	}
	for _, s := range scale.data {
		if !(s > 0) || math.IsInf(float64(s), 0) {
			return nil, fmt.Errorf("scale %v is not positive and finite", s)
		}
	}
	o.qtype = onnx.Uint8
	if len(b.in) > 2 && b.in[2] >= 0 {
		zp := &c.m.vals[b.in[2]]
		if !zp.konst {
			return nil, errors.New("the zero point must be a constant")
		}
		if len(zp.data) != len(scale.data) {
			return nil, fmt.Errorf("%d zero points for %d scales", len(zp.data), len(scale.data))
		}
		o.qtype = zp.dtype
	}
	if !o.quantize && (len(b.in) < 3 || b.in[2] < 0) {
		o.qtype = c.m.vals[b.in[0]].dtype
	}
	if o.quantize {
		c.m.vals[b.out[0]].dtype = o.qtype
	}
	switch o.qtype {
	case onnx.Uint8:
		o.lo, o.hi = 0, 255
	case onnx.Int8:
		o.lo, o.hi = -128, 127
	case onnx.Int32:
		if o.quantize {
			return nil, errors.New("QuantizeLinear to int32 is not supported")
		}
	default:
		return nil, fmt.Errorf("quantized type %v is not supported (uint8, int8)", o.qtype)
	}
	return o, nil
}

func (o *qdq) run(f *frame, _ *scratch) error {
	x, y := &f.vals[o.in[0]], &f.vals[o.out[0]]
	scale := f.vals[o.in[1]].data
	var zp []float32
	if len(o.in) > 2 && o.in[2] >= 0 {
		zp = f.vals[o.in[2]].data
	}
	if err := y.setShape(x.shape); err != nil {
		return err
	}
	if o.quantize {
		y.dtype = o.qtype
	} else {
		y.dtype = onnx.Float
	}
	inner, nch := len(x.data), 1
	if len(scale) > 1 {
		axis, err := normAxis(o.axis, len(x.shape))
		if err != nil {
			return err
		}
		if x.shape[axis] != len(scale) {
			return fmt.Errorf("%d scales for axis %d of %v", len(scale), axis, x.shape)
		}
		inner, nch = numel(x.shape[axis+1:]), len(scale)
	}
	for i, v := range x.data {
		ch := 0
		if nch > 1 {
			ch = (i / inner) % nch
		}
		var z float32
		if zp != nil {
			z = zp[ch]
		}
		if o.quantize {
			y.data[i] = kernel.Quantize1(v, scale[ch], z, o.lo, o.hi) + z
		} else {
			y.data[i] = (v - z) * scale[ch]
		}
	}
	return nil
}
