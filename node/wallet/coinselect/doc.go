// Package coinselect chooses which coins (UTXOs) fund a payment, following Bitcoin Core's
// wallet (src/wallet/coinselection.cpp).
//
// Every coin is weighed by its effective value: its value minus the fee its input costs at
// the transaction's fee rate. Coins whose effective value is not positive are never chosen.
//
// Select first runs branch-and-bound (SelectBnB, Core's SelectCoinsBnB): a depth-first search
// over the coins sorted by descending effective value for a set whose effective value lands
// in [target, target + cost of change], so that no change output is needed. Among the sets
// found it keeps the one of least waste, and it stops after 100,000 tries (TotalTries) as
// Core does.
//
// When BnB finds nothing, the fallback is Core's single random draw (SelectSRD): coins are
// taken in random order until the effective value covers the target plus the change output's
// fee plus CHANGE_LOWER (50,000 sat), so the change is never tiny; when the coins cannot cover
// that, they are drawn again with the plain target and the change is dropped to the fee if
// it would be dust. SRD was chosen over Core's knapsack solver because it is short, needs no
// tuning, and its random choice does not leak the wallet's coin sizes the way knapsack's
// "closest sum" does; Core itself runs it alongside knapsack and keeps the least wasteful.
//
// Waste (Waste) is Core's metric: for each input, its fee now minus its fee at the long-term
// fee rate; plus the cost of the change output when there is one, otherwise the excess
// given up to the miners.
//
// The package is pure: it knows nothing of keys, storage or the chain, and callers pass the
// sizes from package txsize.
package coinselect
