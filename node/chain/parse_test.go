package chain

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/btcutil/gcs/builder"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

// verboseOf renders a header the way getblockheader (verbose) does.
func verboseOf(h *wire.BlockHeader, height int32) *btcjson.GetBlockHeaderVerboseResult {
	res := &btcjson.GetBlockHeaderVerboseResult{
		Hash:       h.BlockHash().String(),
		Height:     height,
		Version:    h.Version,
		MerkleRoot: h.MerkleRoot.String(),
		Time:       h.Timestamp.Unix(),
		Nonce:      uint64(h.Nonce),
		Bits:       fmt.Sprintf("%08x", h.Bits),
	}
	if h.PrevBlock != (chainhash.Hash{}) {
		res.PreviousHash = h.PrevBlock.String()
	}
	return res
}

func TestHeaderFromVerbose(t *testing.T) {
	// Block 1 of mainnet, as bitcoind renders it.
	block1 := wire.BlockHeader{
		Version:    1,
		PrevBlock:  *chaincfg.MainNetParams.GenesisHash,
		MerkleRoot: mustHash(t, "0e3e2357e806b6cdb1f70b54c3a3a17b6714ee1f0e68bebb44a74b1efd512098"),
		Timestamp:  time.Unix(1231469665, 0),
		Bits:       0x1d00ffff,
		Nonce:      2573394689,
	}
	if got := block1.BlockHash().String(); got != "00000000839a8e6886ab5951d76f411475428afc90947ee320161bbf18eb6048" {
		t.Fatalf("test vector hashes to %s", got)
	}
	good := verboseOf(&block1, 1)
	genesis := verboseOf(&chaincfg.MainNetParams.GenesisBlock.Header, 0)

	for _, tc := range []struct {
		name string
		edit func(*btcjson.GetBlockHeaderVerboseResult)
		ok   bool
	}{
		{"block 1", func(*btcjson.GetBlockHeaderVerboseResult) {}, true},
		{"wrong nonce", func(r *btcjson.GetBlockHeaderVerboseResult) { r.Nonce++ }, false},
		{"nonce overflow", func(r *btcjson.GetBlockHeaderVerboseResult) { r.Nonce = math.MaxUint32 + 1 }, false},
		{"bad bits", func(r *btcjson.GetBlockHeaderVerboseResult) { r.Bits = "zz" }, false},
		{"bits overflow", func(r *btcjson.GetBlockHeaderVerboseResult) { r.Bits = "1ffffffff" }, false},
		{"short hash", func(r *btcjson.GetBlockHeaderVerboseResult) { r.Hash = "00" }, false},
		{"bad prev", func(r *btcjson.GetBlockHeaderVerboseResult) { r.PreviousHash = "xyz" }, false},
		{"bad merkle", func(r *btcjson.GetBlockHeaderVerboseResult) { r.MerkleRoot = "" }, false},
		{"negative time", func(r *btcjson.GetBlockHeaderVerboseResult) { r.Time = -1 }, false},
		{"negative height", func(r *btcjson.GetBlockHeaderVerboseResult) { r.Height = -5 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := *good
			tc.edit(&r)
			h, err := headerFromVerbose(&r)
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && (h.Hash != block1.BlockHash() || h.Height != 1 || h.PrevBlock != block1.PrevBlock) {
				t.Fatalf("header %+v", h)
			}
		})
	}
	if h, err := headerFromVerbose(genesis); err != nil || h.Hash != *chaincfg.MainNetParams.GenesisHash {
		t.Fatalf("genesis: %+v, %v", h, err)
	}
	if _, err := headerFromVerbose(nil); err == nil {
		t.Fatal("nil result accepted")
	}
}

func mustHash(t testing.TB, s string) chainhash.Hash {
	h, err := chainhash.NewHashFromStr(s)
	if err != nil {
		t.Fatal(err)
	}
	return *h
}

