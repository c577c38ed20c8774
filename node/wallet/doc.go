// Package wallet is the box's on-chain wallet: a watch-only view of the owner's output
// descriptors that follows a chain backend, hands out addresses, and builds transactions
// that the box's signer (hsm) signs.
//
// # The service
//
// Wallet (wallet.go; the contract with the page is service.go) ties the parts together:
//
//   - Keyring (keyring.go). Config.Descriptors are multipath ".../<0;1>/*" descriptors as
//     hsm exports them: wpkh, tr (BIP86, key path), sh(wpkh), pkh and
//     wsh(sortedmulti(k, …)), parsed with hsm/keys. For each descriptor and chain (0
//     receive, 1 change) the wallet watches the addresses up to GapLimit (default 20) past
//     the highest used index. When a transaction pays an address near the end of a window,
//     the window grows and the same transactions are looked at again until nothing changes,
//     so a block that pays index 10 and index 25 is found whole. The indexes (the next
//     unused one, and the next receive address handed out) are kept in storage. NewAddress
//     gives a fresh receive address of the first descriptor at each call, as Bitcoin Core
//     does, but never more than GapLimit past the last used one: then it starts again at
//     the first unused one, so that every address handed out is watched. Change goes to the
//     first unused change address of the first descriptor.
//   - Sync (sync.go). Run follows the backend set with SetBackend (the owner's node over
//     RPC or the built-in light client; either can be swapped in at any time) through
//     chain.Backend.Subscribe from the wallet's stored tip. For each connected block it
//     matches the wallet's scripts against the block's BIP158 basic filter — which holds
//     the scripts of the outputs a block spends too, so spends of the wallet's coins match
//     by the same scripts — fetches the block only on a match, and applies it to the Store
//     (an empty block otherwise, so the tip moves). Disconnected blocks are undone. A wallet
//     without a tip starts at Config.Birthday (0, the default, scans from the genesis
//     block). When the backend has lost the wallet's tip (EventLost, for example another
//     node behind the same address) the wallet undoes its blocks until its tip is on the
//     backend's chain and follows from there. Errors and BackendDown make the state
//     SyncDown with the reason; following starts again after Config.RetryDelay. Backends
//     with the optional chain.MempoolWatcher feed unconfirmed transactions. Sync reports
//     the state, the backend's status (refreshed every StatusInterval and after each batch
//     of blocks) and the wallet's progress (its tip over the backend's).
//   - Fees (fees.go). EstimateFee asks Config.FeeModel, the backend's estimator and, when
//     the backend implements chain.MempoolFeeEstimator, its mempool, together; the first in
//     that order that answers is the suggestion, the others are listed beside it, and the
//     minimum relay fee (1 sat/vB) is the last resort.
//   - Send (send.go, build.go, broadcast.go). Propose checks the request (ErrInvalidAddress,
//     ErrWrongNetwork, ErrAmountBelowDust, ErrFeeRateTooLow, ErrInsufficientFunds), selects
//     coins with package coinselect among the spendable ones — confirmed, or unconfirmed
//     change of the wallet's own transactions, mature coinbases only, none that a pending
//     transaction spends — and builds a version 2 transaction that signals RBF (or carries
//     the BIP68 relative lock asked for), with nLockTime the lock time asked for or the
//     current height (anti fee sniping), change to a change address unless it would be dust,
//     inputs and outputs shuffled. The PSBT carries what a signer needs: the UTXOs (the
//     previous transaction for legacy inputs), redeem and witness scripts, and for every key
//     its master fingerprint and full path from the descriptor's key origins (taproot
//     fields for tr), on the change outputs too, so that hsm/sign proves the change. The
//     Proposal is what the review screen shows; Send signs it (Config.Signer), finalizes,
//     checks every input with the script engine, broadcasts and records the transaction at
//     once. A refusal for a timelock not yet passed is ErrLockTimeNotYet. A multisig whose
//     threshold is above one gets the box's signature only: Send fails with
//     ErrNeedsSignatures, SignOnly gives the partially signed PSBT for the cosigners, and
//     Broadcast sends the completed one. Proposals live for Config.ProposalTTL (10 min).
//   - Fee bumps (bump.go, cpfp.go). ProposeBump replaces (BIP125) an unconfirmed wallet
//     transaction that signals RBF and spends only the wallet's coins: same inputs (plus
//     confirmed coins if needed), same payments, less change; its fee covers the replaced
//     transactions' (descendants included) plus 1 sat/vB of its own size, at a higher rate.
//     ProposeCPFP spends the parent's largest unspent output of the wallet into a fresh
//     change address so that parent and child together pay the package rate asked.
//   - History (history.go): newest first, with confirmations, fees when all inputs are the
//     wallet's, and whether a bump or a CPFP applies.
//
// # The store
//
// Store keeps the wallet's accounting in storage under the subsystem "wallet": the outputs
// that pay the wallet's scripts, their spends, balances, history and the raw transactions.
// It is fed with ConnectBlock for every block of the best chain, DisconnectBlock for blocks
// undone by a reorganisation (tip first), and AddMempoolTx for unconfirmed transactions. It
// recognises its outputs by the scriptPubKeys it was given (from the keyring), and its
// spends by the outpoints it holds.
//
// Outputs are never deleted when spent: an output records the transaction that spent it and
// at which height, so that undoing a block only clears heights. A block's undo record lists
// the wallet transactions it confirmed; disconnecting it returns them to unconfirmed, as they
// would return to the mempool. When a transaction spends an output that an unconfirmed one
// spent already (a fee bump, or a conflict that confirmed), the earlier one and its
// descendants are marked ReplacedBy and their outputs leave the wallet. Balance counts
// unspent outputs: confirmed ones, and unconfirmed incoming ones apart; outputs spent by an
// unconfirmed transaction count in neither.
//
// Not done: an unconfirmed transaction that leaves the mempool without a conflict the
// wallet sees (evicted, or replaced by a transaction that spends none of the wallet's
// coins, or gone with a chain the backend no longer has) stays unconfirmed in the history
// and its incoming outputs in the unconfirmed balance (not spendable unless they are the
// wallet's own change), as in Bitcoin Core until the owner abandons it; there is no
// "abandon" yet.
//
// Sub-packages:
//
//   - coinselect: Bitcoin Core's branch-and-bound and single-random-draw coin selection.
//   - txsize: size, fee and dust estimation by script type.
package wallet
