package txsize

import (
	"bytes"
	"testing"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/wire"
)

func TestInputVSize(t *testing.T) {
	tests := []struct {
		typ  ScriptType
		want int
	}{
		{P2PKH, 148},
		{P2WPKH, 68},          // 67.75 rounded up, as Core's coin selection uses
		{P2SHP2WPKH, 91},      // 90.75
		{P2TR, 58},            // 57.5
		{P2WSHMulti2of3, 105}, // 104.5
	}
	for _, tc := range tests {
		got, err := InputVSize(tc.typ)
		if err != nil || got != tc.want {
			t.Errorf("InputVSize(%v) = %d, %v; want %d", tc.typ, got, err, tc.want)
		}
	}
	if _, err := InputVSize(P2WSH); err == nil {
		t.Error("InputVSize(P2WSH) without a script: want error")
	}
}

func TestTxVSize(t *testing.T) {
	tests := []struct {
		name    string
		in, out []ScriptType
		want    int
	}{
		{"p2wpkh 1-in 2-out", []ScriptType{P2WPKH}, []ScriptType{P2WPKH, P2WPKH}, 141},
		{"p2tr 1-in 1-out", []ScriptType{P2TR}, []ScriptType{P2TR}, 111},
		{"p2tr 1-in 2-out", []ScriptType{P2TR}, []ScriptType{P2TR, P2TR}, 154},
		{"p2pkh 1-in 2-out (legacy, no marker)", []ScriptType{P2PKH}, []ScriptType{P2PKH, P2PKH}, 226},
		{"p2wsh 2of3 1-in 2-out", []ScriptType{P2WSHMulti2of3}, []ScriptType{P2WSH, P2WSH}, 201},
		{"mixed legacy + segwit", []ScriptType{P2PKH, P2WPKH}, []ScriptType{P2WPKH}, 10 + 148 + 68 + 31 + 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := TxVSize(tc.in, tc.out)
			if err != nil || got != tc.want {
				t.Errorf("TxVSize = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

// TestWeightMatchesBtcd builds transactions with placeholder signatures of the worst-case
// sizes and checks the estimate against btcd's own weight computation.
func TestWeightMatchesBtcd(t *testing.T) {
	sig := bytes.Repeat([]byte{1}, ecdsaSigLen)
	pub := bytes.Repeat([]byte{2}, pubKeyLen)
	ms := make([]byte, 105)
	tests := []struct {
		typ       ScriptType
		sigScript []byte
		witness   wire.TxWitness
	}{
		{P2WPKH, nil, wire.TxWitness{sig, pub}},
		{P2SHP2WPKH, make([]byte, 23), wire.TxWitness{sig, pub}},
		{P2TR, nil, wire.TxWitness{make([]byte, 64)}},
		{P2WSHMulti2of3, nil, wire.TxWitness{nil, sig, sig, ms}},
	}
	for _, tc := range tests {
		for _, outs := range [][]ScriptType{{P2WPKH}, {P2TR, P2WPKH}} {
			tx := wire.NewMsgTx(2)
			for i := 0; i < 3; i++ {
				in := wire.NewTxIn(&wire.OutPoint{Index: uint32(i)}, tc.sigScript, tc.witness)
				tx.AddTxIn(in)
			}
			for _, o := range outs {
				n, _ := ScriptPubKeyLen(o)
				tx.AddTxOut(wire.NewTxOut(1000, make([]byte, n)))
			}
			want := int(blockchain.GetTransactionWeight(btcutil.NewTx(tx)))
			got, err := Weight([]ScriptType{tc.typ, tc.typ, tc.typ}, outs)
			if err != nil || got != want {
				t.Errorf("%v→%v: Weight = %d, %v; btcd says %d", tc.typ, outs, got, err, want)
			}
		}
	}
}

func TestDustThreshold(t *testing.T) {
	tests := []struct {
		typ  ScriptType
		want int64
	}{
		{P2WPKH, 294}, {P2TR, 330}, {P2WSH, 330}, {P2SH, 540}, {P2PKH, 546},
	}
	for _, tc := range tests {
		got, err := DustThresholdType(tc.typ)
		if err != nil || got != tc.want {
			t.Errorf("DustThresholdType(%v) = %d, %v; want %d", tc.typ, got, err, tc.want)
		}
	}
	if DustThreshold([]byte{0x6a, 0x01, 0x00}) != 0 {
		t.Error("OP_RETURN must have no dust threshold")
	}
	wpkh := append([]byte{0, 20}, make([]byte, 20)...)
	if !IsDust(293, wpkh) || IsDust(294, wpkh) {
		t.Error("IsDust boundary for P2WPKH wrong")
	}
}

func TestFeeRoundsUp(t *testing.T) {
	tests := []struct {
		r     FeeRate
		vsize int
		want  int64
	}{
		{1000, 141, 141}, {1001, 1000, 1001}, {1500, 141, 212}, {1, 1, 1}, {0, 100, 0},
	}
	for _, tc := range tests {
		if got := tc.r.Fee(tc.vsize); got != tc.want {
			t.Errorf("%v.Fee(%d) = %d; want %d", tc.r, tc.vsize, got, tc.want)
		}
	}
}
