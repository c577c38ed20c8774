// Package gossip is the box's BOLT 7 gossip: it syncs the channel graph from its peers with
// gossip queries and validates every message before the graph (package graph) and the
// database (package graphdb) see it.
//
// # Sync (session.go)
//
// RunSession drives one peer: query_channel_range over all blocks with the timestamp
// option; query_short_channel_ids, in chunks, for the channels the box does not have or has
// older updates of (so a restart only catches up); then gossip_timestamp_filter, after which
// the peer forwards live gossip. The box does not serve gossip: a peer's query_channel_range
// is answered with an empty complete range and its query_short_channel_ids with an end.
// Gossip from a peer passes a token bucket (golang.org/x/time/rate: a standard, tested
// limiter; a peer beyond its rate is slowed by back-pressure on its connection), and is
// collected into batches (by count and by a short delay) before validation.
//
// # Validation (ingest.go, verify.go, funding.go)
//
// channel_announcement: chain hash, node ids in ascending order, the four signatures
// (node_1, node_2, bitcoin_1, bitcoin_2) over the double SHA-256 of the signed part, and —
// with a chain backend (FundingChecker, ChainFunding on node/chain's Backend) — the funding
// output at the short channel id must exist, be the P2WSH 2-of-2 of the bitcoin keys, and
// be unspent when the backend can tell (chain.UTXOChecker, which the RPC backend
// implements with gettxout); its value becomes the capacity.
// channel_update: signed by the node the direction leaves, strictly newer than the stored
// policy, not more than an hour in the future, htlc_maximum_msat between the minimum and the
// capacity; the disabled flag is kept and honoured by route finding. Updates for channels
// not yet announced wait (bounded) for their announcement. node_announcement: signed by the
// node, newer than the stored one, kept only for nodes with channels.
//
// Stale, duplicate, foreign-chain and bad-funding messages are ignored; a bad signature or
// malformed key (ErrInvalid) gets the peer dropped, since lnd never relays such data.
// Signatures of a batch are checked in parallel on all cores (Parallel), announcements
// first, then updates and node announcements; parsed node keys are cached. Prune removes
// channels whose newest update is older than the given age (two weeks per BOLT 7).
//
// Dependencies: lnd's lnwire for the messages and their signed parts (DataToSign), btcec for
// secp256k1 (the library lnd and btcd use), node/chain for the funding check.
package gossip
