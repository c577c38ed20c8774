// Package p2p is the box's native Bitcoin light client (issue #4), built on btcd's peer and
// wire packages: it keeps several outbound peers, syncs and validates block headers, and
// fetches BIP157/158 compact filters to find the blocks that concern the wallet.
//
// # Peers
//
// Manager keeps one connection per configured address (btcd's peer.NewOutboundPeer plus
// AssociateConnection; the version handshake carries the network's magic and our best
// height, ping/pong is answered and sent by btcd's peer). A lost connection is retried with
// exponential back-off and jitter (Config.BackoffMin..BackoffMax). Misbehaviour adds to a
// per-address score: an invalid header, an undecodable message (wire.MessageError), a filter
// that does not match its filter header or a block whose merkle root does not match its
// header cost the whole Config.BanThreshold; headers that do not connect to a locator reply
// cost 20. At the threshold the peer is disconnected and not redialled for BanDuration.
//
// # Headers
//
// HeaderChain holds every validated header in a tree and the best chain by cumulative work
// (blockchain.CalcWork). Each header must connect to a known parent and pass btcd's own
// rules through blockchain.CheckBlockHeaderSanity and CheckBlockHeaderContext (our tree
// implements blockchain.HeaderCtx/ChainCtx): proof of work below the network limit and
// meeting the header's own target, the difficulty the retarget rules expect (2016-block
// retargets on mainnet, ReduceMinDifficulty / PoWNoRetargeting on test networks), a
// timestamp after the median of the last 11 blocks and not too far in the future, the block
// version, and the params' checkpoints (including forks below the last reached checkpoint).
// Sync is headers-first: getheaders with a block locator from our best tip, repeated while
// replies are full (2000). A heavier branch reorganises the best chain and is reported as a
// Change (disconnected tip first, then connected lowest first) to Config.OnChange.
//
// # Filters
//
// From peers that signal NODE_COMPACT_FILTERS (btcd serves them unless --nocfilters) the
// manager fetches basic filter headers (getcfheaders, 2000 per request), checks that each
// batch chains onto the filter header we hold for its parent, then the filters
// (getcfilters, 1000 per request), each checked against its filter header. A filter that
// matches one of Config.Scripts (gcs MatchAny with the block-hash key) makes the manager
// fetch that block (getdata) and check its merkle root against the header before handing it
// to Config.OnBlock. Filter headers are keyed by block hash, so after a reorganisation only
// the new branch's are fetched.
//
// # Storage
//
// With Config.DB the state lives in subsystem "p2p" of package storage: headers (block hash
// → header, height, cumulative work), best (height → hash), state (tip), fheaders (block
// hash → filter header) and filters (block hash → filter). Headers and the best-chain
// change are written in one transaction, so a restart resumes from the stored tip and
// downloads nothing it already has.
package p2p
