// Package pivcard is an emulated YubiKey PIV applet for tests: a [Card] answers command APDUs
// with real cryptography (crypto/ecdh, crypto/ecdsa, x509), and [Card.Plug] inserts it into a
// vsmartcard "vpcd" virtual reader of a running pcscd, so that code under test reaches it
// through the real PC/SC stack: piv-go -> pure-Go pcscd client -> pcscd -> vpcd -> this card.
//
// No YubiKey exists on the build machines and QEMU only emulates a CAC card, hence this
// emulator. It implements the subset of the PIV (NIST SP 800-73-4) and Yubico extension
// commands that github.com/go-piv/piv-go uses for P-256 keys:
//
//   - SELECT (PIV AID), GET DATA / PUT DATA (data objects, e.g. certificates and the f9
//     attestation certificate 5fff01), GET RESPONSE (responses are sent in 256-byte pieces
//     with SW 61xx, as on the device) and command chaining (CLA 0x10);
//   - VERIFY PIN (retry counter, 3 by default, 63Cx on failure, 6983 when blocked),
//     CHANGE REFERENCE (PIN/PUK), RESET RETRY COUNTER (unblock with PUK);
//   - GENERAL AUTHENTICATE: management key challenge-response (3DES or AES), ECDH key
//     agreement (tag 85) and ECDSA signing (tag 81), honouring the slot's PIN policy
//     (never / once / always: "always" is consumed by the next private-key operation) and
//     touch policy (a hook decides whether the user "touched");
//   - GENERATE ASYMMETRIC KEY PAIR (P-256 only) with PIN and touch policy;
//   - Yubico extensions: GET VERSION (fd), GET SERIAL (f8), GET METADATA (f7), ATTEST (f9),
//     SET MANAGEMENT KEY (ff), SET PIN RETRIES (fa), RESET (fb).
//
// ATTEST issues a certificate for the slot's key signed by the card's f9 attestation key,
// with Yubico's extensions (firmware version 1.3.6.1.4.1.41482.3.3, serial .3.7, PIN/touch
// policy .3.8, form factor .3.9). The f9 certificate itself is issued by a test [CA] the test
// creates, so verifiers can be pointed at the test root instead of Yubico's.
//
// The vpcd protocol (vsmartcard's vpcd.c): the virtual reader driver listens on TCP (port
// 35963 for the first reader by default, the next port for the second) and the card connects
// to it. Every message either way is a 2-byte big-endian length followed by that many bytes.
// A 1-byte message from the reader is a control code: 0 power off, 1 power on, 2 reset, 4
// "send your ATR" (the only one answered); any longer message is a command APDU, answered
// with the response APDU. Closing the connection removes the card.
package pivcard
