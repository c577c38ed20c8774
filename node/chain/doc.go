// Package chain is the box's source of blockchain data: the Backend interface the wallet
// uses, and RPC, its implementation on top of a full node (bitcoind or btcd) reached over
// JSON-RPC. The built-in P2P light client (to come, on btcd's peer and wire packages)
// implements the same interface, so the owner's choice in the setup page between "my own
// node" and "built-in light client" changes nothing above this package.
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
package chain
