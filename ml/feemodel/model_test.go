package feemodel

import (
	"bytes"
	"math"
	"os"
	"strings"
	"sync"
	"testing"
)

func calm() Snapshot {
	return Snapshot{Txs: 40000, VSizeMB: 30, Median: 2, Mean: 2.5, P10: 1, P90: 3, Max: 150, Std: 2}
}

func busy() Snapshot {
	return Snapshot{Txs: 150000, VSizeMB: 250, Median: 40, Mean: 50, P10: 10, P90: 90, Max: 900, Std: 60}
}

func TestShippedModelIsTestdata(t *testing.T) {
	b, err := os.ReadFile("testdata/fee-int8.onnx")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, ONNX()) {
		t.Fatal("embedded model differs from testdata/fee-int8.onnx")
	}
}

func TestPredictions(t *testing.T) {
	m, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		snap   Snapshot
		lo, hi float64 // plausible range of the 1-block estimate, sat/vB
	}{
		{"calm mempool", calm(), 1, 10},
		{"busy mempool", busy(), 10, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := m.Predict(tc.snap)
			if err != nil {
				t.Fatal(err)
			}
			if r[0] < tc.lo || r[0] > tc.hi {
				t.Errorf("1-block estimate %.2f sat/vB outside [%v, %v]", r[0], tc.lo, tc.hi)
			}
			if r[1] > r[0] || r[2] > r[1] {
				t.Errorf("estimates %v increase with the target", r)
			}
			for _, tg := range []struct {
				target uint32
				idx    int
			}{{1, 0}, {2, 0}, {3, 1}, {5, 1}, {6, 2}, {144, 2}} {
				got, err := m.Estimate(tc.snap, tg.target)
				if err != nil || got != r[tg.idx] {
					t.Errorf("Estimate(target %d) = %v, %v; want %v", tg.target, got, err, r[tg.idx])
				}
			}
		})
	}
	rc, _ := m.Predict(calm())
	rb, _ := m.Predict(busy())
	if rb[0] <= rc[0] {
		t.Errorf("busy mempool %.2f sat/vB not above calm %.2f", rb[0], rc[0])
	}
}

func TestBadSnapshots(t *testing.T) {
	m, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		change func(s *Snapshot)
		want   string
	}{
		{"empty mempool", func(s *Snapshot) { s.Txs = 0 }, "empty mempool"},
		{"NaN", func(s *Snapshot) { s.Median = math.NaN() }, "median) is NaN"},
		{"Inf", func(s *Snapshot) { s.Max = math.Inf(1) }, "max) is +Inf"},
		{"negative", func(s *Snapshot) { s.VSizeMB = -1 }, "vsize MB) is -1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := calm()
			tc.change(&s)
			if _, err := m.Predict(s); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := New([]byte("not a model")); err == nil {
		t.Error("New accepted garbage")
	}
}

func TestConcurrentUse(t *testing.T) {
	m, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := m.Predict(busy())
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if got, err := m.Predict(busy()); err != nil || got != want {
					t.Errorf("concurrent Predict = %v, %v; want %v", got, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestEstimateAllocatesNothing(t *testing.T) {
	m, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	s := busy()
	if _, err := m.Estimate(s, 3); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = m.Estimate(s, 3) }); n != 0 {
		t.Fatalf("%v allocations per Estimate", n)
	}
}

func BenchmarkEstimate(b *testing.B) {
	m, err := Load()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Estimate(busy(), 3); err != nil {
			b.Fatal(err)
		}
	}
}
