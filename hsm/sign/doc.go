// Package sign signs PSBTs with the box's BIP32 master key, under the owner's policy.
//
// # What it does
//
// [Signer.Sign] takes a PSBT (BIP174 version 0, binary or base64; version 2 / BIP370 is refused
// with [ErrVersion2]) and, for every input, looks for keys of this wallet: PSBT_IN_BIP32_DERIVATION
// entries (ECDSA) or PSBT_IN_TAP_BIP32_DERIVATION entries (taproot) whose master fingerprint is
// ours. It signs
//
//   - P2WPKH and P2SH-P2WPKH (BIP143 sighash),
//   - P2WSH and P2SH-P2WSH multisig, adding our partial signature(s),
//   - P2TR key path (BIP341 sighash over all prevouts, BIP340 Schnorr; the internal key is
//     tweaked with PSBT_IN_TAP_MERKLE_ROOT, or with nothing per BIP86),
//   - legacy P2PKH and P2SH multisig, only with PSBT_IN_NON_WITNESS_UTXO,
//
// and can finalize the inputs and extract the network transaction ([SignOptions.Finalize]).
//
// Before any private key exists it checks, on public data only: that every input's amount is
// known (a segwit input without WITNESS_UTXO or a full previous transaction is refused, since a
// hidden amount hides the fee; a legacy input needs NON_WITNESS_UTXO, whose txid is checked);
// that redeem and witness scripts hash to the output being spent; that each of our keys is in
// the script (or, for taproot, that the output key is our internal key tweaked as the PSBT
// says); that the sighash type is ALL (DEFAULT for taproot) unless the policy allows another;
// and that every input has a key of ours unless [SignOptions.AllowForeignInputs]. Then the
// policy. Only then does it derive each signing key from the master, check that the derived
// public key is the one the PSBT names (otherwise the key is not ours and nothing is signed),
// sign, check the signature, and zero the key ([btcec.PrivateKey.Zero], and
// [hdkeychain.ExtendedKey.Zero] for intermediate nodes). Keys are never logged and never
// leave the call. Go cannot promise that no copy survives on a stack or in a library's
// scratch buffer: the zeroing is best effort.
//
// Every refusal is an error that says why: [*InputError] names the input (wrapping
// [ErrMissingUTXO], [ErrLegacyNoPrevTx], [ErrSighash], [ErrNotOurs], [ErrKeyMismatch],
// [ErrScriptMismatch], [ErrUnsupported], ...), [*PolicyError] lists the broken rules in words
// the owner can read ("fee 12.3% of the amount exceeds the 5% limit").
//
// [Signer.Summarize] returns the [Summary] the review screen shows: inputs, outputs classified
// as change or sent, fee, estimated virtual size and fee rate, and the policy violations, if any.
//
// # Why btcd's psbt and txscript
//
// The box's node and Lightning stack (lnd) already build on btcd, so its psbt, txscript, wire,
// hdkeychain and btcec packages are in the binary anyway, and they are the implementation lnd
// signs real funds with. txscript computes the BIP143/BIP341 sighashes and its script engine
// (txscript.NewEngine) is what the tests verify every produced witness with; psbt parses,
// serializes and finalizes BIP174. This package adds what a hardware signer needs on top: the
// checks above, the policy, and key handling. btcd's parser can panic on some malformed
// input, so parsing and finalizing run under recover (see FuzzSignPSBT).
//
// # Policy
//
// [Policy] is evaluated on the [Summary]; a zero limit disables its rule.
//
//   - Change: an output counts as change only if it carries a BIP32 derivation (or a taproot
//     key-path derivation) under our master fingerprint on an allowed change path —
//     purpose'/coin'/account'/1/i with purpose 44, 49, 84 or 86, coin the network's (or one of
//     Policy.ChangeAccounts), i below the change index limit — and the key this wallet derives
//     at that path is the key named AND its standard script for the purpose (P2PKH,
//     P2SH-P2WPKH, P2WPKH, BIP86 P2TR) is the output's script. Everything else, including
//     multisig change and outputs that merely claim to be ours, counts as sent.
//   - Sent is the sum of the outputs that are not change; Spend = our inputs - change (which
//     is sent plus fee when all inputs are ours) is what leaves the wallet.
//   - DailyLimit: Spend plus the spends recorded in the [History] over the last 24 h
//     (a rolling window ending now) must not exceed it. Re-signing the same unsigned
//     transaction does not count twice. Sign records the spend before returning the
//     signatures; if recording fails, nothing is returned.
//   - MaxFeePercent: fee / sent * 100. A transaction that sends nothing (all change) is only
//     held to MaxFeeRate.
//   - MaxFeeRate: fee / estimated vsize, in sat/vB. The size is estimated with maximal
//     (72-byte) ECDSA signatures, so the rate is exact to within a byte per signature.
//   - AllowSighash: sighash types besides ALL/DEFAULT that may be used. NONE, SINGLE and
//     ANYONECANPAY let the holder of the PSBT change outputs after signing, which defeats the
//     checks above: allow them only for protocols that need them.
package sign
