package main

import (
	"math"
	"math/rand/v2"

	"github.com/anya-edge/anya/ml/mlp"
)

// config of a training run.
type config struct {
	hidden []int
	epochs int
	batch  int
	lr     float64
	huber  float64 // Huber loss threshold, in log1p units
	seed   uint64
}

// net is the trainer's float64 network: ReLU hidden layers, linear output.
type net struct {
	sizes []int
	w, b  [][]float64 // w[l] is [in][out] flattened
	// Adam state, same layout.
	mw, vw, mb, vb [][]float64
	step           int
}

func newNet(sizes []int, r *rand.Rand) *net {
	n := &net{sizes: sizes}
	for l := 1; l < len(sizes); l++ {
		in, out := sizes[l-1], sizes[l]
		w := make([]float64, in*out)
		lim := math.Sqrt(6 / float64(in+out))
		for i := range w {
			w[i] = (2*r.Float64() - 1) * lim
		}
		n.w = append(n.w, w)
		n.b = append(n.b, make([]float64, out))
		n.mw, n.vw = append(n.mw, make([]float64, in*out)), append(n.vw, make([]float64, in*out))
		n.mb, n.vb = append(n.mb, make([]float64, out)), append(n.vb, make([]float64, out))
	}
	return n
}

// forward returns the activations of every layer (acts[0] is x).
func (n *net) forward(x []float64) [][]float64 {
	acts := [][]float64{x}
	for l := range n.w {
		in, out := n.sizes[l], n.sizes[l+1]
		y := make([]float64, out)
		copy(y, n.b[l])
		for k, v := range acts[l] {
			row := n.w[l][k*out : (k+1)*out]
			for j := range y {
				y[j] += v * row[j]
			}
		}
		if l < len(n.w)-1 {
			for j := range y {
				y[j] = max(y[j], 0)
			}
		}
		_ = in
		acts = append(acts, y)
	}
	return acts
}

// train fits n to (xs, ys) by minibatch Adam on the Huber loss and returns the mean loss
// of each epoch.
func (n *net) train(xs [][]float64, ys [][3]float64, cfg config, r *rand.Rand) []float64 {
	order := make([]int, len(xs))
	for i := range order {
		order[i] = i
	}
	gw := make([][]float64, len(n.w))
	gb := make([][]float64, len(n.b))
	for l := range n.w {
		gw[l] = make([]float64, len(n.w[l]))
		gb[l] = make([]float64, len(n.b[l]))
	}
	var losses []float64
	for range cfg.epochs {
		r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		var total float64
		for start := 0; start < len(order); start += cfg.batch {
			end := min(start+cfg.batch, len(order))
			for l := range gw {
				clear(gw[l])
				clear(gb[l])
			}
			for _, i := range order[start:end] {
				acts := n.forward(xs[i])
				out := acts[len(acts)-1]
				delta := make([]float64, len(out))
				for j := range out {
					e := out[j] - ys[i][j]
					if math.Abs(e) <= cfg.huber {
						total += 0.5 * e * e
						delta[j] = e
					} else {
						total += cfg.huber * (math.Abs(e) - 0.5*cfg.huber)
						delta[j] = cfg.huber * math.Copysign(1, e)
					}
				}
				for l := len(n.w) - 1; l >= 0; l-- {
					in, outW := n.sizes[l], n.sizes[l+1]
					a := acts[l]
					prev := make([]float64, in)
					for k := range in {
						row := n.w[l][k*outW : (k+1)*outW]
						grow := gw[l][k*outW : (k+1)*outW]
						var s float64
						for j := range outW {
							grow[j] += a[k] * delta[j]
							s += row[j] * delta[j]
						}
						if l > 0 && a[k] <= 0 {
							s = 0 // ReLU
						}
						prev[k] = s
					}
					for j := range outW {
						gb[l][j] += delta[j]
					}
					delta = prev
				}
			}
			n.adam(gw, gb, float64(end-start), cfg.lr)
		}
		losses = append(losses, total/float64(len(order)))
	}
	return losses
}

func (n *net) adam(gw, gb [][]float64, count, lr float64) {
	const b1, b2, eps = 0.9, 0.999, 1e-8
	n.step++
	c1 := 1 - math.Pow(b1, float64(n.step))
	c2 := 1 - math.Pow(b2, float64(n.step))
	upd := func(p, g, m, v []float64) {
		for i := range p {
			gi := g[i] / count
			m[i] = b1*m[i] + (1-b1)*gi
			v[i] = b2*v[i] + (1-b2)*gi*gi
			p[i] -= lr * (m[i] / c1) / (math.Sqrt(v[i]/c2) + eps)
		}
	}
	for l := range n.w {
		upd(n.w[l], gw[l], n.mw[l], n.vw[l])
		upd(n.b[l], gb[l], n.mb[l], n.vb[l])
	}
}

// export turns n into an mlp.Net that takes unstandardised features: the standardisation
// (x − mean)/std is folded into the first layer.
func (n *net) export(mean, std []float64) *mlp.Net {
	out := &mlp.Net{Inputs: n.sizes[0]}
	for l := range n.w {
		in, o := n.sizes[l], n.sizes[l+1]
		layer := mlp.Layer{W: make([][]float32, in), B: make([]float32, o)}
		if l < len(n.w)-1 {
			layer.Act = "Relu"
		}
		bias := append([]float64(nil), n.b[l]...)
		for k := range in {
			layer.W[k] = make([]float32, o)
			for j := range o {
				w := n.w[l][k*o+j]
				if l == 0 {
					bias[j] -= mean[k] / std[k] * w
					w /= std[k]
				}
				layer.W[k][j] = float32(w)
			}
		}
		for j := range o {
			layer.B[j] = float32(bias[j])
		}
		out.Layers = append(out.Layers, layer)
	}
	return out
}

// standardize returns the features as float64 with each column's mean and deviation.
func standardize(ss []sample) (xs [][]float64, mean, std []float64) {
	d := len(ss[0].x)
	mean, std = make([]float64, d), make([]float64, d)
	for _, s := range ss {
		for i, v := range s.x {
			mean[i] += float64(v)
		}
	}
	for i := range mean {
		mean[i] /= float64(len(ss))
	}
	for _, s := range ss {
		for i, v := range s.x {
			std[i] += (float64(v) - mean[i]) * (float64(v) - mean[i])
		}
	}
	for i := range std {
		std[i] = math.Sqrt(std[i] / float64(len(ss)))
		if std[i] < 1e-9 {
			std[i] = 1
		}
	}
	for _, s := range ss {
		x := make([]float64, d)
		for i, v := range s.x {
			x[i] = (float64(v) - mean[i]) / std[i]
		}
		xs = append(xs, x)
	}
	return xs, mean, std
}

func randFor(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }
