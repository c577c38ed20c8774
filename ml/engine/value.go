package engine

import (
	"fmt"

	"github.com/anya-edge/anya/ml/onnx"
)

// maxRank bounds the rank of every tensor the engine handles.
const maxRank = 8

// maxElements bounds the elements of one runtime tensor.
const maxElements = 1 << 28

// Tensor is a float32 tensor in row-major order.
type Tensor struct {
	Shape []int
	Data  []float32
}

// value is one tensor of a graph while it runs.
type value struct {
	shape []int
	data  []float32
	dtype onnx.DataType // Float, or the integer type of a QuantizeLinear output or constant
	ints  []int64       // constants of integer type (shapes, for Reshape)
	konst bool
}

// numel is the number of elements of shape.
func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// setShape gives v the shape dims and room for its elements, reusing its buffers.
func (v *value) setShape(dims []int) error {
	if len(dims) > maxRank {
		return fmt.Errorf("rank %d is above %d", len(dims), maxRank)
	}
	n := 1
	for _, d := range dims {
		if d < 0 {
			return fmt.Errorf("negative dimension in %v", dims)
		}
		n *= d
		if n > maxElements {
			return fmt.Errorf("shape %v has more than %d elements", dims, maxElements)
		}
	}
	v.shape = append(v.shape[:0], dims...)
	if cap(v.data) < n {
		v.data = make([]float32, n)
	}
	v.data = v.data[:n]
	return nil
}

// frame is the values of one execution, indexed by value id.
type frame struct {
	vals []value
	tmp  [maxRank]int // shape scratch for ops
}

func constant(t *onnx.Tensor) (value, error) {
	v := value{dtype: t.DataType, konst: true}
	dims := make([]int, len(t.Dims))
	for i, d := range t.Dims {
		dims[i] = int(d)
	}
	if err := v.setShape(dims); err != nil {
		return value{}, fmt.Errorf("constant %q: %w", t.Name, err)
	}
	if t.DataType == onnx.Float {
		copy(v.data, t.Floats)
	} else {
		v.ints = t.Ints
		for i, x := range t.Ints {
			v.data[i] = float32(x)
		}
	}
	return v, nil
}