func FuzzHeaderFromVerbose(f *testing.F) {
	seed, _ := json.Marshal(verboseOf(&chaincfg.MainNetParams.GenesisBlock.Header, 0))
	f.Add(seed)
	seed, _ = json.Marshal(verboseOf(&chaincfg.RegressionNetParams.GenesisBlock.Header, 0))
	f.Add(seed)
	f.Add([]byte(`{"hash":"","bits":"ffffffffff","nonce":-1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var res btcjson.GetBlockHeaderVerboseResult
		if json.Unmarshal(data, &res) != nil {
			return
		}
		h, err := headerFromVerbose(&res)
		if err != nil {
			return
		}
		// Whatever is accepted hashes to the hash it claims.
		if h.BlockHeader.BlockHash() != h.Hash {
			t.Fatalf("accepted header does not hash to %v", h.Hash)
		}
	})
}

// basicFilter builds a basic filter of the given scripts for block hash.
func basicFilter(t testing.TB, block chainhash.Hash, scripts ...[]byte) []byte {
	f, err := builder.WithKeyHash(&block).AddEntries(scripts).Build()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := f.NBytes()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestDecodeFilter(t *testing.T) {
	block := chainhash.Hash{1, 2, 3}
	in := [][]byte{{0x00, 0x14, 1, 2, 3}, {0x51, 0x20, 9, 9}, {0x6a}}
	raw := basicFilter(t, block, in...)
	f, err := decodeFilter(raw)
	if err != nil {
		t.Fatal(err)
	}
	if f.N() != 3 {
		t.Fatalf("N = %d", f.N())
	}
	for _, s := range in {
		if ok, err := MatchFilter(f, block, [][]byte{s}); err != nil || !ok {
			t.Errorf("script %x does not match: %v", s, err)
		}
	}
	if ok, _ := MatchFilter(f, block, nil); ok {
		t.Error("no scripts matched")
	}
	again, err := f.NBytes()
	if err != nil || !bytes.Equal(again, raw) {
		t.Errorf("round trip: %x, want %x", again, raw)
	}

	for _, tc := range []struct {
		name string
		raw  []byte
	}{
		{"empty", nil},
		{"huge N, no data", []byte{0xfe, 0xff, 0xff, 0xff, 0x7f}},
		{"N too big for varint limit", []byte{0xff, 0, 0, 0, 0, 1, 0, 0, 0}},
		{"truncated varint", []byte{0xfd, 0x01}},
		{"N larger than the bits allow", append([]byte{0xfd, 0xe8, 0x03}, make([]byte, 10)...)},
		{"oversized", make([]byte, maxFilterSize+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeFilter(tc.raw); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	// An empty set is a valid filter (N = 0) that matches nothing.
	f, err = decodeFilter([]byte{0})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := MatchFilter(f, block, in); ok || err != nil {
		t.Fatalf("empty filter matched: %v, %v", ok, err)
	}
}

func TestParseBlockFilterResult(t *testing.T) {
	block := chainhash.Hash{4}
	raw := basicFilter(t, block, []byte{1, 2, 3})
	header := chainhash.Hash{0xaa, 0xbb}
	got, h, err := parseBlockFilterResult(hex.EncodeToString(raw), header.String())
	if err != nil || !bytes.Equal(got, raw) || h != header {
		t.Fatalf("parse: %x %v %v", got, h, err)
	}
	for _, tc := range [][2]string{
		{"zz", header.String()},
		{hex.EncodeToString(raw), "abcd"},
		{hex.EncodeToString(raw), ""},
		{hex.EncodeToString(raw), "x" + header.String()[1:]},
	} {
		if _, _, err := parseBlockFilterResult(tc[0], tc[1]); err == nil {
			t.Errorf("accepted %q, %q", tc[0], tc[1])
		}
	}
}

func TestFilterHeaderChain(t *testing.T) {
	// BIP158 test vector (testnet-19.json): the basic filter and header of testnet3's genesis.
	raw, _ := hex.DecodeString("019dfca8")
	f, err := decodeFilter(raw)
	if err != nil {
		t.Fatal(err)
	}
	got, err := FilterHeader(f, chainhash.Hash{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "21584579b7eb08997773e5aeff3a7f932700042d0ed2a6129012b7d7ae81b750"; got.String() != want {
		t.Fatalf("filter header of testnet3's genesis = %v, want %s", got, want)
	}
}

// FuzzDecodeFilter feeds untrusted filter bytes (from a node or, later, a peer) to the
// decoder and to matching.
func FuzzDecodeFilter(f *testing.F) {
	block := chainhash.Hash{5}
	f.Add(basicFilter(f, block, []byte{1, 2, 3}, []byte{4, 5}), []byte{1, 2, 3})
	f.Add([]byte{0}, []byte{})
	f.Add([]byte("019dfca8"), []byte{0x51})
	f.Add([]byte{0xfd, 0xff, 0xff, 0xff}, []byte{0})
	f.Fuzz(func(t *testing.T, raw, script []byte) {
		flt, err := decodeFilter(raw)
		if err != nil {
			return
		}
		if _, err := MatchFilter(flt, block, [][]byte{script, {0x6a}}); err != nil {
			return
		}
		if _, err := FilterHeader(flt, chainhash.Hash{}); err != nil {
			t.Fatalf("accepted filter has no header: %v", err)
		}
	})
}

// FuzzParseBlockFilterResult covers bitcoind's getblockfilter answer.
func FuzzParseBlockFilterResult(f *testing.F) {
	f.Add("019dfca8", "21584579b7eb08997773e5aeff3a7f932700042d0ed2a6129012b7d7ae81b750")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, filterHex, headerHex string) {
		raw, _, err := parseBlockFilterResult(filterHex, headerHex)
		if err != nil {
			return
		}
		_, _ = decodeFilter(raw)
	})
}

func TestFeeRate(t *testing.T) {
	for _, tc := range []struct {
		btc  float64
		want FeeRate
		vb   float64
		fee  int64 // for 141 vB
	}{
		{0.00001, 1000, 1, 141},
		{0.00001234, 1234, 1.234, 174},
		{0.0002, 20000, 20, 2820},
	} {
		r, err := FeeRateFromBTCPerKvB(tc.btc)
		if err != nil || r != tc.want || r.SatPerVByte() != tc.vb || int64(r.Fee(141)) != tc.fee {
			t.Errorf("%v BTC/kvB: %v (%v sat/vB, fee %v), %v", tc.btc, r, r.SatPerVByte(), r.Fee(141), err)
		}
	}
	if _, err := FeeRateFromBTCPerKvB(math.NaN()); err == nil {
		t.Error("NaN accepted")
	}
	if s := FeeRate(1500).String(); s != "1.500 sat/vB" {
		t.Errorf("String() = %q", s)
	}
}
