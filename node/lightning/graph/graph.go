package graph

import (
	"errors"
	"sync"
	"time"
)

// Errors of the update methods.
var (
	// ErrStale: the update is not newer than what the graph has (BOLT 7 monotonic timestamps).
	ErrStale = errors.New("graph: not newer than the stored one")
	// ErrUnknownChannel: an update for a channel the graph does not have.
	ErrUnknownChannel = errors.New("graph: unknown channel")
	// ErrNoChannels: a node announcement for a node without channels.
	ErrNoChannels = errors.New("graph: node has no channels")
)

// entry is one node of the index.
type entry struct {
	id    NodeID
	info  *Node      // nil until announced
	edges []*Channel // channels at this node
}

// Graph is the in-memory graph. It is safe for concurrent use; readers that need a
// consistent view of many parts (route finding) use View.
type Graph struct {
	mu    sync.RWMutex
	index map[NodeID]int32
	nodes []entry
	chans map[uint64]*Channel
	// lastChange is when the graph last changed.
	lastChange time.Time
}

// New returns an empty graph.
func New() *Graph {
	return &Graph{index: make(map[NodeID]int32), chans: make(map[uint64]*Channel)}
}

func (g *Graph) node(id NodeID) int32 {
	i, ok := g.index[id]
	if !ok {
		i = int32(len(g.nodes))
		g.index[id] = i
		g.nodes = append(g.nodes, entry{id: id})
	}
	return i
}

// AddChannel adds c (its policies included). It returns false, and keeps the graph as it
// is, when a channel with its id exists.
func (g *Graph) AddChannel(c *Channel) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.chans[c.ID]; ok {
		return false
	}
	g.chans[c.ID] = c
	for k, id := range []NodeID{c.Node1, c.Node2} {
		i := g.node(id)
		c.ends[k] = i
		g.nodes[i].edges = append(g.nodes[i].edges, c)
	}
	g.lastChange = time.Now()
	return true
}

// HasChannel reports whether the channel is known.
func (g *Graph) HasChannel(id uint64) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	_, ok := g.chans[id]
	return ok
}

// Channel returns a copy of the channel.
func (g *Graph) Channel(id uint64) (Channel, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	c, ok := g.chans[id]
	if !ok {
		return Channel{}, false
	}
	return c.copy(), true
}

func (c *Channel) copy() Channel {
	out := *c
	out.ends = [2]int32{} // node numbers mean something only inside the graph
	for i, p := range c.Policies {
		if p != nil {
			cp := *p
			out.Policies[i] = &cp
		}
	}
	return out
}

// UpdatePolicy sets the policy of direction dir (0 or 1) of channel id when it is newer
// than the stored one.
func (g *Graph) UpdatePolicy(id uint64, dir int, p Policy) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	c, ok := g.chans[id]
	if !ok {
		return ErrUnknownChannel
	}
	if old := c.Policies[dir&1]; old != nil && old.Timestamp >= p.Timestamp {
		return ErrStale
	}
	// Replace, not modify: a route being computed under View keeps the old pointer valid.
	c.Policies[dir&1] = &p
	g.lastChange = time.Now()
	return nil
}

// PolicyTimestamp returns the timestamp of a direction's policy (0 when none or unknown).
func (g *Graph) PolicyTimestamp(id uint64, dir int) uint32 {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if c, ok := g.chans[id]; ok && c.Policies[dir&1] != nil {
		return c.Policies[dir&1].Timestamp
	}
	return 0
}

// SetNode stores a node announcement when the node has channels and n is newer than the
// stored one.
func (g *Graph) SetNode(n Node) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	i, ok := g.index[n.ID]
	if !ok || len(g.nodes[i].edges) == 0 {
		return ErrNoChannels
	}
	if old := g.nodes[i].info; old != nil && old.Timestamp >= n.Timestamp {
		return ErrStale
	}
	g.nodes[i].info = &n
	g.lastChange = time.Now()
	return nil
}

// Node returns the node's announcement, if any.
func (g *Graph) Node(id NodeID) (Node, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	i, ok := g.index[id]
	if !ok || g.nodes[i].info == nil {
		return Node{}, false
	}
	return *g.nodes[i].info, true
}

// RemoveChannel removes the channel; a node left without channels loses its announcement.
func (g *Graph) RemoveChannel(id uint64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	c, ok := g.chans[id]
	if !ok {
		return false
	}
	delete(g.chans, id)
	for _, n := range []NodeID{c.Node1, c.Node2} {
		e := &g.nodes[g.index[n]]
		for k, x := range e.edges {
			if x == c {
				last := len(e.edges) - 1
				e.edges[k] = e.edges[last]
				e.edges[last] = nil
				e.edges = e.edges[:last]
				break
			}
		}
		if len(e.edges) == 0 {
			e.info = nil
		}
	}
	g.lastChange = time.Now()
	return true
}

// Stale returns the ids of the channels to prune at now (see Channel.Stale).
func (g *Graph) Stale(now time.Time, maxAge time.Duration) []uint64 {
	g.mu.RLock()
	defer g.mu.RUnlock()
	var ids []uint64
	for id, c := range g.chans {
		if c.Stale(now, maxAge) {
			ids = append(ids, id)
		}
	}
	return ids
}

// Stats summarises the graph for the page.
type Stats struct {
	Nodes      int       `json:"nodes"` // nodes with at least one channel
	Announced  int       `json:"announced_nodes"`
	Channels   int       `json:"channels"`
	Policies   int       `json:"policies"`
	LastChange time.Time `json:"last_change"`
}

// Stats counts the graph.
func (g *Graph) Stats() Stats {
	g.mu.RLock()
	defer g.mu.RUnlock()
	s := Stats{Channels: len(g.chans), LastChange: g.lastChange}
	for _, e := range g.nodes {
		if len(e.edges) > 0 {
			s.Nodes++
		}
		if e.info != nil {
			s.Announced++
		}
	}
	for _, c := range g.chans {
		for _, p := range c.Policies {
			if p != nil {
				s.Policies++
			}
		}
	}
	return s
}

// Channels returns copies of all channels.
func (g *Graph) Channels() []Channel {
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := make([]Channel, 0, len(g.chans))
	for _, c := range g.chans {
		out = append(out, c.copy())
	}
	return out
}

// ChannelIDs returns the ids of all channels.
func (g *Graph) ChannelIDs() []uint64 {
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := make([]uint64, 0, len(g.chans))
	for id := range g.chans {
		out = append(out, id)
	}
	return out
}

// View is a read-only view of the graph for route finding, valid inside Graph.View only.
// Nodes are numbered densely from 0 to NumNodes()-1.
type View struct{ g *Graph }

// View runs fn with the graph read-locked: updates wait until fn returns.
func (g *Graph) View(fn func(v View)) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	fn(View{g})
}

// NumNodes is the number of node numbers in use.
func (v View) NumNodes() int { return len(v.g.nodes) }

// Index returns the number of node id.
func (v View) Index(id NodeID) (int32, bool) {
	i, ok := v.g.index[id]
	return i, ok
}

// ID returns the id of node number i.
func (v View) ID(i int32) NodeID { return v.g.nodes[i].id }

// Ends returns the node numbers of c's Node1 and Node2 (c from Edges).
func (v View) Ends(c *Channel) (int32, int32) { return c.ends[0], c.ends[1] }

// Edges returns the channels at node number i. The caller must not modify them.
func (v View) Edges(i int32) []*Channel { return v.g.nodes[i].edges }
