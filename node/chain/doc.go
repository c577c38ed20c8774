// Package chain is the box's source of blockchain data: the Backend interface the wallet
// uses, and RPC, its implementation on top of a full node (bitcoind or btcd) reached over
// JSON-RPC. The built-in P2P light client (package node/p2p, on btcd's peer and wire
// packages) implements the same interface, so the owner's choice in the setup page between
// "my own node" and "built-in light client" (package node/backend) changes nothing above
// this package.
//
// # The interface
//
// Backend is shaped by what both kinds of backend can do without favouring either:
//
//   - Reads by height and by hash (BestBlock, BlockHash, HeaderByHash, HeaderByHeight,
//     BlockByHash). HeaderByHash also answers for blocks that left the best chain, which is
//     what walking back a reorganisation needs.
//   - BIP157/158 compact filters (FilterByHash, FilterHeaderByHash) so that the wallet scans
//     the chain the same way on both backends: match its scripts against each block's basic
//     filter (MatchFilter) and fetch only the blocks that match. A full node serves them from
//     its index (btcd: on by default; bitcoind: -blockfilterindex); the light client gets
//     them from peers and checks them against the filter header chain (FilterHeader).
//   - Broadcast and EstimateFee. A transaction the node already holds counts as broadcast,
//     so the wallet may rebroadcast freely; refusals are *RejectError with the node's reason.
//   - Subscribe, an ordered stream of BlockConnected and BlockDisconnected events from the
//     consumer's last known block, so that a consumer applying the events in order stays on
//     the best chain through reorganisations, plus BackendDown/BackendUp when the backend goes
//     away and comes back. The RPC backend polls for it (every Config.PollInterval); the light
//     client will push from its header sync.
//   - Ready and Status for the setup page and dashboard: reachability, credentials, network
//     and sync progress.
//
// Every failure is an *Error whose category matches one of the sentinel errors with
// errors.Is: ErrNodeDown (connection refused, reset or timed out: transient, the same
// backend works again once the node is back), ErrAuth (HTTP 401/403 or an unreadable
// cookie), ErrTLS (certificate mismatch), ErrWrongNetwork (the node's genesis block is not
// the configured network's; checked before the first call and again after every loss of
// contact, since another node may answer at the same address), ErrSyncing (initial block
// download, or blocks trailing headers or peers by more than Config.SyncSlack), ErrNotFound,
// ErrUnsupported, ErrRejected, ErrFeeUnavailable and ErrClosed. The cause stays reachable
// with errors.As (for example the node's *btcjson.RPCError).
//
// # Why btcd's rpcclient
//
// rpcclient (github.com/btcsuite/btcd/rpcclient, at the btcd version the module pins) speaks
// both bitcoind's and btcd's dialects: it detects the backend (getinfo exists on btcd only)
// and adapts the calls whose format differs (getblockchaininfo's soft forks), handles
// bitcoind's cookie file and TLS with btcd's self-signed rpc.cert, and decodes results into
// btcd's wire types, which the wallet and the light client use anyway. It is the client lnd
// uses against the same two nodes. Writing our own JSON-RPC client would duplicate it and
// its knowledge of the servers' quirks. Where the servers differ in method rather than
// format, this package picks the method on first use: getcfilter (btcd) or getblockfilter
// (bitcoind), estimatesmartfee (bitcoind) or estimatefee (btcd); and on btcd, which answers
// verbose getblockheader for best-chain blocks only, the header of a stale block is read
// raw and its height found from its ancestors.
//
// It is used in HTTP POST mode, because bitcoind has no websocket RPC and btcd's websocket
// notifications would work for one backend only; new blocks are polled instead, which at
// one getbestblockhash per interval costs nothing. Its HTTP mode has three properties this
// package works around:
//
//   - It sends a client's requests one at a time from a single goroutine, and closes the
//     connection after each request (a new TCP and TLS handshake per call), so there is no
//     connection to keep alive and pooling connections would not help. What the pool here
//     holds is Config.PoolSize clients, that is, calls in flight at once: a slow getblock
//     does not hold up the getbestblockhash of the chain follower.
//   - It takes no context and, on a transport error, retries by itself ten times with a
//     linear back-off (about 20 s in all) before reporting. So every attempt first probes
//     the node's port (a refused connection is ErrNodeDown within milliseconds), the probe
//     is repeated every Config.ProbeInterval while a call is pending, and an attempt is
//     bounded by ctx and Config.Timeout. An abandoned call's client is retired, shut down in
//     the background once rpcclient gives up, and replaced in the pool at once.
//   - Its errors are strings for HTTP failures ("status code: 401, ..."), which classify
//     turns into the categories above.
//
// Retries with exponential back-off and jitter (Config.Attempts, BackoffMin, BackoffMax)
// apply to idempotent calls (all reads) and only for transient errors (ErrNodeDown,
// ErrSyncing while the node warms up). Broadcast is not retried: the wallet owns that
// decision.
//
// # Optional capabilities
//
// Beyond Backend, a backend may implement the interfaces of optional.go, which users find
// with a type assertion. RPC implements two of them:
//
//   - MempoolWatcher: WatchMempool polls getrawmempool every Config.PollInterval and fetches
//     each txid not seen yet with getrawtransaction (which serves mempool transactions
//     without -txindex), at most 500 per poll, delivering each transaction once. It remembers
//     only the txids still in the mempool, so its memory follows the node's mempool.
//     Transactions already in the mempool when the watch starts are delivered too.
//   - MempoolFeeEstimator: MempoolFeeRate reads getrawmempool verbose, streaming the answer
//     into 16 bytes per transaction. btcd gives "fee" and "size"/"vsize"; bitcoind gives
//     "fees": {"base"} and "vsize" (older versions "fee", and before 0.19 a virtual "size"):
//     fees.base is preferred to fee, vsize to weight/4 to size. The transactions are sorted
//     by their own fee rate (no ancestor packages), the walk goes down target × BlockVSize
//     (1,000,000 vB) and returns the rate it reaches, at least MinRelayFeeRate, which is
//     also the answer for a mempool shallower than that. An unreadable mempool is
//     ErrFeeUnavailable (with the cause's category, such as ErrNodeDown).
//
// The light client (node/p2p) implements PeerReporter and MempoolWatcher.
//
// # Filter matching
//
// MatchFilter asks gcs's MatchAny whether any of the wallet's scripts is in a block's
// filter: one pass over the filter for all scripts (gcs picks a sorted merge or a hash
// join), instead of one Match per script, each decoding the filter from the start. With a
// filter of 2,000 random output scripts (5,266 bytes) and 1,000 wallet scripts that are not
// in it, BenchmarkMatchFilter measures both in the same run (go test ./node/chain -run '^$'
// -bench MatchFilter -benchmem -count 6, 2-core AMD EPYC, medians): MatchAny 0.21 ms,
// 1,000 single Match calls 45 ms, a ratio of about 1:215 (an earlier run on the idle
// machine, -count 3: 0.23 ms against 40.6 ms, 1:175); MatchAny allocates 43 KB, the single
// calls 5.4 MB. For 1,000 scripts gcs's MatchAny takes its hash join (0.30 ms alone); its
// sorted merge (ZipMatchAny) measured 0.19 ms.
//
// DecodeFilter is the decoder for filters from nodes and peers: it bounds the size and
// refuses filters claiming more elements than their bits can hold.
package chain
