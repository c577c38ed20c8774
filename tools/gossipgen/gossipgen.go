// Package gossipgen makes synthetic Lightning gossip with valid signatures: a network of
// nodes and channels with a heavy-tailed degree distribution (preferential attachment, as in
// the real network, where a few hubs have thousands of channels and most nodes a handful),
// each channel announced with its four signatures, its updates signed by the right node, and
// the nodes announced. It feeds the gossip tests, the scale benchmark (tools/cmd/lnbench)
// and tools/cmd/gossipgen, which writes a mainnet-sized set to a file.
//
// Everything is derived from Params.Seed, so a set can be made again instead of shipped.
// It uses lnd's lnwire to encode messages exactly as peers do, and btcec to sign.
package gossipgen

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"

	"bytes"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/lightningnetwork/lnd/lnwire"
)

// Params describe a network.
type Params struct {
	Nodes, Channels int
	// Updates is the number of channel_updates: two per channel (one per direction) and
	// the rest as newer updates of random directions. At least 2*Channels.
	Updates int
	Seed    uint64
	// Chain is the genesis hash the messages name.
	Chain chainhash.Hash
	// Now is the Unix time the newest timestamps approach.
	Now uint32
	// Disabled is the fraction of directions announced disabled.
	Disabled float64
}

// Mainnet is a set the size of the public network in 2026.
func Mainnet(chain chainhash.Hash, now uint32) Params {
	return Params{Nodes: 16_000, Channels: 50_000, Updates: 100_000, Seed: 1, Chain: chain, Now: now, Disabled: 0.02}
}

// Set is a generated network's messages, in the order a peer sends them: announcements,
// then updates, then node announcements.
type Set struct {
	Channels []*lnwire.ChannelAnnouncement1
	Updates  []*lnwire.ChannelUpdate1
	Nodes    []*lnwire.NodeAnnouncement1
	// Keys are the node keys (index = node number), for tests that sign more.
	Keys []*btcec.PrivateKey
}

// Messages returns all messages in order.
func (s *Set) Messages() []lnwire.Message {
	out := make([]lnwire.Message, 0, len(s.Channels)+len(s.Updates)+len(s.Nodes))
	for _, m := range s.Channels {
		out = append(out, m)
	}
	for _, m := range s.Updates {
		out = append(out, m)
	}
	for _, m := range s.Nodes {
		out = append(out, m)
	}
	return out
}

func key(seed uint64, label string, i int) *btcec.PrivateKey {
	var buf [8 + 8]byte
	binary.BigEndian.PutUint64(buf[:8], seed)
	binary.BigEndian.PutUint64(buf[8:], uint64(i))
	h := sha256.Sum256(append([]byte(label), buf[:]...))
	k, _ := btcec.PrivKeyFromBytes(h[:])
	return k
}

// parallel runs fn(0..n-1) on all cores.
func parallel(n int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				fn(i)
			}
		})
	}
	wg.Wait()
}

func sign(k *btcec.PrivateKey, data []byte) lnwire.Sig {
	s, err := lnwire.NewSigFromSignature(ecdsa.Sign(k, chainhash.DoubleHashB(data)))
	if err != nil {
		panic(err) // a fresh ECDSA signature always fits
	}
	return s
}

