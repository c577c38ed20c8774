package engine

import (
	"errors"
	"fmt"
	"math"

	"github.com/anya-edge/anya/ml/kernel"
	"github.com/anya-edge/anya/ml/onnx"
)

// linearOrGeneric compiles MatMul (alpha = beta = 1, no bias) or Gemm: a constant weight
// matrix makes a linear layer (int8 or float), anything else the generic float product.
func (c *compiler) linearOrGeneric(n *onnx.Node, b base, transA, transB bool, alpha, beta float32, bias int) (step, error) {
	isGemm := n.OpType == "Gemm"
	w := &c.m.vals[b.in[1]]
	if !w.konst || len(w.shape) != 2 || transA {
		if isGemm && (len(b.in) > 2 && b.in[2] >= 0) && !c.m.vals[b.in[2]].konst {
			return nil, errors.New("Gemm with a computed C is not supported")
		}
		return &matmul{base: b, gemm: isGemm, transA: transA, transB: transB, alpha: alpha, beta: beta, bias: bias}, nil
	}
	k, nOut := w.shape[0], w.shape[1]
	if transB {
		k, nOut = nOut, k
	}
	l := &linear{base: b, gemm: isGemm, k: k, n: nOut, kp: (k + 15) &^ 15}
	l.in = []int{b.in[0]}
	// Bias: beta·C, which must repeat along the rows (a scalar, [N] or [1,N]).
	if bias >= 0 {
		cv := &c.m.vals[bias]
		if !cv.konst {
			return nil, errors.New("Gemm with a computed C is not supported")
		}
		l.bias = make([]float32, nOut)
		switch {
		case len(cv.data) == 1:
			for j := range l.bias {
				l.bias[j] = beta * cv.data[0]
			}
		case len(cv.data) == nOut && cv.shape[len(cv.shape)-1] == nOut:
			for j := range l.bias {
				l.bias[j] = beta * cv.data[j]
			}
		default:
			return &matmul{base: b, gemm: true, transB: transB, alpha: alpha, beta: beta, bias: bias}, nil
		}
	}
	wAt := func(kk, j int) float32 {
		if transB {
			return w.data[j*k+kk]
		}
		return w.data[kk*nOut+j]
	}
	// QDQ: the activation is DequantizeLinear(QuantizeLinear(x)) and the weight a folded
	// DequantizeLinear of int8 constants: run on the integers. When nothing else reads the
	// quantized activation, the layer quantizes x itself (the pair is then dropped).
	if d, ok := c.dq[b.in[1]]; ok && (d.q.dtype == onnx.Int8 || d.q.dtype == onnx.Uint8) {
		if p := c.prod[b.in[0]]; p != nil && p.node.OpType == "DequantizeLinear" {
			if q := c.prod[p.in[0]]; q != nil && q.node.OpType == "QuantizeLinear" {
				if err := l.fromQDQ(c, d, p, transB, alpha); err == nil {
					if qs, ok := q.st.(*qdq); ok && c.uses[n.Inputs[0]] == 1 && c.uses[p.node.Inputs[0]] == 1 {
						l.mode, l.in = quantizeInt8, []int{q.in[0]}
						l.sa, l.lo, l.hi = c.m.vals[q.in[1]].data[0], qs.lo, qs.hi
					}
					return l, nil
				}
			}
		}
	}
	if c.opt.Float {
		n8 := l.n8()
		l.w = make([]float32, k*n8)
		for kk := range k {
			for j := range nOut {
				l.w[kk*n8+j] = alpha * wAt(kk, j)
			}
		}
		l.biasF = make([]float32, n8)
		copy(l.biasF, l.bias)
		return l, nil
	}
	// Dynamic quantization: weights symmetric per output channel.
	l.mode = dynamicInt8
	l.wq = make([]int16, l.np()*l.kp)
	l.ws = make([]float32, nOut)
	for j := range nOut {
		var amax float32
		for kk := range k {
			amax = max(amax, float32(math.Abs(float64(wAt(kk, j)))))
		}
		if amax == 0 {
			continue
		}
		s := amax / 127
		l.ws[j] = s * alpha
		for kk := range k {
			l.wq[j*l.kp+kk] = int16(math.RoundToEven(float64(wAt(kk, j) / s)))
		}
	}
	return l, nil
}

