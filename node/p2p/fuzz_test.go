package p2p

import (
	"bytes"
	"testing"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil/gcs/builder"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/anya-edge/anya/node/chain"
)

func encode(tb testing.TB, msg wire.Message) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := msg.BtcEncode(&buf, wire.ProtocolVersion, wire.WitnessEncoding); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzCFilterMessage feeds cfilter messages through what the client does with a peer's
// filter: decode (with the size bounds), match the wallet's scripts, derive its header.
func FuzzCFilterMessage(f *testing.F) {
	block := chainhash.Hash{7}
	flt, err := builder.WithKeyHash(&block).AddEntries([][]byte{{0x51}, {0x00, 0x14, 1, 2}}).Build()
	if err != nil {
		f.Fatal(err)
	}
	raw, _ := flt.NBytes()
	f.Add(encode(f, wire.NewMsgCFilter(wire.GCSFilterRegular, &block, raw)))
	f.Add(encode(f, wire.NewMsgCFilter(wire.GCSFilterRegular, &block, []byte{0})))
	f.Add(encode(f, wire.NewMsgCFilter(wire.GCSFilterRegular, &block, []byte{0xfd, 0xe8, 0x03, 0, 0})))
	scripts := [][]byte{{0x51}, {0x6a}, make([]byte, 22)}
	f.Fuzz(func(t *testing.T, data []byte) {
		msg := &wire.MsgCFilter{}
		if err := msg.BtcDecode(bytes.NewReader(data), wire.ProtocolVersion, wire.WitnessEncoding); err != nil {
			return
		}
		flt, err := chain.DecodeFilter(msg.Data)
		if err != nil {
			return
		}
		if _, err := flt.MatchAny(builder.DeriveKey(&msg.BlockHash), scripts); err != nil {
			return
		}
		if _, err := builder.MakeHeaderForFilter(flt, chainhash.Hash{}); err != nil {
			t.Fatalf("decoded filter has no header: %v", err)
		}
	})
}

// FuzzCFHeadersMessage feeds cfheaders messages through the derivation of filter headers.
func FuzzCFHeadersMessage(f *testing.F) {
	msg := wire.NewMsgCFHeaders()
	msg.PrevFilterHeader = chainhash.Hash{1}
	for i := range 3 {
		_ = msg.AddCFHash(&chainhash.Hash{byte(i)})
	}
	f.Add(encode(f, msg))
	f.Add(encode(f, wire.NewMsgCFHeaders()))
	f.Fuzz(func(t *testing.T, data []byte) {
		msg := &wire.MsgCFHeaders{}
		if err := msg.BtcDecode(bytes.NewReader(data), wire.ProtocolVersion, wire.WitnessEncoding); err != nil {
			return
		}
		hs := chainFilterHeaders(msg.PrevFilterHeader, msg.FilterHashes)
		if len(hs) != len(msg.FilterHashes) {
			t.Fatalf("%d headers for %d hashes", len(hs), len(msg.FilterHashes))
		}
	})
}

// FuzzBlockMessage feeds block messages through the checks of a block a peer sends for a
// header we validated: a block that passes must hash to the header and carry exactly the
// transactions its merkle root commits to.
func FuzzBlockMessage(f *testing.F) {
	params := &chaincfg.RegressionNetParams
	f.Add(encode(f, params.GenesisBlock))
	dup := params.GenesisBlock.Copy()
	dup.Transactions = append(dup.Transactions, dup.Transactions[0])
	f.Add(encode(f, dup))
	f.Add(encode(f, &wire.MsgBlock{Header: params.GenesisBlock.Header}))
	clock := blockchain.NewMedianTime()
	f.Fuzz(func(t *testing.T, data []byte) {
		blk := &wire.MsgBlock{}
		if err := blk.BtcDecode(bytes.NewReader(data), wire.ProtocolVersion, wire.WitnessEncoding); err != nil {
			return
		}
		want := blk.BlockHash()
		if err := checkBlock(blk, want, params, clock); err != nil {
			return
		}
		if len(blk.Transactions) == 0 {
			t.Fatal("accepted a block without transactions")
		}
		if err := checkBlock(blk, chainhash.Hash{1}, params, clock); err == nil {
			t.Fatal("accepted a block for another header")
		}
	})
}
