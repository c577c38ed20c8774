// Package hsm is the box's key custody: it keeps the wallet seed sealed at rest, opens it into
// memory only while the wallet is unlocked, and signs through the owner's policy, recording
// every unseal, change of protection and signature in a hash-chained audit trail.
//
// The pieces live in subpackages: keys (BIP39/BIP32, accounts, descriptors), seal (the Sealer
// interface and the passphrase provider), tpm and piv (hardware providers), sign (PSBT signing
// and policy) and audit. [Custody] ties them together for the appliance; it keeps its records in
// the "hsm" subsystem of the box's database and knows nothing of HTTP or PID 1.
//
// What is sealed is the 64-byte BIP32 seed (mnemonic plus optional BIP39 passphrase); the
// mnemonic itself is shown once at creation and never stored. The public account keys and
// descriptors are stored in the clear so a watch-only wallet can follow the box while it is
// locked.
//
// Protection. The primary sealer is the passphrase provider, the TPM or a YubiKey (PIV). With
// a TPM or a YubiKey a second copy is sealed with a recovery passphrase (argon2id), so that a
// box whose boot state changed ("this system booted differently than when the seed was
// sealed"), or whose YubiKey is lost, can still be opened without the mnemonic; the recovery
// copy is exactly as strong as passphrase protection, so the recovery passphrase must be long.
// The mnemonic remains the last resort. Nothing sealed is ever deleted by a failed attempt:
// changing the protection writes the new blobs in the same transaction that retires the old.
//
// Backups. The box's encrypted backups (appliance/recovery/backup) are encrypted to a key
// pair derived from the seed at a dedicated hardened path (backupkey.go), so that the
// mnemonic alone opens them on a new box. The public half is stored with the wallet record,
// so backups are made while the wallet is locked ([Custody.BackupRecipient]); the private
// half is [Custody.BackupKey] (unlocked only) or [BackupKeyFromMnemonic], and it never
// leaves this package except as one backup's HPKE exporter secrets.
//
// Lightning. The box's Lightning node identity is derived from the seed at another hardened
// path of the same purpose (nodekey.go). [Custody.NodeKey] (unlocked only) hands out a
// [NodeKey] that performs BOLT 8 ECDH and BOLT 7 message signatures without exposing the
// private key.
package hsm
