package txsize

import (
	"fmt"

	"github.com/btcsuite/btcd/txscript"
)

// WitnessScaleFactor is the weight of one non-witness byte (BIP141).
const WitnessScaleFactor = 4

// FeeRate is a fee rate in satoshis per 1000 virtual bytes (sat/kvB), the unit of
// chain.FeeRate; 1 sat/vB is 1000.
type FeeRate int64

// SatPerVByte returns the fee rate of n sat/vB.
func SatPerVByte(n int64) FeeRate { return FeeRate(n * 1000) }

// Fee is the fee in satoshis for vsize virtual bytes at rate r, rounded up.
func (r FeeRate) Fee(vsize int) int64 {
	if r <= 0 || vsize <= 0 {
		return 0
	}
	return (int64(r)*int64(vsize) + 999) / 1000
}

// FeeWeight is the fee for a weight in WU, rounded up via the vsize.
func (r FeeRate) FeeWeight(weight int) int64 { return r.Fee(VSize(weight)) }

func (r FeeRate) String() string { return fmt.Sprintf("%.3f sat/vB", float64(r)/1000) }

// VSize converts a weight to virtual bytes, rounding up.
func VSize(weight int) int { return (weight + WitnessScaleFactor - 1) / WitnessScaleFactor }

// ScriptType is the kind of an output script, as far as its size and the size of the input
// that spends it are concerned.
type ScriptType int

const (
	P2PKH ScriptType = iota + 1
	P2SHP2WPKH
	P2WPKH
	P2TR           // key-path spend
	P2WSHMulti2of3 // wsh(multi(2,…3 keys…)) or wsh(sortedmulti(2,…))
	P2SH           // output size only; spending size depends on the redeem script
	P2WSH          // output size only; spending size depends on the witness script
)

var typeNames = map[ScriptType]string{
	P2PKH: "p2pkh", P2SHP2WPKH: "p2sh-p2wpkh", P2WPKH: "p2wpkh", P2TR: "p2tr",
	P2WSHMulti2of3: "p2wsh-2of3", P2SH: "p2sh", P2WSH: "p2wsh",
}

func (t ScriptType) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("ScriptType(%d)", int(t))
}

// Sizes of the pieces of a transaction, in bytes.
const (
	ecdsaSigLen   = 72 // DER signature of at most 71 bytes + sighash byte
	schnorrSigLen = 64 // SIGHASH_DEFAULT
	pubKeyLen     = 33 // compressed
	outpointLen   = 36
	sequenceLen   = 4
	valueLen      = 8
	// txOverhead is version (4) + locktime (4); the in/out count varints are added apart.
	txOverhead = 8
	// segwitMarkerWeight is the marker and flag bytes, witness data counted at weight 1.
	segwitMarkerWeight = 2
)

// ScriptPubKeyLen is the length of the output script of type t.
func ScriptPubKeyLen(t ScriptType) (int, error) {
	switch t {
	case P2PKH:
		return 25, nil
	case P2SHP2WPKH, P2SH:
		return 23, nil
	case P2WPKH:
		return 22, nil
	case P2TR, P2WSHMulti2of3, P2WSH:
		return 34, nil
	}
	return 0, fmt.Errorf("txsize: unknown script type %v", t)
}

// OutputSize is the serialized size of an output paying a script of type t (its weight is
// four times that).
func OutputSize(t ScriptType) (int, error) {
	n, err := ScriptPubKeyLen(t)
	if err != nil {
		return 0, err
	}
	return OutputSizeScript(n), nil
}

// OutputSizeScript is the serialized size of an output with a script of n bytes.
func OutputSizeScript(n int) int { return valueLen + VarIntSize(uint64(n)) + n }

// InputWeight is the worst-case weight of an input spending an output of type t, witness
// included but without the one-byte empty witness a non-segwit input needs in a segwit
// transaction (Weight adds that).
func InputWeight(t ScriptType) (weight int, segwit bool, err error) {
	base := func(scriptSigLen int) int {
		return (outpointLen + VarIntSize(uint64(scriptSigLen)) + scriptSigLen + sequenceLen) * WitnessScaleFactor
	}
	switch t {
	case P2PKH:
		sigScript := 1 + ecdsaSigLen + 1 + pubKeyLen
		return base(sigScript), false, nil
	case P2WPKH:
		return base(0) + witnessSize(ecdsaSigLen, pubKeyLen), true, nil
	case P2SHP2WPKH:
		return base(1+22) + witnessSize(ecdsaSigLen, pubKeyLen), true, nil
	case P2TR:
		return base(0) + witnessSize(schnorrSigLen), true, nil
	case P2WSHMulti2of3:
		// OP_2 <33> <33> <33> OP_3 OP_CHECKMULTISIG
		script := 1 + 3*(1+pubKeyLen) + 1 + 1
		// The empty element for CHECKMULTISIG's extra pop, two signatures, the script.
		return base(0) + witnessSize(0, ecdsaSigLen, ecdsaSigLen, script), true, nil
	}
	return 0, false, fmt.Errorf("txsize: cannot estimate an input spending %v", t)
}

