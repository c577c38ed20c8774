package ortcheck

import (
	"math/rand/v2"
	"testing"

	"github.com/anya-edge/anya/ml/mlp"
	"github.com/anya-edge/anya/ml/onnx"
)

// testModel is a network in both forms, with what the comparisons need.
type testModel struct {
	name            string
	float, qdq      []byte
	width, outWidth int
	// dynamicLossy: per-tensor dynamic quantization of this model's inputs is known to
	// be too coarse (features of very different ranges); that comparison is only logged.
	dynamicLossy bool
	inputs       func(r *rand.Rand, n int) []float32
}

func normalInputs(width int) func(r *rand.Rand, n int) []float32 {
	return func(r *rand.Rand, n int) []float32 {
		x := make([]float32, n*width)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		return x
	}
}

// fromNet exports net and calibrates its QDQ form on calib.
func fromNet(tb testing.TB, name string, net *mlp.Net, calib [][]float32, qo mlp.QuantOptions, inputs func(*rand.Rand, int) []float32) testModel {
	tb.Helper()
	fm, err := net.Float(true)
	if err != nil {
		tb.Fatal(err)
	}
	qm, err := net.QDQ(calib, qo)
	if err != nil {
		tb.Fatal(err)
	}
	return testModel{name: name, float: onnx.Encode(fm), qdq: onnx.Encode(qm), width: net.Inputs, outWidth: net.Outputs(),
		inputs: inputs}
}

// generatedModels are the ReLU MLP of the shared notes (32→64→64→1) and a Tanh/Softmax
// classifier.
func generatedModels(tb testing.TB) []testModel {
	r := rand.New(rand.NewPCG(42, 1))
	var out []testModel
	for _, spec := range []struct {
		name      string
		sizes     []int
		act, last string
	}{
		{"mlp", []int{32, 64, 64, 1}, "Relu", ""},
		{"tanh-softmax", []int{16, 32, 8}, "Tanh", "Softmax"},
	} {
		net := mlp.Random(r, spec.sizes, spec.act, spec.last)
		in := normalInputs(spec.sizes[0])
		flat := in(r, 500)
		calib := make([][]float32, 500)
		for i := range calib {
			calib[i] = flat[i*spec.sizes[0] : (i+1)*spec.sizes[0]]
		}
		out = append(out, fromNet(tb, spec.name, net, calib, mlp.QuantOptions{ReduceRange: true}, in))
	}
	return out
}

func allModels(tb testing.TB) []testModel {
	return append(generatedModels(tb), feeModel(tb))
}
