// Package piv is the YubiKey PIV seal provider (Kind "piv"): it seals the wallet seed to a
// P-256 key that never leaves the YubiKey, and opens it only with the YubiKey attached and its
// PIN entered.
//
// # Scheme
//
//   - Setup (done by the first Seal, or explicitly): adopt the attested P-256 key in slot 9d
//     (Key Management), or generate one there when the slot is empty, with PIN policy
//     "always" (or "once") and the configured touch policy. Its attestation (slot
//     certificate signed by the YubiKey's f9 key, whose certificate chains to Yubico's PIV
//     root embedded in piv-go; tests inject their own root) is verified, and the PIN is
//     checked so nobody seals to a key whose PIN they do not know. A slot holding a key
//     without PIN protection, an imported key or a non-P-256 key is refused unless
//     Config.Overwrite is set; an existing suitable key is never overwritten.
//   - Seal needs no card: an ephemeral P-256 key, ECDH with the slot's public key,
//     HKDF-SHA256 (salt = both public keys) to a XChaCha20-Poly1305 key; the header
//     (serial, firmware, slot, PIN/touch policy, form factor, both public keys, nonce and the
//     two attestation certificates) is the AAD, so the blob records which YubiKey and which
//     policies protect it and anyone can re-verify that offline ([IdentityOf]). A SHA-256
//     checksum over the blob catches accidental damage without the card or a PIN try.
//   - Unseal: find the YubiKey with the recorded serial, check (firmware >= 5.3, via GET
//     METADATA) that the slot still holds the recorded key, VERIFY the PIN and let the card
//     compute the ECDH with the ephemeral key, derive, decrypt.
//
// Errors: wrong PIN is seal.ErrWrongAuth with the tries left in the message; a blocked PIN
// (including the wrong try that blocks it) is seal.ErrLocked; no pcscd, reader or card is
// seal.ErrDeviceMissing; another YubiKey than the sealing one is seal.ErrDeviceMissing and
// [ErrWrongDevice] with both serials in the message; a damaged blob is seal.ErrCorrupt; a slot
// whose key was regenerated is [ErrKeyReplaced].
//
// # Why piv-go, patched
//
// github.com/go-piv/piv-go does what matters here well and is maintained: the PIV and Yubico
// APDUs, PIN and retry handling (AuthErr with the retries left), attestation parsing and
// verification with Yubico's roots embedded. Its only obstacle is the transport: on Linux
// every version calls libpcsclite through cgo, and the firmware is linked statically
// (CGO_ENABLED=0) while Debian ships no static libpcsclite. So the module is used as a patched
// copy of v2.6.0 in ./pivgo (Apache-2.0, LICENSE kept, changes listed in pivgo/NOTICE), wired
// in with `replace github.com/go-piv/piv-go/v2 => ./hsm/piv/pivgo` in go.mod. Only
// pcsc_linux.go is rewritten, over pivgo/pcsclite: a pure-Go client of pcscd's unix socket
// protocol (EstablishContext, ListReaders, Connect, BeginTransaction, EndTransaction,
// Transmit, Disconnect, ReleaseContext; see its doc for the wire format). The APDU and crypto
// code is upstream's, untouched, so upstream fixes can be merged by re-copying.
//
// Rejected alternatives: gballet/go-libpcsclite (pure Go, but no transactions, which piv-go
// needs, and it prints to stdout in Connect); a pure-Go CCID-over-usbfs driver (no pcscd
// needed on the box, but it takes the YubiKey away from any other PC/SC user and could not be
// tested through pcscd with an emulated card here); building with cgo (breaks the static
// image).
//
// The box must therefore run pcscd (Debian's pcscd with libccid) for the YubiKey to be found;
// without it Unseal reports seal.ErrDeviceMissing.
//
// # Tests
//
// The tests run the whole stack: piv-go -> pivgo/pcsclite -> a pcscd they start with a private
// vsmartcard-vpcd reader configuration -> vpcd -> the emulated YubiKey of package pivcard
// (see pivtest). They skip without pcscd and vpcd (apt-get install pcscd
// vsmartcard-vpcd) unless ANYA_REQUIRE_ALL=1.
package piv
