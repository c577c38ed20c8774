// Package backup writes and reads the box's encrypted backups: everything needed to bring a
// box back after its disk died (settings, the wallet's accounting and descriptors, the
// signer's spend history and audit trail, the chain backend), in a versioned, authenticated,
// encrypted file that only the wallet's mnemonic opens. The sealed seed is never in it.
//
//	to, _ := custody.BackupRecipient()                 // works while the wallet is locked
//	m, err := backup.Write(w, db, to, backup.Options{Policy: p, Network: "mainnet", ...})
//
//	key, _ := hsm.BackupKeyFromMnemonic(words, pass)   // a new box: the owner types the words
//	m, err := backup.Verify(r, key, backup.ReadOptions{Policy: p, Network: "mainnet"})
//	m, err := backup.Restore(r, key, db, opts)         // all or nothing
//
// Scheduler takes backups automatically into a directory (the USB stick comes later).
//
// # What is in a backup
//
// The content comes from the database (package storage) by subsystem, through an explicit
// allow-list with an explicit deny-list (DefaultPolicy, which says what and why): the page's
// settings but not its admin password hash, sessions or rate-limit counters; the chain
// backend's settings; the whole wallet subsystem (address indexes, outputs, history, raw
// transactions, tip, labels); the signer's spend history but never the custody's wallet
// record, which holds the seed sealed to the old box's TPM or YubiKey; the audit trail; the
// updater's trust state but not its attempts and slots. The wallet's public accounts
// (descriptors, xpubs, first addresses) go in the encrypted manifest, so that Verify shows
// them; the new box derives them again from the mnemonic when it seals the seed anew.
// Storage's schema records go along with each subsystem, so that data from older firmware is
// migrated after a restore and data from newer firmware is refused (ErrNewerSchema).
//
// # The key
//
// The key pair comes from the seed (hsm, backupkey.go): a dedicated hardened BIP32 path
// gives an X25519 key pair for HPKE (RFC 9180). Backups are encrypted to the public half,
// which the custody stores beside the descriptors, so the box keeps backing up while the
// wallet is locked (after a restart, a passphrase or YubiKey wallet stays locked until the
// owner unlocks it, while its history goes on changing). Reading needs the private half: the
// custody's BackupKey (unlocked) or BackupKeyFromMnemonic on a new box. The key leaves hsm
// only as HPKE exporter secrets for one file; the private key stays inside hsm.BackupKey.
//
// # Format, version 1
//
// All integers are big-endian.
//
//	offset  size  field
//	0       8     magic "ANYABKUP"
//	8       2     format version (1)
//	10      4     header body length n (1 to 65536)
//	14      4     CRC-32C of bytes 0–13
//	18      n     header body: a JSON object (Header)
//	18+n    32    header checksum: SHA-256 of bytes 0 to 18+n
//	50+n    …     chunks, each ChunkSize+16 bytes
//
// The header body holds the creation time, the firmware version, the network, the wallet's
// fingerprint and wallet id, the key derivation version, the algorithm identifiers (HPKE
// KEM 0x0020 DHKEM(X25519, HKDF-SHA256), KDF 0x0001 HKDF-SHA256, AEAD 0xFFFF export-only;
// cipher "xchacha20poly1305-chunked"; compression "zstd"), the chunk size, the content list
// (subsystem, schema version, minimum reader version, what part of it), a content id, the
// HPKE encapsulated key, a key check and a 15-byte nonce prefix. Unknown fields are refused.
// The first 18 bytes are fixed for all versions, so that every future reader recognises a
// backup and its version.
//
// Keys: an HPKE base-mode context is set up with info "anya backup v1" || wallet id; its
// exporter gives the 16-byte key check ("anya backup v1 key check") and the 32-byte payload
// key ("anya backup v1 payload key"). The payload is zstd(u32 length || manifest JSON ||
// storage export stream), cut into chunks of ChunkSize bytes of plaintext: a u32 count, that
// many payload bytes, zero padding. Every chunk but the last carries ChunkSize−4 payload
// bytes. Chunk i is sealed with XChaCha20-Poly1305 under the payload key, with the nonce
// prefix || u64 i || final flag (1 for the last chunk, 0 otherwise) and the header checksum
// as associated data, so every chunk authenticates the whole header. The content id is
// HMAC-SHA256, keyed with SHA-256("anya backup v1 content id" || the recipient's public
// key), of the storage export's SHA-256 and the manifest's: equal for equal content (the
// scheduler skips a backup that would change nothing), and useless for confirming a guess of
// the content to anyone without the public key, which no backup holds.
//
// # Why these choices
//
// HPKE from the standard library (crypto/hpke, RFC 9180), because it is the reviewed,
// standard way to encrypt to a public key, and an asymmetric key is what lets a locked box
// make backups. DHKEM(X25519) because RFC 9180 fixes it: a backup must open years from now,
// so its algorithms must not move; the post-quantum hybrid KEMs Go offers (X-Wing) follow a
// draft that may still change, and the KEM identifier in the header leaves room for one
// later. XChaCha20-Poly1305 (golang.org/x/crypto, already a dependency; hsm/seal uses it)
// because it is fast without AES instructions (small ARM boards) and its 192-bit nonce makes
// the per-file random prefix safe even if a key were ever reused. Chunks, rather than one
// AEAD call over the file, so that neither writing nor reading needs the whole file sealed
// in memory at once and damage is located; the counter and final flag in the nonce are the
// STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár 2015): reordered, dropped,
// repeated or appended chunks and a cut after any chunk all fail. All chunks having the same
// size is what tells a file cut short (its length is not header + k chunks, or its last
// whole chunk opens only as a non-final one) from a damaged one (a chunk fails
// authentication). zstd (klauspost/compress, already a dependency) because wallet data
// (JSON, hex transactions) compresses several-fold and zstd is faster than gzip at a better
// ratio; with one encoder goroutine its output is deterministic. A JSON header so that a
// person or a tool can read what a backup is without this code.
//
// # Errors
//
// Verify and Restore read the header, then compare wallets, then the key check, then the
// chunks, then the content, and return the first error, wrapped with details:
//
//   - ErrNotBackup: the file does not start with the magic (damage to the first 8 bytes
//     reads as this too).
//   - ErrTruncated: the file ends within the header, after the header with no chunk, within
//     a chunk, or after a whole chunk that is not the last one.
//   - ErrCorrupted: the prefix CRC, the header checksum or a chunk's authentication fails,
//     data follows the last chunk, or authenticated content breaks the format's rules.
//   - ErrNewerFormat: a format version above FormatVersion, or algorithm identifiers or a
//     key version this firmware does not know.
//   - ErrOtherWallet (*WalletMismatchError says which wallets): the backup's wallet id is not
//     the key's, so another mnemonic or another BIP39 passphrase, or it was made on another
//     network than the box runs. This is decided from the clear header, before decrypting.
//   - ErrNewerSchema: the backup holds a subsystem this firmware does not know, or data that
//     needs a newer schema than this firmware's (storage.ErrSchemaTooNew is wrapped too).
//   - ErrWrongKey: the wallet id matches but the key check does not. Both come from the seed,
//     so an honest key for the right wallet always passes; the key check fails only when the
//     header's encapsulated key was replaced by hand (the checksum catches accidental
//     damage). It is kept apart from ErrCorrupted so that such a file is not reported as
//     merely damaged, and it makes the format key-committing: chunks are only ever opened
//     with the key the writer used.
//
// A wrong mnemonic therefore shows as ErrOtherWallet, never as damage. Every error leaves
// the database untouched: Restore reads and checks the whole backup before it writes, and
// writes in one bbolt transaction (storage.ImportSubsystems).
//
// # Restore
//
// Restore replaces each subsystem the backup holds (or, for those backed up in part, the
// part it holds) and keeps the rest: a box restored after its setup keeps its own sealed
// seed, admin password and sessions. The updater's trust state is carried but not written
// (Policy.Skip): taking the newer of the two trust states is the updater's decision. The
// backup's audit trail replaces the target's; with ReadOptions.Audit the restore itself is
// recorded in it, in the same transaction. A box restored before its setup is set up with
// the same mnemonic afterwards, which gives the same descriptors, so the wallet's restored
// address indexes and history apply.
//
// # Figures
//
// BenchmarkBackup, on the 2-core build machine shared with other builds (4 runs of 5
// iterations), for a wallet with 10,000 transactions in its history (an 18.8 MB database
// file): a backup takes 93–108 ms and 1.69 MB (the content is 10.6 MB before compression);
// storage.Backup's plain copy of the same file, in the same runs, 18–34 ms and 18.8 MB
// (ratios 2.8–5.9 in time, 0.09 in size). Verify takes 52–65 ms, Restore 174–207 ms.
package backup
