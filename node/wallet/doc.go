// Package wallet keeps the wallet's accounting: the outputs that pay the wallet's scripts,
// their spends, balances and history, persisted in storage under the subsystem "wallet".
//
// The Store is fed by a chain backend (node/chain Backend or the node/p2p light client):
// ConnectBlock for every block of the best chain, DisconnectBlock for blocks undone by a
// reorganisation (tip first), and AddMempoolTx for unconfirmed transactions. It recognises
// its outputs by the scriptPubKeys it was given (Scripts, from hsm/keys accounts with their
// derivation paths), and its spends by the outpoints it holds.
//
// Outputs are never deleted when spent: an output records the transaction that spent it and
// at which height, so that undoing a block only clears heights. A block's undo record lists
// the wallet transactions it confirmed; disconnecting it returns them to unconfirmed, as they
// would return to the mempool. Balance counts unspent outputs: confirmed ones, and
// unconfirmed incoming ones apart; outputs spent by an unconfirmed transaction count in
// neither.
//
// Sub-packages:
//
//   - coinselect: Bitcoin Core's branch-and-bound and single-random-draw coin selection.
//   - txsize: size, fee and dust estimation by script type.
package wallet