// fromQDQ sets l up to run on the quantized activation (p's input, the QuantizeLinear
// output) and the int8 weights behind d.
func (l *linear) fromQDQ(c *compiler, d *dqConst, p *producer, transB bool, alpha float32) error {
	sa, za := &c.m.vals[p.in[1]], float32(0)
	if len(sa.data) != 1 {
		return errors.New("per-axis activation scale")
	}
	if len(p.in) > 2 && p.in[2] >= 0 {
		za = c.m.vals[p.in[2]].data[0]
	}
	// The weight's channel axis must be the output axis.
	chAxis := 1
	if transB {
		chAxis = 0
	}
	if len(d.scale) > 1 && d.axis != chAxis && d.axis != chAxis-2 {
		return errors.New("weights quantized along the input axis")
	}
	l.mode = staticInt8
	l.in = []int{p.in[0]}
	l.za = za
	l.wq = make([]int16, l.np()*l.kp)
	l.ws = make([]float32, l.n)
	for j := range l.n {
		ch := 0
		if len(d.scale) > 1 {
			ch = j
		}
		var zw float32
		if d.zp != nil {
			zw = d.zp[ch]
		}
		l.ws[j] = sa.data[0] * d.scale[ch] * alpha
		for kk := range l.k {
			var q float32
			if transB {
				q = d.q.data[j*l.k+kk]
			} else {
				q = d.q.data[kk*l.n+j]
			}
			l.wq[j*l.kp+kk] = int16(q - zw)
		}
	}
	return nil
}

type linearMode int

const (
	floatMode linearMode = iota
	dynamicInt8
	staticInt8   // input: the quantized activation (integers in float32)
	quantizeInt8 // input: the float activation, quantized with sa, za by the layer
)

// linear is x·W + bias with a constant W of K rows and N columns; x has K as its last
// dimension (MatMul) or is [M, K] (Gemm).
type linear struct {
	base
	gemm     bool
	mode     linearMode
	k, n, kp int
	w        []float32 // float: [K][n8], alpha folded in, zero padded
	biasF    []float32 // float: [n8], zero padded
	wq       []int16   // int8 modes: [N][kp], weights minus their zero point
	ws       []float32 // int8 modes: per column, weight scale · alpha (· activation scale when static)
	za       float32   // static: the activation's zero point
	sa       float32   // quantizeInt8: the activation's scale
	lo, hi   float32   // quantizeInt8: range of the quantized type
	bias     []float32 // [N] or nil
	relu     bool      // apply ReLU to the result (a fused Relu node)
}

// n8 is N rounded up to 8 columns, the float kernel's width.
func (l *linear) n8() int { return (l.n + 7) &^ 7 }

// np is N rounded up to the kernel's block of 4 columns: wq has np rows (the extra ones
// zero), so that narrow layers (a single output) also run vectorised.
func (l *linear) np() int { return (l.n + 3) &^ 3 }

func (l *linear) run(f *frame, sc *scratch) error {
	x, y := &f.vals[l.in[0]], &f.vals[l.out[0]]
	r := len(x.shape)
	if r < 1 || x.shape[r-1] != l.k || (l.gemm && r != 2) {
		return fmt.Errorf("input shape %v, want [..., %d]", x.shape, l.k)
	}
	shape := f.tmp[:r]
	copy(shape, x.shape)
	shape[r-1] = l.n
	if err := y.setShape(shape); err != nil {
		return err
	}
	y.dtype = onnx.Float
	m := len(x.data) / l.k
	if m == 0 {
		return nil
	}
	if l.mode == floatMode {
		n8 := l.n8()
		floor := float32(math.Inf(-1))
		if l.relu {
			floor = 0
		}
		if n8 == l.n { // straight into the output
			for i := range m {
				kernel.LinearF32(y.data[i*l.n:(i+1)*l.n], x.data[i*l.k:(i+1)*l.k], l.w, n8, l.biasF, floor)
			}
			return nil
		}
		if cap(sc.f32) < n8 {
			sc.f32 = make([]float32, n8)
		}
		row := sc.f32[:n8]
		for i := range m {
			kernel.LinearF32(row, x.data[i*l.k:(i+1)*l.k], l.w, n8, l.biasF, floor)
			copy(y.data[i*l.n:(i+1)*l.n], row)
		}
		return nil
	}
	// Quantize the activation into int16 rows of kp (zero padded).
	if need := m * l.kp; cap(sc.i16) < need {
		sc.i16 = make([]int16, need)
	}
	a := sc.i16[:m*l.kp]
	scale := float32(1)
	switch l.mode {
	case dynamicInt8:
		scale = dynamicQuantize(x.data, a, l.k, l.kp)
	case quantizeInt8:
		if l.k == l.kp { // no padding: one call for the whole batch
			kernel.QuantizeS16(a, x.data[:m*l.k], l.sa, l.za, l.lo, l.hi)
			break
		}
		for i := range m {
			row := a[i*l.kp : (i+1)*l.kp]
			kernel.QuantizeS16(row[:l.k], x.data[i*l.k:(i+1)*l.k], l.sa, l.za, l.lo, l.hi)
			clear(row[l.k:])
		}
	default:
		for i := range m {
			row, xr := a[i*l.kp:(i+1)*l.kp], x.data[i*l.k:(i+1)*l.k]
			for kk, v := range xr {
				row[kk] = int16(v - l.za)
			}
			clear(row[l.k:])
		}
	}
	np := l.np()
	if need := m * np; cap(sc.i32) < need {
		sc.i32 = make([]int32, need)
	}
	acc := sc.i32[:m*np]
	kernel.GemmS16(m, np, l.kp, a, l.kp, l.wq, l.kp, acc, np)
	scales := l.ws
	if scale != 1 {
		if cap(sc.f32) < l.n {
			sc.f32 = make([]float32, l.n)
		}
		scales = sc.f32[:l.n]
		for j, w := range l.ws {
			scales[j] = scale * w
		}
	}
	floor := float32(math.Inf(-1))
	if l.relu {
		floor = 0
	}
	for i := range m {
		kernel.ScaleRow(y.data[i*l.n:(i+1)*l.n], acc[i*np:i*np+l.n], scales, l.bias, floor)
	}
	return nil
}

