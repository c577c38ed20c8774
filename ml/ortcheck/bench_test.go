package ortcheck

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/anya-edge/anya/ml/engine"
)

// BenchmarkLatency times ml/engine on one goroutine against onnxruntime on one intra-op
// thread, same model form, same inputs, in the same run, and reports the ratio
// ours/onnxruntime (below 1: faster than onnxruntime). The two are timed alternately in
// rounds and each keeps its best round, so that load from other processes on a shared
// machine does not land on one side only ("ort-ns/op", "our-ns/op", "ratio"; the usual
// ns/op is ours over b.N). Pairs:
//   - int8: our QDQ execution vs onnxruntime's (fused QGemm), both on the QDQ model;
//   - dyn-vs-f32: our default for float models (dynamic int8) vs onnxruntime float32;
//   - f32: both in float32.
func BenchmarkLatency(b *testing.B) {
	needORT(b)
	for _, tm := range allModels(b) {
		for _, pair := range []struct {
			name         string
			ours, theirs []byte
			opt          engine.Options
		}{
			{"int8", tm.qdq, tm.qdq, engine.Options{}},
			{"dyn-vs-f32", tm.float, tm.float, engine.Options{}},
			{"f32", tm.float, tm.float, engine.Options{Float: true}},
		} {
			for _, batch := range []int{1, 256} {
				x := tm.inputs(rand.New(rand.NewPCG(1, 1)), batch)
				o := newORT(b, pair.theirs, batch, tm.width, tm.outWidth)
				copy(o.in.GetData(), x)
				em, err := engine.Load(pair.ours, pair.opt)
				if err != nil {
					b.Fatal(err)
				}
				s := em.NewSession()
				in := engine.Tensor{Shape: []int{batch, tm.width}, Data: x}
				// Timed here, once per pair (b.Run calls its function several times
				// while it sizes b.N).
				ortNs, ourNs := alternate(b, func() error { return o.s.Run() }, func() error {
					_, err := s.Run(in)
					return err
				})
				b.Run(fmt.Sprintf("%s/%s/batch%d", tm.name, pair.name, batch), func(b *testing.B) {
					b.ReportAllocs()
					b.ResetTimer()
					for b.Loop() {
						if _, err := s.Run(in); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(ortNs, "ort-ns/op")
					b.ReportMetric(ourNs, "our-ns/op")
					b.ReportMetric(ourNs/ortNs, "ratio")
				})
			}
		}
	}
}

// BenchmarkLoad compares loading a model: ml/engine.Load against creating an
// onnxruntime session (one thread, all graph optimisations) from the same bytes.
func BenchmarkLoad(b *testing.B) {
	needORT(b)
	for _, tm := range allModels(b) {
		for _, form := range []struct {
			name  string
			model []byte
		}{{"f32", tm.float}, {"int8", tm.qdq}} {
			theirs, ours := alternate(b, func() error {
				s, err := newORTSession(form.model, 1, tm.width, tm.outWidth)
				if err == nil {
					s.destroy()
				}
				return err
			}, func() error {
				_, err := engine.Load(form.model, engine.Options{})
				return err
			})
			b.Run(tm.name+"/"+form.name, func(b *testing.B) {
				b.ResetTimer()
				for b.Loop() {
					if _, err := engine.Load(form.model, engine.Options{}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(theirs, "ort-ns/op")
				b.ReportMetric(ours, "our-ns/op")
				b.ReportMetric(ours/theirs, "ratio")
			})
		}
	}
}

// rounds is how many alternating rounds alternate times.
const rounds = 8

// alternate times theirs and ours in alternating rounds that together last about
// -benchtime each, and returns each one's best round in ns per call.
func alternate(b *testing.B, theirs, ours func() error) (float64, float64) {
	b.Helper()
	d := benchTime() / rounds
	t, o := math.Inf(1), math.Inf(1)
	for range rounds {
		t = min(t, nsPerOp(b, theirs, d))
		o = min(o, nsPerOp(b, ours, d))
	}
	return t, o
}

// nsPerOp times fn for d, after a warm-up. testing.Benchmark cannot be used inside a
// benchmark (it waits for the lock the running benchmark holds).
func nsPerOp(b *testing.B, fn func() error, d time.Duration) float64 {
	b.Helper()
	for range 3 {
		if err := fn(); err != nil {
			b.Fatal(err)
		}
	}
	n, start := 0, time.Now()
	for time.Since(start) < d || n < 10 {
		if err := fn(); err != nil {
			b.Fatal(err)
		}
		n++
	}
	return float64(time.Since(start).Nanoseconds()) / float64(n)
}

// benchTime is -test.benchtime when it is a duration, else one second.
func benchTime() time.Duration {
	if f := flag.Lookup("test.benchtime"); f != nil {
		if d, err := time.ParseDuration(f.Value.String()); err == nil {
			return d
		}
	}
	return time.Second
}