// Generate makes the set (signing on all cores).
func Generate(p Params) (*Set, error) {
	if p.Nodes < 2 || p.Channels < p.Nodes-1 || p.Updates < 2*p.Channels {
		return nil, fmt.Errorf("gossipgen: need nodes >= 2, channels >= nodes-1, updates >= 2*channels: %+v", p)
	}
	rng := rand.New(rand.NewPCG(p.Seed, 0x616e7961))
	s := &Set{Keys: make([]*btcec.PrivateKey, p.Nodes)}
	pubs := make([][33]byte, p.Nodes)
	parallel(p.Nodes, func(i int) {
		s.Keys[i] = key(p.Seed, "node", i)
		copy(pubs[i][:], s.Keys[i].PubKey().SerializeCompressed())
	})

	pairs, err := topology(p, rng)
	if err != nil {
		return nil, err
	}

	// Channel announcements.
	s.Channels = make([]*lnwire.ChannelAnnouncement1, len(pairs))
	caps := make([]int64, len(pairs))
	for i := range pairs {
		caps[i] = int64(math.Exp(math.Log(20_000) + rng.Float64()*(math.Log(16_000_000)-math.Log(20_000))))
	}
	// ordered[i] is channel i's (node_id_1, node_id_2) in BOLT 7 order.
	ordered := make([][2]int32, len(pairs))
	parallel(len(pairs), func(i int) {
		n1, n2 := pairs[i][0], pairs[i][1]
		if bytes.Compare(pubs[n1][:], pubs[n2][:]) > 0 {
			n1, n2 = n2, n1
		}
		ordered[i] = [2]int32{n1, n2}
		bk1, bk2 := key(p.Seed, "btc1", i), key(p.Seed, "btc2", i)
		ann := &lnwire.ChannelAnnouncement1{
			Features:       lnwire.NewRawFeatureVector(),
			ChainHash:      p.Chain,
			ShortChannelID: lnwire.ShortChannelID{BlockHeight: uint32(500_000 + i/100), TxIndex: uint32(i % 100), TxPosition: 0},
			NodeID1:        pubs[n1], NodeID2: pubs[n2],
			ExtraOpaqueData: nil,
		}
		copy(ann.BitcoinKey1[:], bk1.PubKey().SerializeCompressed())
		copy(ann.BitcoinKey2[:], bk2.PubKey().SerializeCompressed())
		data, err := ann.DataToSign()
		if err != nil {
			panic(err)
		}
		ann.NodeSig1, ann.NodeSig2 = sign(s.Keys[n1], data), sign(s.Keys[n2], data)
		ann.BitcoinSig1, ann.BitcoinSig2 = sign(bk1, data), sign(bk2, data)
		s.Channels[i] = ann
	})

	// Updates: both directions of every channel, then newer ones.
	type upd struct {
		ch, dir int
		ts      uint32
	}
	plan := make([]upd, 0, p.Updates)
	for i := range pairs {
		for dir := range 2 {
			plan = append(plan, upd{i, dir, p.Now - 7*86400 + uint32(rng.IntN(3*86400))})
		}
	}
	for len(plan) < p.Updates {
		plan = append(plan, upd{rng.IntN(len(pairs)), rng.IntN(2), p.Now - 4*86400 + uint32(rng.IntN(4*86400))})
	}
	fees := make([][3]uint32, len(plan))
	dis := make([]bool, len(plan))
	cltvs := []uint16{18, 34, 40, 80, 144}
	for i := range plan {
		// Fee rates: most low, a heavy tail.
		fees[i] = [3]uint32{uint32(rng.IntN(1001)), uint32(math.Min(5000, 1+math.Exp(rng.Float64()*8))), uint32(cltvs[rng.IntN(len(cltvs))])}
		dis[i] = rng.Float64() < p.Disabled
	}
	// Later updates of a direction must be newer: order by timestamp per direction.
	sort.SliceStable(plan, func(i, j int) bool { return plan[i].ts < plan[j].ts })
	s.Updates = make([]*lnwire.ChannelUpdate1, len(plan))
	parallel(len(plan), func(i int) {
		u := plan[i]
		ann := s.Channels[u.ch]
		flags := lnwire.ChanUpdateChanFlags(u.dir)
		if dis[i] {
			flags |= lnwire.ChanUpdateDisabled
		}
		cu := &lnwire.ChannelUpdate1{
			ChainHash: p.Chain, ShortChannelID: ann.ShortChannelID, Timestamp: u.ts,
			MessageFlags: lnwire.ChanUpdateRequiredMaxHtlc, ChannelFlags: flags,
			TimeLockDelta: uint16(fees[i][2]), HtlcMinimumMsat: 1000,
			BaseFee: fees[i][0], FeeRate: fees[i][1],
			HtlcMaximumMsat: lnwire.MilliSatoshi(caps[u.ch] * 990),
		}
		signer := ordered[u.ch][u.dir] // direction 0 is node_id_1's, 1 is node_id_2's
		data, err := cu.DataToSign()
		if err != nil {
			panic(err)
		}
		cu.Signature = sign(s.Keys[signer], data)
		s.Updates[i] = cu
	})

	// Node announcements.
	s.Nodes = make([]*lnwire.NodeAnnouncement1, p.Nodes)
	parallel(p.Nodes, func(i int) {
		alias, _ := lnwire.NewNodeAlias(fmt.Sprintf("node-%d", i))
		n := &lnwire.NodeAnnouncement1{
			Features: lnwire.NewRawFeatureVector(), Timestamp: p.Now - uint32(i%86400),
			NodeID: pubs[i], RGBColor: color.RGBA{R: uint8(i), G: uint8(i >> 8), B: 0x80}, Alias: alias,
			Addresses: []net.Addr{&net.TCPAddr{IP: net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)), Port: 9735}},
		}
		data, err := n.DataToSign()
		if err != nil {
			panic(err)
		}
		n.Signature = sign(s.Keys[i], data)
		s.Nodes[i] = n
	})
	return s, nil
}

