package engine

import (
	"fmt"
	"math"
)

// Session runs a Model; it is not safe for concurrent use.
type Session struct {
	m    *Model
	f    frame
	outs []Tensor
	sc   []scratch // per step
}

// scratch is a step's working memory.
type scratch struct {
	i16 []int16
	i32 []int32
	f32 []float32
}

// NewSession prepares the buffers of one execution of m.
func (m *Model) NewSession() *Session {
	s := &Session{m: m, f: frame{vals: make([]value, len(m.vals))}, outs: make([]Tensor, len(m.outputs)),
		sc: make([]scratch, len(m.steps))}
	for i := range m.vals {
		if m.vals[i].konst {
			s.f.vals[i] = m.vals[i]
		} else {
			s.f.vals[i].shape = make([]int, 0, maxRank)
		}
	}
	return s
}

// Run executes the model on inputs, given in the order of Model.Inputs. The returned
// tensors, in the order of Model.Outputs, belong to the session until its next Run.
func (s *Session) Run(inputs ...Tensor) ([]Tensor, error) {
	m := s.m
	if len(inputs) != len(m.inputs) {
		return nil, fmt.Errorf("run model: %d inputs, want %d", len(inputs), len(m.inputs))
	}
	for i, in := range inputs {
		spec := &m.inputs[i]
		if err := spec.check(in); err != nil {
			return nil, fmt.Errorf("run model: input %q: %w", spec.Name, err)
		}
		v := &s.f.vals[spec.id]
		v.shape = append(v.shape[:0], in.Shape...)
		v.data = in.Data
		v.dtype = 1
	}
	for i, st := range m.steps {
		if err := st.run(&s.f, &s.sc[i]); err != nil {
			return nil, fmt.Errorf("run model: node %s: %w", st.name(), err)
		}
	}
	for i, id := range m.outputs {
		v := &s.f.vals[id]
		s.outs[i] = Tensor{Shape: v.shape, Data: v.data}
	}
	return s.outs, nil
}

// check validates an input tensor against its declaration.
func (spec *IO) check(in Tensor) error {
	if len(in.Shape) != len(spec.Shape) {
		return fmt.Errorf("rank %d, want %d (shape %v)", len(in.Shape), len(spec.Shape), spec.Shape)
	}
	n := 1
	for i, d := range in.Shape {
		if d < 0 || (spec.Shape[i] >= 0 && d != spec.Shape[i]) {
			return fmt.Errorf("shape %v, want %v (-1: any)", in.Shape, spec.Shape)
		}
		n *= d
		if n > maxElements {
			return fmt.Errorf("shape %v has more than %d elements", in.Shape, maxElements)
		}
	}
	if len(in.Data) != n {
		return fmt.Errorf("%d values for shape %v", len(in.Data), in.Shape)
	}
	// x·0 is 0 for every finite x and NaN for NaN and ±Inf: one pass without branches
	// (four sums, to not wait on one), then a search only when something is wrong.
	var z [4]float32
	d := in.Data
	for len(d) >= 4 {
		z[0] += d[0] * 0
		z[1] += d[1] * 0
		z[2] += d[2] * 0
		z[3] += d[3] * 0
		d = d[4:]
	}
	for _, x := range d {
		z[0] += x * 0
	}
	if z[0]+z[1]+z[2]+z[3] == 0 {
		return nil
	}
	for j, x := range in.Data {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("element %d is %v", j, x)
		}
	}
	return nil
}
