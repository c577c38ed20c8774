// Package fleet is the box's side of the fleet server (tools/fleet): enrollment with a
// per-device key and an enrollment token, and authenticated check-ins that report the box's
// state and return the release the server wants it to install, if any. It is also the wire
// protocol: the server imports this package for the message types and the signing scheme, so
// both ends share one definition. It runs in anyad (CGO_ENABLED=0) and imports only the
// standard library.
//
// # Keys
//
// A device is its key: an ECDSA P-256 key ([Key], a crypto.Signer that also says where the
// private key is held). [SoftwareKey] keeps the private key in a file (PKCS #8 PEM, mode 0600,
// created atomically); on a box with a TPM, hsm/tpm's SigningKey keeps it in the TPM and
// [TPMKey] marks it as such. The device id is derived from the public key ([DeviceID]), so a
// box can always say who it is, and the server refuses to enroll one key twice.
//
// The "tpm" attestation is a claim the server records, not a proof: proving that a key lives
// in a genuine TPM needs the TPM's endorsement key certificate and credential activation,
// which this protocol does not do yet.
//
// # Request signing
//
// Every request to the server (enrollment included, as proof of possession of the key) carries
//
//	Authorization: Anya-P256 id=<device id>, ts=<unix ms>, nonce=<base64url 16 bytes>, sig=<base64url DER>
//
// where sig is the device key's ECDSA signature over the SHA-256 of ([Digest])
//
//	"anya-fleet-v1", METHOD, PATH, ID, TS, NONCE, hex(SHA-256(body))
//
// each field preceded by its length (4 bytes, big-endian), so no field can run into the next.
// PATH is the request's escaped URL path as sent. The server accepts a request only if the
// timestamp is within a window of its own clock (5 minutes by default, [DefaultWindow]) and
// it has not seen the (id, nonce) pair before; it remembers recent nonces per device, and
// refuses any timestamp at or below the oldest one it has forgotten (see tools/fleet). So a
// captured request can be neither replayed nor altered (method, path, body, time), and a
// stolen request cannot be used for another device.
//
// A box may boot with a wrong clock. When the server refuses a timestamp as stale it returns
// its own time; the [Client] then keeps the offset and retries once. A forged server time can
// only make the box's requests fail, which a network attacker can do anyway.
//
// Why not TLS client certificates or HTTP message signatures (RFC 9421)? Client certificates
// need a CA and certificate renewal on every box and break behind TLS-terminating proxies and
// CDNs; RFC 9421's generality (component selection, several algorithms, structured fields)
// is more parsing than this one fixed scheme needs. The body hash and a fixed field order
// keep the server's parser small (it is fuzzed).
//
// # Check-ins
//
// [Client.CheckIn] posts a [Report] (running version and release counter, slot, health, the
// last error, architecture, channel, and the release it last tried to install with that
// attempt's state) and returns an [Offer]: a release (version, counter, and the base URL of its
// bundle for release.NewHTTP) or none. The box still verifies everything it downloads
// against its own trusted root; the server only says what to fetch, never what to trust.
// Polling is the update agent's: [NextPoll] spreads check-ins with jitter so a fleet does not
// call in at the same moment after a power cut.
package fleet
