package p2p

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil/gcs"
	"github.com/btcsuite/btcd/btcutil/gcs/builder"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/anya-edge/anya/node/regtest"
)

// chainData is a btcd node's chain as a fake peer serves it: headers, blocks, basic
// filters, their hashes and headers, by height.
type chainData struct {
	params   *chaincfg.Params
	hashes   []chainhash.Hash
	index    map[chainhash.Hash]int
	headers  []wire.BlockHeader
	blocks   []*wire.MsgBlock
	filters  [][]byte
	fhashes  []chainhash.Hash
	fheaders []chainhash.Hash
}

func loadChain(t *testing.T, n *regtest.Node) *chainData {
	t.Helper()
	_, height := n.Best()
	c := n.RPC()
	d := &chainData{params: n.Params, index: map[chainhash.Hash]int{}}
	for h := range int64(height) + 1 {
		hash, err := c.GetBlockHash(h)
		if err != nil {
			t.Fatal(err)
		}
		blk, err := c.GetBlock(hash)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := c.GetCFilter(hash, wire.GCSFilterRegular)
		if err != nil {
			t.Fatal(err)
		}
		fh, err := c.GetCFilterHeader(hash, wire.GCSFilterRegular)
		if err != nil {
			t.Fatal(err)
		}
		f, err := gcs.FromNBytes(builder.DefaultP, builder.DefaultM, cf.Data)
		if err != nil {
			t.Fatal(err)
		}
		fhash, err := builder.GetFilterHash(f)
		if err != nil {
			t.Fatal(err)
		}
		d.index[*hash] = len(d.hashes)
		d.hashes = append(d.hashes, *hash)
		d.headers = append(d.headers, blk.Header)
		d.blocks = append(d.blocks, blk)
		d.filters = append(d.filters, cf.Data)
		d.fhashes = append(d.fhashes, fhash)
		d.fheaders = append(d.fheaders, fh.PrevFilterHeader)
	}
	return d
}

// misbehaviour is what a fake peer does wrong; the zero value is an honest peer.
type misbehaviour struct {
	services  wire.ServiceFlag
	beforeVer []byte                                                // raw bytes instead of the version handshake
	afterHand []byte                                                // raw bytes right after the handshake
	headers   func(d *chainData) *wire.MsgHeaders                   // reply to getheaders
	announce  bool                                                  // inv a random block after each headers reply
	cfilter   func(d *chainData, h int, data []byte) []byte         // filter data to send
	block     func(d *chainData, blk *wire.MsgBlock) *wire.MsgBlock // block to send
}

// fakePeer serves d over real TCP, misbehaving as told.
type fakePeer struct {
	t  *testing.T
	d  *chainData
	mb misbehaviour
	ln net.Listener

	mu    sync.Mutex
	conns int
}

func startFake(t *testing.T, d *chainData, mb misbehaviour) *fakePeer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakePeer{t: t, d: d, mb: mb, ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns++
			f.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(20 * time.Second))
				_ = f.serve(c)
			}()
		}
	}()
	return f
}

func (f *fakePeer) addr() string { return f.ln.Addr().String() }

func (f *fakePeer) connections() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.conns
}

const fakePver = wire.FeeFilterVersion

func (f *fakePeer) write(c net.Conn, msg wire.Message) error {
	_, err := wire.WriteMessageWithEncodingN(c, msg, fakePver, f.d.params.Net, wire.WitnessEncoding)
	return err
}

func (f *fakePeer) read(c net.Conn) (wire.Message, error) {
	for {
		_, msg, _, err := wire.ReadMessageWithEncodingN(c, fakePver, f.d.params.Net, wire.WitnessEncoding)
		if errors.Is(err, wire.ErrUnknownMessage) {
			continue
		}
		return msg, err
	}
}

func (f *fakePeer) serve(c net.Conn) error {
	d, mb := f.d, f.mb
	if mb.beforeVer != nil {
		_, err := c.Write(mb.beforeVer)
		_, _ = io.Copy(io.Discard, c)
		return err
	}
	if _, err := f.read(c); err != nil { // the client's version
		return err
	}
	services := mb.services
	if services == 0 {
		services = wire.SFNodeNetwork | wire.SFNodeWitness | wire.SFNodeCF
	}
	me := wire.NewNetAddressIPPort(net.IPv4(127, 0, 0, 1), 0, services)
	ver := wire.NewMsgVersion(me, me, rand.Uint64(), int32(len(d.hashes)-1))
	ver.ProtocolVersion = int32(fakePver)
	ver.Services = services
	ver.UserAgent = "/fake:0.1/"
	if err := f.write(c, ver); err != nil {
		return err
	}
	if err := f.write(c, wire.NewMsgVerAck()); err != nil {
		return err
	}
	if mb.afterHand != nil {
		if _, err := c.Write(mb.afterHand); err != nil {
			return err
		}
	}
	for {
		msg, err := f.read(c)
		if err != nil {
			return err
		}
		if err := f.answer(c, msg); err != nil {
			return err
		}
	}
}

func (f *fakePeer) answer(c net.Conn, msg wire.Message) error {
	d, mb := f.d, f.mb
	switch m := msg.(type) {
	case *wire.MsgPing:
		return f.write(c, wire.NewMsgPong(m.Nonce))
	case *wire.MsgGetHeaders:
		reply := wire.NewMsgHeaders()
		if mb.headers != nil {
			reply = mb.headers(d)
		} else {
			start := 1
			for _, h := range m.BlockLocatorHashes {
				if i, ok := d.index[*h]; ok {
					start = i + 1
					break
				}
			}
			for i := start; i < len(d.headers) && len(reply.Headers) < wire.MaxBlockHeadersPerMsg; i++ {
				_ = reply.AddBlockHeader(&d.headers[i])
			}
		}
		if err := f.write(c, reply); err != nil {
			return err
		}
		if mb.announce {
			inv := wire.NewMsgInv()
			_ = inv.AddInvVect(wire.NewInvVect(wire.InvTypeBlock, &chainhash.Hash{byte(rand.Uint32()), 1}))
			return f.write(c, inv)
		}
	case *wire.MsgGetCFHeaders:
		stop, ok := d.index[m.StopHash]
		if !ok {
			return nil
		}
		reply := wire.NewMsgCFHeaders()
		reply.FilterType, reply.StopHash = m.FilterType, m.StopHash
		if m.StartHeight > 0 {
			reply.PrevFilterHeader = d.fheaders[m.StartHeight-1]
		}
		for i := int(m.StartHeight); i <= stop; i++ {
			_ = reply.AddCFHash(&d.fhashes[i])
		}
		return f.write(c, reply)
	case *wire.MsgGetCFilters:
		stop, ok := d.index[m.StopHash]
		if !ok {
			return nil
		}
		for i := int(m.StartHeight); i <= stop; i++ {
			data := d.filters[i]
			if mb.cfilter != nil {
				data = mb.cfilter(d, i, data)
			}
			if err := f.write(c, wire.NewMsgCFilter(m.FilterType, &d.hashes[i], data)); err != nil {
				return err
			}
		}
	case *wire.MsgGetData:
		for _, iv := range m.InvList {
			i, ok := d.index[iv.Hash]
			if !ok || (iv.Type != wire.InvTypeBlock && iv.Type != wire.InvTypeWitnessBlock) {
				nf := wire.NewMsgNotFound()
				_ = nf.AddInvVect(iv)
				if err := f.write(c, nf); err != nil {
					return err
				}
				continue
			}
			blk := d.blocks[i]
			if mb.block != nil {
				blk = mb.block(d, blk)
			}
			if err := f.write(c, blk); err != nil {
				return err
			}
		}
	}
	return nil
}

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// rawMessage frames payload as a message of cmd; a non-nil sum replaces the checksum and
// length > 0 replaces the length field.
func rawMessage(net wire.BitcoinNet, cmd string, payload []byte, sum []byte, length uint32) []byte {
	var b bytes.Buffer
	_ = binary.Write(&b, binary.LittleEndian, uint32(net))
	var c [wire.CommandSize]byte
	copy(c[:], cmd)
	b.Write(c[:])
	if length == 0 {
		length = uint32(len(payload))
	}
	_ = binary.Write(&b, binary.LittleEndian, length)
	if sum == nil {
		sum = chainhash.DoubleHashB(payload)[:4]
	}
	b.Write(sum)
	b.Write(payload)
	return b.Bytes()
}

// TestMalformedPeers connects the light client over real TCP to fake peers that send
// malformed or invalid data. Each is banned (or, for the control case, synced from); the
// client keeps running and then syncs the whole chain, filters and the wallet's blocks from
// a good btcd.
func TestMalformedPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a btcd and nine fake peers")
	}
	n := regtest.Start(t)
	n.Generate(101)
	// A block with three transactions, so that a duplicated last one keeps the merkle root.
	dest, _ := txscript.PayToAddrScript(n.MiningAddress())
	n.SendOutputs(wire.NewTxOut(1e6, dest))
	n.SendOutputs(wire.NewTxOut(2e6, dest))
	n.Generate(2)
	d := loadChain(t, n)
	tip := len(d.hashes) - 1
	if got := len(d.blocks[102].Transactions); got != 3 {
		t.Fatalf("block 102 has %d transactions, want 3", got)
	}
	net := d.params.Net

	ping := make([]byte, 8)
	truncHeaders := []byte{2} // two headers announced, one and a half sent
	var hb bytes.Buffer
	_ = d.headers[1].Serialize(&hb)
	truncHeaders = append(truncHeaders, hb.Bytes()...)
	truncHeaders = append(truncHeaders, 0)
	truncHeaders = append(truncHeaders, hb.Bytes()[:40]...)
	garbage := []byte("GET / HTTP/1.1\r\nHost: anya\r\n\r\n")

	otherFilter := func(d *chainData, h int, data []byte) []byte {
		f, err := builder.WithKeyHash(&d.hashes[h]).AddEntry([]byte("not in this block")).Build()
		if err != nil {
			panic(err)
		}
		raw, _ := f.NBytes()
		return raw
	}
	cases := []struct {
		name    string
		mb      misbehaviour
		wantBan bool
		reason  string // in the misbehaviour log line
	}{
		{"honest control", misbehaviour{}, false, ""},
		{"garbage instead of a version", misbehaviour{beforeVer: garbage}, true, "message payload is too large"},
		{"garbage bytes", misbehaviour{afterHand: garbage}, true, "message payload is too large"},
		{"bad checksum", misbehaviour{afterHand: rawMessage(net, "ping", ping, []byte{1, 2, 3, 4}, 0)}, true, "checksum failed"},
		{"oversized length", misbehaviour{afterHand: rawMessage(net, "headers", nil, nil, wire.MaxMessagePayload+1)}, true,
			"message payload is too large"},
		{"length over the command's limit", misbehaviour{afterHand: rawMessage(net, "ping", make([]byte, 100), nil, 0)}, true,
			"payload exceeds max length"},
		{"truncated headers", misbehaviour{afterHand: rawMessage(net, "headers", truncHeaders, nil, 0)}, true,
			"malformed message: unexpected EOF"},
		{"headers that do not connect", misbehaviour{announce: true, headers: func(d *chainData) *wire.MsgHeaders {
			h := d.headers[5]
			h.PrevBlock = chainhash.Hash{0xde, 0xad}
			msg := wire.NewMsgHeaders()
			_ = msg.AddBlockHeader(&h)
			return msg
		}}, true, "header does not connect"},
		{"cfilter that does not match its header", misbehaviour{cfilter: otherFilter}, true, "cfilter does not match its filter header"},
		{"undecodable cfilter", misbehaviour{cfilter: func(_ *chainData, h int, data []byte) []byte {
			if h < 50 {
				return data
			}
			return append([]byte{0xfd, 0xe8, 0x03}, make([]byte, 10)...) // 1000 elements in 10 bytes
		}}, true, "undecodable cfilter"},
		{"block whose merkle root does not match", misbehaviour{block: func(_ *chainData, blk *wire.MsgBlock) *wire.MsgBlock {
			bad := blk.Copy()
			bad.Transactions[0].TxOut[0].Value--
			return bad
		}}, true, "block merkle root is invalid"},
		{"block with a duplicated transaction (same merkle root)", misbehaviour{block: func(_ *chainData, blk *wire.MsgBlock) *wire.MsgBlock {
			if len(blk.Transactions) != 3 {
				return blk
			}
			bad := blk.Copy()
			bad.Transactions = append(bad.Transactions, bad.Transactions[2])
			return bad
		}}, true, "block contains duplicate transaction"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := startFake(t, d, tc.mb)
			var mu sync.Mutex
			got := map[int32]int{}
			var logs syncBuffer
			m, _ := run(t, Config{Peers: []string{fake.addr()}, Logger: slog.New(slog.NewTextHandler(&logs, nil)), Timeout: 5 * time.Second,
				BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
				Scripts: func() [][]byte { return [][]byte{dest} },
				OnBlock: func(s Stamp, blk *wire.MsgBlock) {
					mu.Lock()
					got[s.Height]++
					mu.Unlock()
				}})
			start := time.Now()
			if tc.wantBan {
				waitFor(t, "the fake peer to be banned", func() bool { return m.Banned(fake.addr()) })
				took := time.Since(start)
				t.Logf("banned after %v (score %d, %d connections)", took, m.Score(fake.addr()), fake.connections())
				// Well within the request timeout: no offence may go unnoticed until a
				// request times out (as a getheaders that btcd's peer drops as a duplicate).
				if took > 3*time.Second {
					t.Errorf("banned only after %v", took)
				}
				waitFor(t, "the fake peer to be dropped", func() bool { return len(m.Connected()) == 0 })
			} else {
				waitFor(t, "sync from the honest fake", func() bool { return m.FilterTip().Hash == d.hashes[tip] })
			}
			m.AddPeer(n.P2PAddr)
			waitFor(t, "sync from btcd", func() bool {
				return m.Chain().Tip().Hash == d.hashes[tip] && m.FilterTip().Hash == d.hashes[tip]
			})
			mu.Lock()
			defer mu.Unlock()
			for h := int32(1); h <= int32(tip); h++ {
				if got[h] != 1 {
					t.Fatalf("OnBlock saw block %d %d times", h, got[h])
				}
			}
			if tc.wantBan && !strings.Contains(logs.String(), tc.reason) {
				t.Fatalf("no misbehaviour %q in the log:\n%s", tc.reason, logs.String())
			}
			if !tc.wantBan && strings.Contains(logs.String(), "misbehaved") {
				t.Fatalf("the honest fake misbehaved:\n%s", logs.String())
			}
			if m.Banned(fake.addr()) != tc.wantBan {
				t.Fatalf("banned %v, want %v", m.Banned(fake.addr()), tc.wantBan)
			}
			if tc.wantBan && slices.Contains(m.Connected(), fake.addr()) {
				t.Fatal("the banned peer is connected")
			}
			if !tc.wantBan && m.Score(fake.addr()) != 0 {
				t.Fatalf("the honest fake scored %d", m.Score(fake.addr()))
			}
		})
	}
}
