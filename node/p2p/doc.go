// Package p2p is the box's native Bitcoin light client (issue #4), built on btcd's peer and
// wire packages: it keeps several outbound peers, syncs and validates block headers, fetches
// BIP157/158 compact filters to find the blocks that concern the wallet, and relays the
// transactions its peers announce to whoever watches the mempool.
//
// # Peers
//
// Manager keeps one connection per configured address (btcd's peer.NewOutboundPeer plus
// AssociateConnection; the version handshake carries the network's magic and our best
// height, ping/pong is answered and sent by btcd's peer). A lost connection is retried with
// exponential back-off and jitter (Config.BackoffMin..BackoffMax).
//
// With no configured address, peers come from the network's DNS seeds (Params.DNSSeeds,
// looked up through Config.Resolver, net.DefaultResolver by default; a seed that supports
// filtering is asked for "x49.<seed>", peers with NODE_NETWORK, NODE_WITNESS and
// NODE_COMPACT_FILTERS, then for its plain name). Up to Config.TargetPeers (4) of the
// addresses found are kept connected on the network's default port, each for one session;
// a slot that frees goes to the next address, and when every address has been tried and no
// peer is left the seeds are asked again, after a back-off that grows while the addresses
// they give yield no handshake.
//
// # Misbehaviour
//
// Misbehaviour adds to a per-address score; at Config.BanThreshold (100) the peer is
// disconnected and not dialled again for BanDuration (24 h). Full threshold at once: bytes
// that do not make a message (bad magic, checksum or length, a payload that does not decode
// — told apart from a broken connection by watching the socket's own read errors; unknown
// commands are tolerated, newer peers send them), an invalid header, a cfilter that does not
// decode or does not match its filter header, cfheaders of the wrong type or length, a block
// that fails btcd's context-free block checks (proof of work, coinbase, sane transactions,
// merkle root, no duplicate transactions — which the merkle root alone does not rule out —
// and the witness commitment), and a requested transaction that fails btcd's sanity checks.
// Headers that do not connect to a locator reply cost 20, cfheaders that do not connect to
// our filter header chain 50. Nothing a peer sends can stop the client: every parser of
// peer data has a fuzz target, and TestMalformedPeers drives fake peers over TCP through
// each offence while a real btcd keeps the client synced.
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
// replies are full (2000) and after every block announcement. (The request is queued
// directly, not through peer.PushGetHeadersMsg, which silently drops a request with the
// same locator as the previous one — the very request an announcement at an unchanged tip
// needs.) A heavier branch reorganises the best chain and is reported as a Change
// (disconnected tip first, then connected lowest first) to Config.OnChange.
//
// # Filters
//
// From peers that signal NODE_COMPACT_FILTERS (btcd serves them unless --nocfilters) the
// manager fetches basic filter headers (getcfheaders, 2000 per request), checks that each
// batch chains onto the filter header we hold for its parent, then the filters
// (getcfilters, 1000 per request), each checked against its filter header. A filter that
// matches one of Config.Scripts (gcs MatchAny with the block-hash key) makes the manager
// fetch that block (getdata) and check it (see Misbehaviour) before handing it to
// Config.OnBlock. Blocks are fetched once the batch of filters has arrived, and a filter is
// recorded only after its block was delivered, in height order: a peer that fails to
// deliver a block leaves its filter to be fetched again, with the block, from another peer.
// Filter headers are keyed by block hash, so after a reorganisation only the new branch's
// are fetched. The filter headers come from the first peer that serves them and are not
// cross-checked between peers.
//
// # Transactions
//
// The version message asks peers to relay transactions, and BIP133 fee filters decide
// whether they do: the minimum relay fee while at least one WatchMempool subscription is
// active, more than all bitcoin per kvB (nothing) otherwise, sent to every peer when the
// state changes and to each new peer after its handshake. Turning relay on waits until the
// peers answered a ping sent after the filter, so a transaction accepted after WatchMempool
// returns is announced. Announcements (inv of tx or witness tx) are answered with getdata
// for the witness transaction, each txid requested from one peer only, at most 500 in
// flight per peer and at most 100 per second per peer (bursts of 1000); a request expires
// after Config.Timeout, and notfound or a disconnect releases it. A transaction is delivered
// once to every subscriber (the last 50,000 txids and wtxids are remembered), only if it was
// requested from the peer that sends it and passes btcd's context-free sanity checks. A
// subscriber's channel holds 1024 transactions; a subscriber that lets it fill up misses
// transactions rather than stalling the peers. The light client cannot check a
// transaction's inputs, so an unconfirmed transaction it reports may never confirm.
//
// # Backend
//
// Backend implements chain.Backend on top of the Manager, plus chain.PeerReporter (address,
// user agent, height, misbehaviour score of each connected peer) and chain.MempoolWatcher.
//
// # Storage
//
// With Config.DB the state lives in subsystem "p2p" of package storage: headers (block hash
// → header, height, cumulative work), best (height → hash), state (tip), fheaders (block
// hash → filter header) and filters (block hash → filter). Headers and the best-chain
// change are written in one transaction, so a restart resumes from the stored tip and
// downloads nothing it already has.
package p2p