// hubPicks is how many candidates hub compares.
const hubPicks = 6

// topology chooses the channels' end points (node numbers, lower first): a random tree, so
// that the network is connected, then channels from a hub to any node.
func topology(p Params, rng *rand.Rand) ([][2]int32, error) {
	// Endpoints by preferential attachment: "ends" lists every channel end, so a uniform
	// pick from it picks a node with probability proportional to its degree.
	ends := make([]int32, 0, 2*p.Channels)
	degree := make([]int, p.Nodes)
	pairs := make([][2]int32, 0, p.Channels)
	seen := make(map[[2]int32]bool, p.Channels)
	// hub picks the best connected of hubPicks degree-weighted picks: a super-linear
	// preference that grows hubs of a thousand channels and more, as the real network has.
	hub := func() int32 {
		best := ends[rng.IntN(len(ends))]
		for range hubPicks - 1 {
			if c := ends[rng.IntN(len(ends))]; degree[c] > degree[best] {
				best = c
			}
		}
		return best
	}
	add := func(a, b int32) bool {
		if a == b {
			return false
		}
		if a > b {
			a, b = b, a
		}
		if seen[[2]int32{a, b}] {
			return false
		}
		seen[[2]int32{a, b}] = true
		pairs = append(pairs, [2]int32{a, b})
		ends = append(ends, a, b)
		degree[a]++
		degree[b]++
		return true
	}
	for i := 1; i < p.Nodes; i++ { // a tree: the network is connected
		var to int32
		if len(ends) > 0 && rng.IntN(4) > 0 {
			to = ends[rng.IntN(len(ends))]
		} else {
			to = int32(rng.IntN(i))
		}
		add(int32(i), to)
	}
	for tries := 0; len(pairs) < p.Channels; tries++ {
		if tries > 100*p.Channels {
			return nil, errors.New("gossipgen: too many channels for so few nodes")
		}
		// One end a hub, the other any node: most nodes have few channels, mostly to hubs.
		add(hub(), int32(rng.IntN(p.Nodes)))
	}

	return pairs, nil
}

// Write writes msgs as a stream of (2-byte big-endian length, lnwire message) records.
func Write(w io.Writer, msgs []lnwire.Message) error {
	bw := bufio.NewWriter(w)
	var buf bytes.Buffer
	for _, m := range msgs {
		buf.Reset()
		if _, err := lnwire.WriteMessage(&buf, m, 0); err != nil {
			return fmt.Errorf("gossipgen: encode %v: %w", m.MsgType(), err)
		}
		if err := binary.Write(bw, binary.BigEndian, uint16(buf.Len())); err != nil {
			return err
		}
		if _, err := bw.Write(buf.Bytes()); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// Read decodes a stream written by Write.
func Read(r io.Reader) ([]lnwire.Message, error) {
	br := bufio.NewReader(r)
	var out []lnwire.Message
	buf := make([]byte, math.MaxUint16)
	for {
		var n uint16
		if err := binary.Read(br, binary.BigEndian, &n); err == io.EOF {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("gossipgen: read length: %w", err)
		}
		if _, err := io.ReadFull(br, buf[:n]); err != nil {
			return nil, fmt.Errorf("gossipgen: read message: %w", err)
		}
		m, err := lnwire.ReadMessage(bytes.NewReader(buf[:n]), 0)
		if err != nil {
			return nil, fmt.Errorf("gossipgen: decode message %d: %w", len(out), err)
		}
		out = append(out, m)
	}
}
