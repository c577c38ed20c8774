// Package txsize estimates the size, virtual size and fee of Bitcoin transactions before they
// are signed, from the script types of their inputs and outputs, and applies the dust rules of
// Bitcoin Core's policy (GetDustThreshold with the default dust relay fee of 3 sat/vB).
//
// Sizes are worst-case estimates in the way Bitcoin Core computes them for coin selection:
// ECDSA signatures are counted as 72 bytes (plus the sighash byte included in that figure),
// Schnorr key-path signatures as 64 bytes (SIGHASH_DEFAULT), so a transaction signed later is
// never larger than estimated and the fee rate paid is never below the one asked for.
//
// Weights are kept in weight units (WU) and converted to virtual bytes (vB) by rounding up,
// as BIP141 defines; fees are computed from a FeeRate in satoshis per 1000 vB (sat/kvB, the
// unit of node/chain's FeeRate) and rounded up, as Bitcoin Core's CFeeRate::GetFee does.
package txsize
