// Package keys turns a BIP39 mnemonic into the account keys, addresses and output descriptors a
// watch-only wallet (Sparrow, Bitcoin Core) imports. It is the signer's key arithmetic: it does
// no I/O and keeps no state; sealing the seed is package hsm/seal's job.
//
// # From words to descriptors
//
//	m, _ := keys.NewMnemonic(24)                  // or keys.ParseMnemonic(typed)
//	seed, _ := m.Seed(passphrase)                 // 64 bytes, BIP39 PBKDF2
//	master, _ := keys.NewMasterKey(seed, keys.Mainnet)
//	acct, _ := keys.NewAccount(master, keys.PurposeBIP84, keys.Mainnet, 0)
//	desc, _ := acct.MultipathDescriptor()        // wpkh([73c5da0a/84h/0h/0h]xpub…/<0;1>/*)#…
//	addr, _ := acct.Address(keys.Receive, 0)      // bc1q…, with its scriptPubKey
//	m.Zero(); clear(seed); master.Zero()
//
// Purposes: BIP44 pkh(), BIP49 sh(wpkh()), BIP84 wpkh(), BIP86 tr() (key path only: the BIP341
// tweak with no script tree) and BIP48 cosigner keys at m/48'/coin'/account'/2', combined by
// NewMultisig into wsh(sortedmulti(k, …)). ParseDescriptor reads back exactly the descriptors
// this package writes (with or without checksum, ' or h, <a;b> multipath) and derives their
// addresses, so an imported descriptor can be checked against the box's own.
//
// # Secrets
//
// Mnemonic and XPrv hold secrets. Their String and GoString are redacted, and the owner calls
// Zero when done. Functions that return secret material return a []byte the caller must clear
// (Mnemonic.Seed, Mnemonic.Phrase, Mnemonic.Entropy, XPrv.Serialize) or a value with Zero
// (Mnemonic, XPrv, and *btcec.PrivateKey from XPrv.ECPrivKey). Inputs are never retained: the
// caller clears its own seed and passphrase. Error messages never contain key material or words:
// a mistyped word is reported by position (WordError keeps the word in a field for the UI), and
// descriptor and extended-key errors give an offset and a reason, never the text. Go cannot
// promise that no copy survives (hdkeychain's intermediate HMAC output, hmac's internal pads,
// strings the caller passed in), so zeroing is best effort, done wherever this package owns the
// memory; BIP39 hashing uses a local PBKDF2 over []byte for that reason, since crypto/pbkdf2
// takes the password as an uncleareable string.
//
// # Why these libraries
//
// BIP32 derivation is github.com/btcsuite/btcd/btcutil/hdkeychain: btcd is already the
// project's Bitcoin library (txscript, chaincfg and the lnd stack use it), its Derive is the
// BIP32-conformant one (it passes test vectors 1–4, including the leading-zero key of vector 4
// that its deprecated DeriveNonStandard gets wrong), and it exposes Zero. Parsing of
// serialized keys is done here rather than by hdkeychain.NewKeyFromString, which accepts several
// keys BIP32 test vector 5 requires to be rejected (unknown version, xpub version with private
// data and the reverse, depth 0 with a parent fingerprint or child index). Addresses and the
// taproot tweak come from btcd's btcutil and txscript (ComputeTaprootKeyNoScript), keys from
// btcec/v2; the versions are pinned (see go.mod) and must not be raised independently.
//
// BIP39 uses github.com/tyler-smith/go-bip39 for the English wordlist (which its own init checks
// against the BIP's file) and, in tests, as a second implementation to compare with. The word
// and checksum encoding itself is a few lines here because go-bip39 works on strings (which
// cannot be cleared), reports an unknown word by quoting it in the error text, and keeps its
// wordlist in a package variable any importer can replace. Test data: the Trezor BIP39 vectors
// (passphrase "TREZOR") and the vectors of BIP32, BIP49, BIP84, BIP86, BIP380, BIP386, BIP389,
// SLIP-132 and Bitcoin Core's descriptor tests; see testdata/README.md.
//
// # Conventions
//
// Paths print as "m/84h/0h/0h" and descriptors use "h" for hardened steps, as Bitcoin Core writes
// them; ParsePath and ParseDescriptor also read ' and H. Descriptors always carry plain
// xpub/tpub keys: SLIP-132 forms (ypub, zpub, Zpub, upub, vpub, Vpub) exist only as an extra
// serialization for wallets that import a bare key (XPub.SLIP132, Account.SLIP132), and
// ParseXPub accepts them as input. Fingerprints are lower-case hex.
//
// A Network is mainnet, testnet (3), testnet4, signet or regtest; its zero value is invalid so
// nothing defaults to mainnet by accident. Mainnet uses coin type 0 and xpub keys, every test
// network coin type 1 and tpub keys, and the network picks the address prefix (bc1, tb1,
// bcrt1). Because a tpub does not say which test network it is for, addresses are always derived
// for an explicit Network and a key of the other kind (xpub on a test network, tpub on mainnet)
// is refused with ErrWrongNetwork.
//
// BIP39 passphrases must be ASCII: BIP39 hashes the NFKD form of the passphrase, and without
// Unicode tables (golang.org/x/text) the only text this package can normalize correctly is
// ASCII, so anything else is refused (ErrPassphraseNotASCII) rather than turned into a seed no
// other wallet would reproduce.
package keys
