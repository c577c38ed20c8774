// Package tpm is the TPM 2.0 [seal.Sealer]: it binds the wallet seed to this box's TPM, to the
// measured boot state (firmware, boot loader, kernel, initrd, command line) and, optionally, to
// the owner's PIN, and it keeps the seed available across legitimate over-the-air updates.
//
// # Why go-tpm's tpm2 package
//
// github.com/google/go-tpm/tpm2 (the "TPM direct" API, not the deprecated legacy/tpm2) is pure
// Go, so anyad stays a static CGO_ENABLED=0 binary for amd64 and arm64; it speaks the commands
// this package needs (policy sessions, salted sessions with parameter encryption, PolicyAuthorize,
// LoadExternal/VerifySignature) and has a policy calculator, so policy digests are computed
// in software without trial sessions. tpm2-tss needs cgo and a C stack; go-tpm-tools brings the
// legacy API and far more than we use. Transports: [Open] uses the kernel resource manager
// /dev/tpmrm0 (linuxtpm); [New] takes any transport.TPMCloser (tests: swtpm over TCP).
//
// # What a blob is
//
// Seal encrypts the secret with XChaCha20-Poly1305 under a fresh 32-byte data key, whose
// associated data is the whole blob header, and seals the data key in the TPM as a KEYEDHASH
// sealed data object under the storage root key (SRK). The SRK is re-created on every call
// from the owner hierarchy's standard ECC P-256 template (the TCG provisioning-guidance SRK):
// the same seed gives the same key, so nothing is persisted and nothing is written to NV —
// no provisioning step, no NV wear, and no handle for other software to clash with. (It needs
// the owner hierarchy's auth to be empty, the factory default.) Hybrid encryption lets the AEAD
// authenticate every byte of the blob, so any damage is reported as [seal.ErrCorrupt], and it
// keeps the TPM object the same whatever the secret's size. See format.go for the layout.
//
// The sealed object can only be used through its policy (no UserWithAuth):
//
//	PolicyAuthorize(policy-signing key, "anya/boot-state/v1")  then  PolicyAuthValue
//
// PolicyAuthorize accepts any policy that the policy-signing key has signed; the signed
// ("approved") policies are PolicyPCR(selection, digest of the expected PCR values). The
// approvals live in the blob, outside the AEAD, each an ECDSA signature, and Unseal uses the one
// that matches the current PCRs. PolicyAuthValue makes the owner's PIN part of the fixed policy,
// not of the approvals, so approving a new boot state never needs the PIN.
//
// The policy-signing key is a P-256 key generated for each blob at Seal. Its public half is in
// the blob (and its name is committed to in the objects' policies); its private half is sealed
// in a second sealed data object under the SRK with the policy PolicyAuthorize(itself) — without
// PolicyAuthValue, so an unattended update can use it. A key held by the TPM as a signing
// object cannot do this (its name would have to contain a policy that contains its own name);
// a key sealed as data can. Deriving it from the seed instead would force every update to
// unseal the seed (and to ask for the PIN). The result: the key can sign approvals only while
// the box runs an already approved boot state.
//
// # Surviving an OTA update (the design chosen)
//
// An update that replaces the kernel/UKI changes PCR 4, 9 and 11. Before rebooting into the new
// slot, the update agent (on the running, approved system) computes the PCR values the new
// slot will produce — replaying the TCG event log with the new images' digests substituted,
// [ExtendPCR] — and calls [Sealer.Authorize](blob, next), which unseals the signing key under
// the current approval, signs PolicyPCR(next), and returns the blob with two approvals: the
// current state and the next one. It writes that blob atomically, then reboots. If the new slot
// fails and the boot loader falls back, the old approval still works; at the following update
// the oldest approval is dropped. A wrong prediction only costs an unseal failure
// ([seal.ErrBootState]) and the recovery path, never the seed.
//
// The alternative — PolicyPCR over PCR 7 (Secure Boot state) plus PolicyAuthValue — needs no
// update step, but PCR 7 only says "Secure Boot on, these keys": every kernel ever signed with
// those keys (older vulnerable ones included), any command line the boot chain does not
// measure, and any initrd the kernel does not verify would unseal, and a box whose owner has
// not enrolled keys would have no boot binding at all. PolicyAuthorize binds the exact images.
// [DefaultPCRs] is 0, 2, 4, 7, 9, 11, 12; [WithPCRs] changes it for new blobs.
//
// # Auth
//
// The seed object's authValue is SHA-256 over the Auth's passphrase and PIN (domain-separated,
// length-prefixed); both empty gives an empty authValue, which is allowed: the box then unseals
// unattended on an approved boot, the expected mode for a plug-in box. An empty-auth object is
// marked NoDA (nothing to guess; a lockout caused by someone else must not stop the box from
// booting); a PIN-protected one is subject to the TPM's dictionary-attack counter (swtpm locks
// after 3 failures; real TPMs per their DA parameters) → [seal.ErrLocked]. Sessions are salted
// with the SRK and encrypt the sensitive parameter (Create's input, Unseal's output), so neither
// the data key nor an offline PIN-guessing oracle crosses the bus.
//
// Errors: [seal.ErrBootState] when no approval matches the PCRs (or they change during the
// policy); [seal.ErrWrongAuth] on TPM_RC_BAD_AUTH/TPM_RC_AUTH_FAIL; [seal.ErrLocked] on
// TPM_RC_LOCKOUT; [seal.ErrDeviceMissing] when the device node is absent; [seal.ErrCorrupt]
// when the blob fails its checks, the TPM refuses to load it (damaged, or another TPM — a
// cleared TPM or a new mainboard counts as another TPM), or the policy does not match it.
// Messages name operations, PCR indices and TPM codes, never secrets. Buffers this package owns
// (data key, signing key, authValue) are zeroed after use; copies inside go-tpm's command and
// response buffers and inside crypto/ecdsa cannot be reached from here.
//
// # Threat model
//
//   - Attacker with the disk (stolen disk, image, backup): the blob is useless without this
//     TPM. The private areas are encrypted under the SRK, which never leaves the TPM; the
//     authValue is inside them, so the PIN cannot be guessed offline. Approvals are public.
//   - Attacker with the box, powered off: booting the unmodified, approved firmware and slot
//     unseals exactly as for the owner (without a PIN: then the box's own authentication is the
//     barrier; with a PIN: only DA-limited guesses). Booting anything else — a live USB, a
//     modified kernel, initrd or command line, other Secure Boot keys, other firmware — changes
//     the PCRs, no approval matches and the TPM refuses; the signing key is sealed under the
//     same policy, so no new approval can be made. Residual risk: approvals cannot be revoked
//     without an NV counter, so an attacker who kept an old blob and an old signed slot image
//     can boot that older (possibly vulnerable) slot and unseal; anti-rollback in the boot
//     chain (or a future PolicyNV counter) closes this.
//   - Root on a different boot: same PCR mismatch; PCRs can only be extended, and the selected
//     PCRs are not resettable without a reboot, so neither the seed nor the signing key unseals.
//   - Root on the approved running system (an exploit in anyad or the kernel): can unseal a
//     PIN-less seed and can approve arbitrary boot states; with a PIN, it still needs the PIN
//     (DA-limited). Boot binding protects the seed at rest, not from the running firmware.
//   - Bus sniffing: salted, parameter-encrypted sessions keep the data key off the bus. Active
//     attacks on a discrete TPM's bus (faking measurements, resetting the TPM) are out of scope.
package tpm
