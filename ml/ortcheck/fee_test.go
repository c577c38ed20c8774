package ortcheck

import (
	"math/rand/v2"
	"os"
	"testing"

	"github.com/anya-edge/anya/ml/feemodel"
)

// feeModel is the shipped fee model (int8, with its float32 twin from the same training
// run), on feature vectors spread over the range real mempools give (log1p of 0…400).
func feeModel(tb testing.TB) testModel {
	tb.Helper()
	f32, err := os.ReadFile("../feemodel/testdata/fee-f32.onnx")
	if err != nil {
		tb.Fatal(err)
	}
	return testModel{name: "fee", float: f32, qdq: feemodel.ONNX(), width: feemodel.NumFeatures, outWidth: len(feemodel.Targets), dynamicLossy: true,
		inputs: func(r *rand.Rand, n int) []float32 {
			x := make([]float32, n*feemodel.NumFeatures)
			for i := range x {
				x[i] = float32(6 * r.Float64())
			}
			return x
		}}
}
