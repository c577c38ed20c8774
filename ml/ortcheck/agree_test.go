package ortcheck

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/anya-edge/anya/ml/engine"
)

func TestAgreement(t *testing.T) {
	needORT(t)
	const batch = 256
	for _, tm := range allModels(t) {
		r := rand.New(rand.NewPCG(9, 9))
		x := tm.inputs(r, batch)
		in := engine.Tensor{Shape: []int{batch, tm.width}, Data: x}
		ortFloat := append([]float32(nil), newORT(t, tm.float, batch, tm.width, tm.outWidth).run(t, x)...)
		ortQDQ := append([]float32(nil), newORT(t, tm.qdq, batch, tm.width, tm.outWidth).run(t, x)...)

		// Float tolerance: 1e-5 relative to the output, or to the batch's mean output
		// magnitude for outputs near zero (two float32 summation orders differ by more than
		// 1e-5 of a result that is a small difference of large terms).
		var meanAbs float64
		for _, w := range ortFloat {
			meanAbs += math.Abs(float64(w)) / float64(len(ortFloat))
		}
		rel := func(w float64) float64 { return 1e-5 * max(math.Abs(w), meanAbs) }
		cases := []struct {
			name  string
			model []byte
			opt   engine.Options
			want  []float32
			// tol is the allowed difference for a reference value w.
			tol func(w float64) float64
		}{
			{"float", tm.float, engine.Options{Float: true}, ortFloat, rel},
			// QDQ with 7-bit weights: the integer arithmetic is the same in both engines, so
			// the results agree up to float rounding of the final scaling.
			{"qdq", tm.qdq, engine.Options{}, ortQDQ, rel},
			// Dynamic quantization against the float reference: within a few steps of the
			// weights' and activations' quantization (no bit-exact reference exists).
			{"dynamic-int8-vs-float", tm.float, engine.Options{}, ortFloat, func(w float64) float64 { return 0.03 * (1 + math.Abs(w)) }},
		}
		for _, tc := range cases {
			t.Run(tm.name+"/"+tc.name, func(t *testing.T) {
				em, err := engine.Load(tc.model, tc.opt)
				if err != nil {
					t.Fatal(err)
				}
				out, err := em.NewSession().Run(in)
				if err != nil {
					t.Fatal(err)
				}
				got := out[0].Data
				if len(got) != len(tc.want) {
					t.Fatalf("%d outputs, onnxruntime %d", len(got), len(tc.want))
				}
				exact, worst := 0, 0.0
				for i, w := range tc.want {
					d := math.Abs(float64(got[i]) - float64(w))
					if d > tc.tol(float64(w)) && !(tc.name == "dynamic-int8-vs-float" && tm.dynamicLossy) {
						t.Fatalf("output %d: %v, onnxruntime %v (diff %.3g > %.3g)", i, got[i], w, d, tc.tol(float64(w)))
					}
					if d <= rel(float64(w)) {
						exact++
					}
					worst = max(worst, d)
				}
				t.Logf("%d/%d outputs within 1e-5 (relative) of onnxruntime, largest difference %.3g", exact, len(got), worst)
			})
		}
	}
}
