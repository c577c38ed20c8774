// Package regtest runs real btcd nodes in regression-test mode on loopback for the tests of
// package node and its sub-packages.
//
// # Binaries
//
// The project's go.mod pins btcd v0.25.x as a library (see ../shared/notes/deps.md), but any
// btcd binary speaks the same RPC and P2P protocols, so the harness builds btcd and btcctl at
// BtcdVersion with `go install` into a cache directory ($ANYA_CACHE/bin, or ~/.cache/anya/bin)
// once per machine. A file lock keeps parallel test binaries from building twice, and a binary
// is reused when its embedded build information names the wanted version. When `go` cannot
// build btcd (no network, no module proxy) the tests are skipped, unless ANYA_REQUIRE_ALL=1,
// in which case they fail.
//
// # Nodes
//
// Start runs one btcd per call with a temporary data directory, free loopback ports, an RPC
// TLS certificate that btcd generates itself, --txindex, --nobanning and a short trickle
// interval, and stops it in t.Cleanup. Kill and Restart (same data directory and ports)
// simulate a backend that goes away and comes back; Connect and Disconnect join nodes so that
// tests can build competing branches and reorganisations.
//
// Every node owns a mining key. Generate mines to its P2WPKH address, and SendTo, SendOutputs
// and BuildTx spend the node's mature coinbases (and the change of earlier spends) with
// transactions built and signed here with txscript, so that tests can fund any address
// without a wallet in btcd, which has none.
//
// # Lightning
//
// LndBins builds lnd and lncli at LndVersion into the same cache. lnd cannot be built with
// `go install pkg@version` (its go.mod has replace directives), so the harness writes a
// throw-away wrapper module holding lnd's go.mod requirements and replaces (module path
// renamed) and its go.sum, requires lnd itself, and runs `go build -trimpath -tags "signrpc
// walletrpc chainrpc invoicesrpc routerrpc peersrpc"` under nice. A cold build takes about 16
// minutes of CPU and wall time on two cores (measured 2026-11-26: 15m48s for lnd, 33s for
// lncli) and 2 GB of memory; the binaries are reused while their build information names
// lnd LndVersion. Skips and ANYA_REQUIRE_ALL work as for btcd.
//
// StartLnd runs one lnd (--noseedbackup, btcd backend, short trickle delays) with lncli
// access (Lncli, LncliJSON); StartLightning starts btcd, several lnd nodes, funds them in
// one transaction, opens the given channels, mines until every node's graph has every
// channel with both policies (about 20 s for three nodes, 50 s for four on a loaded machine).
//
// Helpers report problems with t.Fatal and must be called from the test's goroutine.
package regtest
