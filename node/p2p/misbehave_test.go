package p2p

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/peer"
	"github.com/btcsuite/btcd/wire"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// craft returns a child header of prev whose proof of work passes (good) or fails.
func craft(prev *wire.BlockHeader, good bool) wire.BlockHeader {
	h := wire.BlockHeader{Version: 4, PrevBlock: prev.BlockHash(), Bits: prev.Bits,
		Timestamp: prev.Timestamp.Add(time.Second)}
	target := blockchain.CompactToBig(h.Bits)
	for ; ; h.Nonce++ {
		hash := h.BlockHash()
		if (blockchain.HashToBig(&hash).Cmp(target) <= 0) == good {
			return h
		}
	}
}

func TestHeaderChainRules(t *testing.T) {
	params := &chaincfg.RegressionNetParams
	g := params.GenesisBlock.Header
	good := craft(&g, true)
	tooOld := mine(wire.BlockHeader{Version: 4, PrevBlock: g.BlockHash(), Bits: g.Bits, Timestamp: g.Timestamp})
	wrongBits := wire.BlockHeader{Version: 4, PrevBlock: g.BlockHash(), Bits: 0x1d00ffff, Timestamp: g.Timestamp.Add(time.Second)}
	orphan := craft(&good, true)
	orphan.PrevBlock = chainhash.Hash{1}
	tests := []struct {
		name    string
		headers []wire.BlockHeader
		want    error
		height  int32
	}{
		{"valid", []wire.BlockHeader{good, craft(&good, true)}, nil, 2},
		{"bad pow", []wire.BlockHeader{craft(&g, false)}, ErrInvalidHeader, 0},
		{"timestamp not after median", []wire.BlockHeader{tooOld}, ErrInvalidHeader, 0},
		{"unexpected difficulty", []wire.BlockHeader{wrongBits}, ErrInvalidHeader, 0},
		{"does not connect", []wire.BlockHeader{orphan}, ErrOrphanHeader, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hc, err := NewHeaderChain(params, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = hc.Process(tc.headers)
			if (tc.want == nil && err != nil) || (tc.want != nil && !errorsIs(err, tc.want)) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if got := hc.Tip().Height; got != tc.height {
				t.Fatalf("tip %d, want %d", got, tc.height)
			}
		})
	}
}

func TestReorgInMemory(t *testing.T) {
	params := &chaincfg.RegressionNetParams
	hc, _ := NewHeaderChain(params, nil)
	g := params.GenesisBlock.Header
	a1 := craft(&g, true)
	a2 := craft(&a1, true)
	b1 := mine(wire.BlockHeader{Version: 4, PrevBlock: g.BlockHash(), Bits: g.Bits, Timestamp: g.Timestamp.Add(2 * time.Second)})
	b2 := craft(&b1, true)
	b3 := craft(&b2, true)
	if _, err := hc.Process([]wire.BlockHeader{a1, a2}); err != nil {
		t.Fatal(err)
	}
	ch, err := hc.Process([]wire.BlockHeader{b1, b2, b3})
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Disconnected) != 2 || len(ch.Connected) != 3 || ch.Disconnected[0].Hash != a2.BlockHash() ||
		ch.Connected[2].Hash != b3.BlockHash() {
		t.Fatalf("change %+v", ch)
	}
	if h, _ := hc.HashAt(1); h != b1.BlockHash() {
		t.Fatalf("height 1 is %v, want b1", h)
	}
}

func mine(h wire.BlockHeader) wire.BlockHeader {
	for ; ; h.Nonce++ {
		hash := h.BlockHash()
		if blockchain.HashToBig(&hash).Cmp(blockchain.CompactToBig(h.Bits)) <= 0 {
			return h
		}
	}
}

// TestBadPoWPeerBanned serves, at the wire level, a header whose hash misses its target.
func TestBadPoWPeerBanned(t *testing.T) {
	params := &chaincfg.RegressionNetParams
	g := params.GenesisBlock.Header
	bad := craft(&g, false)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p := peer.NewInboundPeer(&peer.Config{ChainParams: params, Services: wire.SFNodeNetwork, AllowSelfConns: true,
				Listeners: peer.MessageListeners{OnGetHeaders: func(p *peer.Peer, _ *wire.MsgGetHeaders) {
					msg := wire.NewMsgHeaders()
					_ = msg.AddBlockHeader(&bad)
					p.QueueMessage(msg, nil)
				}}})
			p.AssociateConnection(c)
		}
	}()
	addr := ln.Addr().String()
	m, _ := run(t, Config{Params: params, Peers: []string{addr}, Logger: quiet, allowSelfConns: true})
	waitFor(t, "the peer to be banned", func() bool { return m.Banned(addr) })
	if s := m.Score(addr); s < 100 {
		t.Fatalf("score %d", s)
	}
	waitFor(t, "disconnect", func() bool { return len(m.Connected()) == 0 })
	if tip := m.Chain().Tip(); tip.Height != 0 {
		t.Fatalf("tip moved to %v", tip)
	}
}

func FuzzHeadersMessage(f *testing.F) {
	params := &chaincfg.RegressionNetParams
	g := params.GenesisBlock.Header
	h1 := craft(&g, true)
	for _, hs := range [][]wire.BlockHeader{{h1, craft(&h1, true)}, {craft(&g, false)}, {}} {
		msg := wire.NewMsgHeaders()
		for i := range hs {
			_ = msg.AddBlockHeader(&hs[i])
		}
		var buf bytes.Buffer
		_ = msg.BtcEncode(&buf, wire.ProtocolVersion, wire.WitnessEncoding)
		f.Add(buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msg := &wire.MsgHeaders{}
		if err := msg.BtcDecode(bytes.NewReader(data), wire.ProtocolVersion, wire.WitnessEncoding); err != nil {
			return
		}
		m, err := New(Config{Params: params, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = m.HandleHeaders("fuzz", nil, msg)
	})
}
