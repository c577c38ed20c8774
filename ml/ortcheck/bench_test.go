package ortcheck

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/anya-edge/anya/ml/engine"
)

// BenchmarkLatency times ml/engine on one goroutine against onnxruntime on one intra-op
// thread, same model form, same inputs, in the same run, and reports the ratio
// ours/onnxruntime (below 1: faster than onnxruntime). Pairs:
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
				// onnxruntime is timed once per pair, next to ours (b.Run calls its
				// function several times while it sizes b.N).
				ortNs := nsPerOp(b, func() error { return o.s.Run() })
				b.Run(fmt.Sprintf("%s/%s/batch%d", tm.name, pair.name, batch), func(b *testing.B) {
					em, err := engine.Load(pair.ours, pair.opt)
					if err != nil {
						b.Fatal(err)
					}
					s := em.NewSession()
					in := engine.Tensor{Shape: []int{batch, tm.width}, Data: x}
					if _, err := s.Run(in); err != nil {
						b.Fatal(err)
					}
					b.ReportAllocs()
					b.ResetTimer()
					for b.Loop() {
						if _, err := s.Run(in); err != nil {
							b.Fatal(err)
						}
					}
					ours := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
					theirs := ortNs
					b.ReportMetric(theirs, "ort-ns/op")
					b.ReportMetric(ours/theirs, "ratio")
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
			theirs := nsPerOp(b, func() error {
				s, err := newORTSession(form.model, 1, tm.width, tm.outWidth)
				if err == nil {
					s.destroy()
				}
				return err
			})
			b.Run(tm.name+"/"+form.name, func(b *testing.B) {
				b.ResetTimer()
				for b.Loop() {
					if _, err := engine.Load(form.model, engine.Options{}); err != nil {
						b.Fatal(err)
					}
				}
				ours := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
				b.ReportMetric(theirs, "ort-ns/op")
				b.ReportMetric(ours/theirs, "ratio")
			})
		}
	}
}

// nsPerOp times fn (onnxruntime's side) for as long as -benchtime asks, after a warm-up.
// testing.Benchmark cannot be used inside a benchmark (it waits for the lock the running
// benchmark holds).
func nsPerOp(b *testing.B, fn func() error) float64 {
	b.Helper()
	d := benchTime()
	for range 10 {
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
