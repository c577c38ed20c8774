package graph

import (
	"encoding/hex"
	"fmt"
	"time"
)

// NodeID is a node's compressed public key.
type NodeID [33]byte

// String is the id in hex, as lncli prints it.
func (id NodeID) String() string { return hex.EncodeToString(id[:]) }

// MarshalText encodes the id in hex.
func (id NodeID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes hex.
func (id *NodeID) UnmarshalText(b []byte) error {
	if len(b) != 2*len(id) {
		return fmt.Errorf("node id: want %d hex digits, got %d", 2*len(id), len(b))
	}
	if _, err := hex.Decode(id[:], b); err != nil {
		return fmt.Errorf("node id: %w", err)
	}
	return nil
}

// ParseNodeID decodes a hex node id.
func ParseNodeID(s string) (NodeID, error) {
	var id NodeID
	err := id.UnmarshalText([]byte(s))
	return id, err
}

// Policy is one direction of a channel: what the node at its start charges and requires to
// forward a payment over it (from a channel_update).
type Policy struct {
	Timestamp uint32 `json:"ts"`
	Disabled  bool   `json:"disabled,omitempty"`
	CLTVDelta uint16 `json:"cltv"`
	MinHTLC   uint64 `json:"min_msat"`
	// MaxHTLC is htlc_maximum_msat (0 when the update has none: the capacity is the bound).
	MaxHTLC uint64 `json:"max_msat,omitempty"`
	FeeBase uint32 `json:"fee_base_msat"`
	FeeRate uint32 `json:"fee_ppm"`
}

// Fee is what the policy charges to forward amt msat.
func (p *Policy) Fee(amt uint64) uint64 {
	return uint64(p.FeeBase) + amt*uint64(p.FeeRate)/1_000_000
}

// Channel is an announced channel.
type Channel struct {
	// ID is the short channel id (block height, transaction index, output index).
	ID uint64 `json:"id"`
	// Node1 < Node2 (BOLT 7 order); direction 0 leaves Node1, direction 1 leaves Node2.
	Node1 NodeID `json:"node1"`
	Node2 NodeID `json:"node2"`
	// BitcoinKey1 and BitcoinKey2 are the funding keys (for spend tracking).
	BitcoinKey1 NodeID `json:"btc1"`
	BitcoinKey2 NodeID `json:"btc2"`
	// Capacity is the funding output's value in sat, 0 when no chain backend checked it.
	Capacity int64 `json:"capacity,omitempty"`
	// Outpoint is the funding output ("txid:index") when a chain backend checked it, so that
	// its spend (the channel's close) is noticed.
	Outpoint string `json:"outpoint,omitempty"`
	// Features of the channel announcement.
	Features []byte `json:"features,omitempty"`
	// Policies are the latest policies by direction, nil until an update arrived.
	Policies [2]*Policy `json:"policies"`
	// Added is when the box learnt of the channel (Unix seconds), for pruning channels that
	// never got an update.
	Added int64 `json:"added"`

	// ends are the node numbers of Node1 and Node2 in the graph (see View.Ends).
	ends [2]int32
}

// Height is the block of the funding transaction.
func (c *Channel) Height() uint32 { return uint32(c.ID >> 40) }

// Other returns the node at the other end from n.
func (c *Channel) Other(n NodeID) NodeID {
	if n == c.Node1 {
		return c.Node2
	}
	return c.Node1
}

// Direction is 0 for the policy leaving Node1, 1 for Node2.
func (c *Channel) Direction(from NodeID) int {
	if from == c.Node1 {
		return 0
	}
	return 1
}

// LastUpdate is the newest policy timestamp (0 with none).
func (c *Channel) LastUpdate() uint32 {
	var t uint32
	for _, p := range c.Policies {
		if p != nil && p.Timestamp > t {
			t = p.Timestamp
		}
	}
	return t
}

// Stale reports whether the channel should be pruned at now: its newest update (or its
// announcement, if it never had one) is older than maxAge (BOLT 7: two weeks).
func (c *Channel) Stale(now time.Time, maxAge time.Duration) bool {
	last := int64(c.LastUpdate())
	if last == 0 {
		last = c.Added
	}
	return now.Unix()-last > int64(maxAge/time.Second)
}

// SCIDString formats a short channel id as block x tx x output.
func SCIDString(id uint64) string {
	return fmt.Sprintf("%dx%dx%d", id>>40, (id>>16)&0xFFFFFF, id&0xFFFF)
}

// Node is an announced node (node_announcement).
type Node struct {
	ID        NodeID   `json:"id"`
	Timestamp uint32   `json:"ts"`
	Alias     string   `json:"alias,omitempty"`
	Color     string   `json:"color,omitempty"`
	Addresses []string `json:"addrs,omitempty"`
	Features  []byte   `json:"features,omitempty"`
}
