package feemodel

import (
	_ "embed" // the shipped model
	"fmt"
	"math"
	"sync"

	"github.com/anya-edge/anya/ml/engine"
)

// shipped is testdata/fee-int8.onnx (a string: embedded data stays immutable).
//
//go:embed testdata/fee-int8.onnx
var shipped string

// ONNX returns a copy of the shipped model.
func ONNX() []byte { return []byte(shipped) }

// Model is a loaded fee model.
type Model struct {
	m    *engine.Model
	pool sync.Pool // of *session
}

type session struct {
	s     *engine.Session
	x     []float32
	shape []int
}

// Load loads the shipped model.
func Load() (*Model, error) { return New(ONNX()) }

// New loads a fee model from ONNX bytes; it must take [N, NumFeatures] and give [N, 3].
func New(b []byte) (*Model, error) {
	em, err := engine.Load(b, engine.Options{})
	if err != nil {
		return nil, fmt.Errorf("load fee model: %w", err)
	}
	in, out := em.Inputs(), em.Outputs()
	if len(in) != 1 || len(in[0].Shape) != 2 || in[0].Shape[1] != NumFeatures ||
		len(out) != 1 || len(out[0].Shape) != 2 || out[0].Shape[1] != len(Targets) {
		return nil, fmt.Errorf("load fee model: want input [N %d] and output [N %d], got %v and %v",
			NumFeatures, len(Targets), in, out)
	}
	m := &Model{m: em}
	m.pool.New = func() any {
		return &session{s: em.NewSession(), x: make([]float32, NumFeatures), shape: []int{1, NumFeatures}}
	}
	return m, nil
}

// Predict returns the fee rates (sat/vB) for Targets, non-increasing.
func (m *Model) Predict(s Snapshot) ([3]float64, error) {
	var r [3]float64
	ss := m.pool.Get().(*session)
	defer m.pool.Put(ss)
	if err := s.Features(ss.x); err != nil {
		return r, err
	}
	out, err := ss.s.Run(engine.Tensor{Shape: ss.shape, Data: ss.x})
	if err != nil {
		return r, fmt.Errorf("feemodel: predict: %w", err)
	}
	for i := range r {
		v := math.Expm1(float64(out[0].Data[i]))
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return r, fmt.Errorf("feemodel: output %d is %v", i, v)
		}
		r[i] = max(v, 0)
		if i > 0 {
			r[i] = min(r[i], r[i-1])
		}
	}
	return r, nil
}

// Estimate is the fee rate (sat/vB) to confirm within target blocks (see the package doc).
func (m *Model) Estimate(s Snapshot, target uint32) (float64, error) {
	r, err := m.Predict(s)
	if err != nil {
		return 0, err
	}
	i := 0
	for j, t := range Targets {
		if t <= target {
			i = j
		}
	}
	return r[i], nil
}
