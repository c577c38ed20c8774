// Package node is the box's view of the Bitcoin and Lightning networks: chain backends, the
// wallet, Lightning gossip and route finding (issues #4 and #5). It keeps its state through
// package storage and knows nothing of HTTP or PID 1.
package node