// InputVSize is InputWeight in virtual bytes, rounded up, as coin selection uses it.
func InputVSize(t ScriptType) (int, error) {
	w, _, err := InputWeight(t)
	return VSize(w), err
}

// witnessSize is the serialized size of a witness stack with items of the given lengths.
func witnessSize(items ...int) int {
	n := VarIntSize(uint64(len(items)))
	for _, l := range items {
		n += VarIntSize(uint64(l)) + l
	}
	return n
}

// VarIntSize is the size of Bitcoin's CompactSize encoding of n.
func VarIntSize(n uint64) int {
	switch {
	case n < 0xfd:
		return 1
	case n <= 0xffff:
		return 3
	case n <= 0xffffffff:
		return 5
	}
	return 9
}

// Weight estimates the weight of a signed transaction spending inputs of the given types
// and paying outputs of the given types.
func Weight(inputs, outputs []ScriptType) (int, error) {
	w := (txOverhead + VarIntSize(uint64(len(inputs))) + VarIntSize(uint64(len(outputs)))) * WitnessScaleFactor
	segwit, legacy := false, 0
	for _, t := range inputs {
		iw, sw, err := InputWeight(t)
		if err != nil {
			return 0, err
		}
		w += iw
		segwit = segwit || sw
		if !sw {
			legacy++
		}
	}
	for _, t := range outputs {
		n, err := OutputSize(t)
		if err != nil {
			return 0, err
		}
		w += n * WitnessScaleFactor
	}
	if segwit {
		w += segwitMarkerWeight + legacy // empty witness for each legacy input
	}
	return w, nil
}

// TxVSize is Weight in virtual bytes.
func TxVSize(inputs, outputs []ScriptType) (int, error) {
	w, err := Weight(inputs, outputs)
	return VSize(w), err
}

// Fee estimates the fee of the transaction at rate r.
func Fee(r FeeRate, inputs, outputs []ScriptType) (int64, error) {
	v, err := TxVSize(inputs, outputs)
	if err != nil {
		return 0, err
	}
	return r.Fee(v), nil
}

// DustRelayFeeRate is Bitcoin Core's default -dustrelayfee (3 sat/vB).
const DustRelayFeeRate FeeRate = 3000

// DustThreshold is the smallest value an output with script pkScript may have to be relayed
// by Bitcoin Core with the default dust relay fee: 294 sat for P2WPKH, 330 for P2TR and
// P2WSH, 540 for P2SH and 546 for P2PKH. An unspendable (OP_RETURN) script has no threshold.
func DustThreshold(pkScript []byte) int64 {
	return DustThresholdAt(DustRelayFeeRate, pkScript)
}

// DustThresholdAt is DustThreshold for another dust relay fee rate, following
// GetDustThreshold in Bitcoin Core's policy.cpp: the cost at that rate of the output plus
// the input that would spend it (67 bytes for a witness program, 148 otherwise).
func DustThresholdAt(r FeeRate, pkScript []byte) int64 {
	if len(pkScript) > 0 && pkScript[0] == txscript.OP_RETURN {
		return 0
	}
	size := OutputSizeScript(len(pkScript))
	if txscript.IsWitnessProgram(pkScript) {
		size += outpointLen + 1 + 107/WitnessScaleFactor + sequenceLen // 67
	} else {
		size += outpointLen + 1 + 107 + sequenceLen // 148
	}
	return r.Fee(size)
}

// DustThresholdType is DustThreshold for an output of script type t.
func DustThresholdType(t ScriptType) (int64, error) {
	n, err := ScriptPubKeyLen(t)
	if err != nil {
		return 0, err
	}
	script := make([]byte, n)
	switch t {
	case P2WPKH:
		script[0], script[1] = txscript.OP_0, 20
	case P2TR:
		script[0], script[1] = txscript.OP_1, 32
	case P2WSH, P2WSHMulti2of3:
		script[0], script[1] = txscript.OP_0, 32
	}
	return DustThreshold(script), nil
}

// IsDust reports whether an output of value paying pkScript is dust.
func IsDust(value int64, pkScript []byte) bool { return value < DustThreshold(pkScript) }
