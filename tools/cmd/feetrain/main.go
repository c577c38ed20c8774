package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/anya-edge/anya/ml/engine"
	"github.com/anya-edge/anya/ml/feemodel"
	"github.com/anya-edge/anya/ml/mlp"
	"github.com/anya-edge/anya/ml/onnx"
)

func main() {
	var o options
	flag.StringVar(&o.data, "data", "../shared/data/mainnet-fees-2024-09-16_2024-11-30.csv", "data set (CSV)")
	flag.StringVar(&o.out, "out", "ml/feemodel/testdata", "directory for fee-f32.onnx, fee-int8.onnx and report.md")
	flag.DurationVar(&o.holdout, "holdout", 14*24*time.Hour, "the file's last stretch held out of training")
	flag.IntVar(&o.cfg.epochs, "epochs", 60, "training epochs")
	flag.Uint64Var(&o.cfg.seed, "seed", 1, "random seed")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(context.Background(), o, log); err != nil {
		log.Error("feetrain failed", "err", err)
		os.Exit(1)
	}
}

type options struct {
	data, out string
	holdout   time.Duration
	cfg       config
}

// result is what a run measured.
type result struct {
	train, test int
	// mae[target][source]: sources are model f32, model int8, persistence, mempool median.
	mae    [3][4]float64
	losses []float64
}

var sources = [4]string{"model (float32)", "model (int8, shipped)", "persistence", "mempool median"}

func run(ctx context.Context, o options, log *slog.Logger) error {
	if o.cfg.hidden == nil {
		o.cfg.hidden = []int{32, 32}
	}
	if o.cfg.batch == 0 {
		o.cfg.batch, o.cfg.lr, o.cfg.huber = 64, 1e-3, 0.1
	}
	f, err := os.Open(o.data)
	if err != nil {
		return fmt.Errorf("open data set: %w", err)
	}
	defer f.Close()
	blocks, err := readBlocks(f)
	if err != nil {
		return fmt.Errorf("read %s: %w", o.data, err)
	}
	ss, err := samples(blocks)
	if err != nil {
		return fmt.Errorf("build samples: %w", err)
	}
	if len(ss) < 10 {
		return errors.New("too few samples")
	}
	cut := ss[len(ss)-1].time.Add(-o.holdout)
	var trainSet, testSet []sample
	for _, s := range ss {
		if s.time.Before(cut) {
			trainSet = append(trainSet, s)
		} else {
			testSet = append(testSet, s)
		}
	}
	if len(trainSet) == 0 || len(testSet) == 0 {
		return fmt.Errorf("split at %v leaves %d training and %d test samples", cut, len(trainSet), len(testSet))
	}
	log.Info("data", "blocks", len(blocks), "samples", len(ss), "train", len(trainSet), "test", len(testSet), "test from", cut)

	r := randFor(o.cfg.seed)
	xs, mean, std := standardize(trainSet)
	ys := make([][3]float64, len(trainSet))
	for i, s := range trainSet {
		ys[i] = s.y
	}
	sizes := append(append([]int{feemodel.NumFeatures}, o.cfg.hidden...), len(feemodel.Targets))
	n := newNet(sizes, r)
	res := result{train: len(trainSet), test: len(testSet)}
	res.losses = n.train(xs, ys, o.cfg, r)
	log.Info("trained", "first loss", res.losses[0], "last loss", res.losses[len(res.losses)-1])

	exp := n.export(mean, std)
	fm, err := exp.Float(true)
	if err != nil {
		return fmt.Errorf("export float model: %w", err)
	}
	calib := make([][]float32, len(trainSet))
	for i, s := range trainSet {
		calib[i] = s.x
	}
	qm, err := exp.QDQ(calib, mlp.QuantOptions{ReduceRange: true, FloatFirst: true})
	if err != nil {
		return fmt.Errorf("quantize model: %w", err)
	}
	fBytes, qBytes := onnx.Encode(fm), onnx.Encode(qm)

	// Evaluate on the held-out stretch.
	em, err := engine.Load(qBytes, engine.Options{})
	if err != nil {
		return fmt.Errorf("load int8 model: %w", err)
	}
	x := make([]float32, 0, len(testSet)*feemodel.NumFeatures)
	for _, s := range testSet {
		x = append(x, s.x...)
	}
	out, err := em.NewSession().Run(engine.Tensor{Shape: []int{len(testSet), feemodel.NumFeatures}, Data: x})
	if err != nil {
		return fmt.Errorf("run int8 model: %w", err)
	}
	for i, s := range testSet {
		fl := exp.Forward(s.x)
		pf := fl[len(fl)-1]
		for t := range feemodel.Targets {
			preds := [4]float64{math.Expm1(pf[t]), math.Expm1(float64(out[0].Data[i*3+t])), s.persistence, s.mempool}
			for src, p := range preds {
				res.mae[t][src] += math.Abs(p - s.raw[t])
			}
		}
	}
	for t := range res.mae {
		for src := range res.mae[t] {
			res.mae[t][src] /= float64(len(testSet))
		}
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("create output directory: %w", err)
	}
	for name, b := range map[string][]byte{"fee-f32.onnx": fBytes, "fee-int8.onnx": qBytes} {
		if err := os.WriteFile(filepath.Join(o.out, name), b, 0o644); err != nil {
			return fmt.Errorf("write model: %w", err)
		}
	}
	var rep strings.Builder
	report(&rep, o, res, cut)
	if err := os.WriteFile(filepath.Join(o.out, "report.md"), []byte(rep.String()), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	fmt.Print(rep.String())
	return ctx.Err()
}

func report(w io.Writer, o options, res result, cut time.Time) {
	fmt.Fprintf(w, "# Fee model: held-out mean absolute error (sat/vB)\n\n")
	fmt.Fprintf(w, "Data: %s; %d training samples, %d held-out samples (blocks from %s on).\n",
		filepath.Base(o.data), res.train, res.test, cut.Format("2006-01-02 15:04"))
	fmt.Fprintf(w, "Network 8→%v→3 (ReLU), %d epochs, seed %d. Targets: median fee rate of the next block;\n"+
		"lowest block median among the next 3 and next 6 blocks.\n\n", o.cfg.hidden, o.cfg.epochs, o.cfg.seed)
	fmt.Fprintf(w, "| target | %s |\n|---|---|---|---|---|\n", strings.Join(sources[:], " | "))
	for t, tg := range feemodel.Targets {
		fmt.Fprintf(w, "| %d block(s) |", tg)
		for src := range sources {
			fmt.Fprintf(w, " %.3f |", res.mae[t][src])
		}
		fmt.Fprintln(w)
	}
}
