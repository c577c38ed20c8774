// Package node is the box's view of the Bitcoin and Lightning networks: chain backends, the
// wallet, Lightning gossip and route finding (issues #4 and #5). It keeps its state through
// package storage and knows nothing of HTTP or PID 1.
//
// Sub-packages:
//
//   - chain: the chain backend interface the wallet uses (with optional capabilities:
//     mempool watching, mempool fee rates, peers), and its RPC implementation on a bitcoind
//     or btcd node.
//   - p2p: the built-in light client (btcd's peer and wire): headers-first sync, BIP157/158
//     filters, transaction relay, DNS seeds, peer scoring; a second chain.Backend.
//   - backend: the owner's choice of backend, persisted, validated, opened and checked.
//   - wallet: the wallet service — descriptors and addresses with a gap limit, the UTXO set
//     and history, sync over any backend, fee estimates, PSBT proposals signed by the box's
//     signer, RBF and CPFP; with coinselect and txsize.
//   - lightning: the Lightning gossip node — BOLT 8/1 peers (lnd's brontide and lnwire), BOLT 7
//     gossip sync and validation, the channel graph in bbolt, single-path and MPP route
//     finding; the node key comes from the box's signer (hsm.NodeKey).
//   - regtest: the test harness that builds btcd (and lnd/lncli from a wrapper module) once
//     into a cache and runs real nodes on loopback, with a mining key that funds test
//     transactions, and lnd networks with channels (tests and tools only).
package node
