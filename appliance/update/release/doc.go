// Package release is the box's half of over-the-air updates: the format of a signed release
// bundle and its verification against the box's trusted root. The update agent calls
// [Verifier.Update] to verify a release's metadata from a [Fetcher] (the fleet server or a CDN
// over HTTP, a directory, or a single tar file from an upload or a USB stick), then
// [Release.Open] to stream each payload into the inactive slot while it is hashed. It runs in
// anyad (CGO_ENABLED=0) and has no host-only dependencies; signing lives in image/publish.
//
// # Bundle
//
// A bundle is a TUF repository (https://theupdateframework.github.io/specification/latest/)
// with consistent snapshots, as plain static files (see [MetadataDir] for the layout):
// root chain, timestamp, snapshot and targets metadata, and per architecture four payloads
// ([Kinds]: release.json, kernel, initramfs, system squashfs), each a TUF target with the
// [Custom] metadata: architecture, kind, version string, monotonic release counter and the
// lowest installed counter it may update from. Everything but timestamp.json is versioned or
// content-addressed, so any HTTP server or CDN can serve several releases from one directory,
// and a tar of the same files (metadata first) is the single-file bundle.
//
// # Why go-tuf v2, and which part of it
//
// github.com/theupdateframework/go-tuf/v2 is the TUF project's own Go implementation (the one
// sigstore uses). Its metadata package parses and writes the four roles, computes canonical
// JSON and verifies threshold signatures counting each distinct key once; its trustedmetadata
// package is the specification's client state machine: a new root must verify with the
// trusted root and with itself and have the next version; timestamp, snapshot and targets
// must be signed by their role's keys, must match the hashes, lengths and versions the role
// above names, and must not be expired at a reference time that the caller can set. That is
// the hard, security-critical part, and reimplementing it would be the riskier choice.
//
// go-tuf's updater package (the ready-made client) is not used, because on this box it cannot:
//   - persist trust in the database: it keeps metadata files in a local directory;
//   - read a tar stream or a directory: it fetches over its own HTTP client with retries;
//   - stream payloads: DownloadTarget reads a whole target into memory and
//     TargetFiles.VerifyLengthHashes takes a []byte; a system image must go straight into
//     the slot, so payloads are hashed here while they stream ([PayloadReader]);
//   - judge expiry at a last-known-good time: it uses the clock;
//   - recover from a fast-forward attack (TUF 5.3.11): it keeps versions across key rotations;
//   - refuse a signed but older release: TUF knows metadata versions, not release counters.
//
// So Update drives trustedmetadata itself (about 150 lines: the root walk, the order of
// roles, the persisted high-water marks, the release checks) and the rest is by hand, kept
// small. The price is binary size: go-tuf's metadata package imports sigstore's signature
// package, which pulls in protobuf and go-containerregistry's name parser; linking this
// package into anyad (static, -s -w) adds 2.5 MB on amd64 and 2.4 MB on arm64 (measured
// 2026-11-26), and about 1 ms and 0.25 MB of allocations to its start (package inits).
//
// # How each threat TUF names is met
//
//   - Arbitrary software: every payload's length and SHA-256 are in the targets metadata,
//     signed by a threshold of the targets keys; [PayloadReader] returns io.EOF only when both
//     match, so io.Copy from it succeeds only for the signed bytes ([ReasonPayloadMismatch]).
//   - Rollback: the box keeps the highest timestamp, snapshot and targets versions it has
//     verified and the highest release counter it has accepted ([State]); lower ones, a lower
//     counter than the installed release, and an old root served as a newer one are refused
//     ([ReasonRollback]).
//   - Indefinite freeze: timestamp metadata expires (30 days by default); serving an old one
//     is refused ([ReasonFreeze]); root, snapshot and targets expire too ([ReasonExpired]).
//   - Clocks: a box may boot with a wrong clock. Expiry is judged at the latest of the clock,
//     the last-known-good time and the installed release's build time. The last-known-good
//     time is the signing time of the newest verified timestamp (the signed field
//     [IssuedField]); it never moves back and never follows the clock, so a clock set far
//     ahead cannot lock the box out of updates, and a clock reset to 1970 cannot revive
//     metadata the box has outlived.
//   - Fast-forward: when a new root rotates the timestamp, snapshot or targets keys, the
//     stored versions of those roles are reset, so a vendor can recover from a compromised key
//     that signed a huge version.
//   - Mix-and-match: the timestamp names the snapshot by version, length and hash; the
//     snapshot names the targets metadata the same way; files of different releases do not
//     verify together ([ReasonMixAndMatch]).
//   - Endless data: every metadata read is capped before it is parsed (root 512 KiB,
//     timestamp 64 KiB, snapshot and targets at their signed length), a payload read stops at
//     the first byte past its signed length, and the tar reader caps its in-memory metadata.
//   - Malicious mirrors and transports: nothing is trusted for where it came from; HTTP,
//     directory and tar sources are verified alike (TLS is welcome but not relied upon).
//   - Key compromise: roles are separate, thresholds are per role (keygen can make root
//     2-of-3), keys are created offline, and the root can rotate any role's keys; a box
//     follows the root chain in the next bundle it sees.
//   - Wrong software for the box: payloads are per architecture ([ReasonArch]); a release
//     may require a minimum installed release ([ReasonMinVersion]); the signed release.json
//     must describe the same release as the signed metadata.
//   - Slow retrieval is the caller's: Update and Open take a context; the agent bounds them.
//
// # Use
//
//	v, _ := release.NewVerifier(release.Config{Store: store})      // store persists State
//	rel, err := v.Update(ctx, src, release.Installed{Version, Counter, Built})
//	if err != nil { show release.ReasonOf(err).Text(); return }     // nothing written yet
//	for _, p := range rel.Payloads {                                // bundle order
//	        r, _ := rel.Open(ctx, p.Kind)
//	        _, err := io.Copy(slotWriter(p.Kind), r)                // hashes as it goes
//	        r.Close()
//	        if err != nil { leave the slot unbootable; show the reason; return }
//	}
//	// every payload verified: now make the slot bootable (boot counting), reboot
//
// Update persists what verified (a rotated root, higher versions, a later last-known-good
// time, and the release counter once the release passed every check) even if it then refuses
// the release. Only top-level targets are used (delegations are ignored), SHA-256 is required,
// and the verifier accepts every key type go-tuf verifies (our keygen makes ed25519 keys).
package release
