// Package services wires the product's services together: it opens the box's database on the
// data directory, the key custody with the seal providers the box has, the wallet service and
// its chain backend, mounts the web page and API on them, and serves them. It runs in the
// child process PID 1 supervises ("anyad serve") and, unchanged, in development mode on a host
// ("anyad dev", where -network regtest points the wallet at a local regtest node).
//
// # Wallet service
//
// The wallet service (package node/wallet) opens as soon as the custody has accounts, locked
// or not: it needs only the accounts' public descriptors (the single-key ones, BIP84 first,
// whose addresses the Receive page hands out; the BIP48 cosigner key is not a wallet of its
// own). Until then it looks for them every 2 seconds and whenever the page asks. It signs
// through the custody (hsm.Custody.SignPSBT under the signing policy, not finalized: the
// wallet finalizes), so sending needs the custody unlocked. It follows the chain backend saved
// with package node/backend, opened at start, and the one the owner chooses on the page, which
// replaces (and closes) the one before. The wallet and its backend stop before the database
// closes.
package services