// dynamicQuantize quantizes x (rows of k) to uint8 per tensor as DynamicQuantizeLinear
// does and stores q − zero point in a (rows of kp, zero padded); it returns the scale.
func dynamicQuantize(x []float32, a []int16, k, kp int) float32 {
	var lo, hi float32
	for _, v := range x {
		lo, hi = min(lo, v), max(hi, v)
	}
	scale := (hi - lo) / 255
	if scale == 0 {
		clear(a)
		return 0
	}
	zp := float32(math.RoundToEven(float64(0 - lo/scale)))
	zp = min(max(zp, 0), 255)
	if k == kp {
		kernel.QuantizeS16(a, x, scale, zp, 0, 255)
		return scale
	}
	m := len(x) / k
	for i := range m {
		row := a[i*kp : (i+1)*kp]
		kernel.QuantizeS16(row[:k], x[i*k:(i+1)*k], scale, zp, 0, 255)
		clear(row[k:])
	}
	return scale
}

// matmul is the general float product: MatMul with numpy batching, or Gemm with any
// transposes and a constant C broadcast to [M, N].
type matmul struct {
	base
	gemm           bool
	transA, transB bool
	alpha, beta    float32
	bias           int
}

func (o *matmul) run(f *frame, _ *scratch) error {
	a, b, y := &f.vals[o.in[0]], &f.vals[o.in[1]], &f.vals[o.out[0]]
	ra, rb := len(a.shape), len(b.shape)
	if ra < 2 || rb < 2 || (o.gemm && (ra != 2 || rb != 2)) {
		return fmt.Errorf("shapes %v and %v: only rank 2 and up are supported", a.shape, b.shape)
	}
	m, k := a.shape[ra-2], a.shape[ra-1]
	if o.transA {
		m, k = k, m
	}
	kb, n := b.shape[rb-2], b.shape[rb-1]
	if o.transB {
		kb, n = n, kb
	}
	if k != kb {
		return fmt.Errorf("shapes %v and %v do not multiply", a.shape, b.shape)
	}
	// Batch dims: b's must equal a's trailing batch dims or b is 2-D.
	batchA := a.shape[:ra-2]
	if rb > 2 && !equal(b.shape[:rb-2], batchA) {
		return fmt.Errorf("batch dims %v and %v differ", a.shape, b.shape)
	}
	shape := f.tmp[:ra]
	copy(shape, batchA)
	shape[ra-2], shape[ra-1] = m, n
	if err := y.setShape(shape); err != nil {
		return err
	}
	y.dtype = onnx.Float
	var cdata []float32
	var cst [2]int
	if o.bias >= 0 {
		cv := &f.vals[o.bias]
		if _, err := broadcastShape(&f.tmp, cv.shape, []int{m, n}); err != nil || len(cv.shape) > 2 {
			return fmt.Errorf("C of shape %v for [%d %d]", cv.shape, m, n)
		}
		bstrides(cst[:], cv.shape, []int{m, n})
		cdata = cv.data
	}
	batches := numel(batchA)
	for bi := range batches {
		ad := a.data[bi*m*k : (bi+1)*m*k]
		bd := b.data
		if rb > 2 {
			bd = b.data[bi*k*n : (bi+1)*k*n]
		}
		yd := y.data[bi*m*n : (bi+1)*m*n]
		for i := range m {
			for j := range n {
				var s float32
				for kk := range k {
					av := ad[i*k+kk]
					if o.transA {
						av = ad[kk*m+i]
					}
					bv := bd[kk*n+j]
					if o.transB {
						bv = bd[j*k+kk]
					}
					s += av * bv
				}
				s *= o.alpha
				if cdata != nil {
					s += o.beta * cdata[i*cst[0]+j*cst[1]]
				}
				yd[i*n+j] = s
			}
		}
	}
	return nil
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
