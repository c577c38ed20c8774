// Package node is the box's view of the Bitcoin and Lightning networks: chain backends, the
// wallet, Lightning gossip and route finding (issues #4 and #5). It keeps its state through
// package storage and knows nothing of HTTP or PID 1.
//
// Sub-packages:
//
//   - chain: the chain backend interface the wallet uses, and its RPC implementation on a
//     bitcoind or btcd node (the P2P light client will be the second implementation).
//   - internal/regtest: the test harness that builds btcd once into a cache and runs real
//     nodes on loopback, with a mining key that funds test transactions.
package node
