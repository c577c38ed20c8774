// Package graph is the box's in-memory map of the Lightning network: nodes, channels and
// each channel's two directed policies, indexed for route finding (dense node numbers and
// adjacency lists). It holds only validated data: package gossip validates and then applies
// changes here and, through package graphdb, to the database.
//
// Rules the graph enforces itself, whoever calls it: a policy or node announcement replaces
// the stored one only when its timestamp is newer (BOLT 7 monotonic timestamps), and a node
// announcement is kept only for a node with at least one channel.
//
// It depends on nothing but the standard library; the types carry JSON encodings so that
// graphdb can store them through package storage.
package graph
