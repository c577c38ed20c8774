// Package publish is the host side of signed releases: offline signing keys, the root chain,
// and signed release bundles in the format the box verifies (package
// appliance/update/release, which this package imports for the layout; the box never imports
// this one).
//
// A signing directory ([Keygen], [Open]) holds ed25519 keys for TUF's four roles (root with a
// configurable threshold, e.g. 2-of-3), the root chain, and the versions it last signed.
// [Repo.Sign] writes a bundle directory: payloads named by their SHA-256, targets metadata
// with each payload's custom metadata, snapshot and timestamp metadata one version higher than
// the last, the whole root chain, and timestamp.json last and atomically, so a directory being
// served switches releases in one step. [Bundle.WriteTar] writes the same files as one
// deterministic tar (metadata first, payloads in bundle order), which the box reads in one
// forward pass. [Repo.Refresh] renews the timestamp (the freshness window); [Repo.Rotate]
// replaces keys of any roles in a new root signed by a threshold of the old root keys and the
// new ones.
//
// go-tuf v2 (github.com/theupdateframework/go-tuf/v2) builds and signs the metadata here for
// the same reason the box uses it to verify: one implementation of TUF's formats and canonical
// JSON on both sides, so what is signed is exactly what is checked. Before it writes anything,
// Sign checks what the box would refuse: every payload kind present, the release.json
// describing the same version, counter and architecture as the signed metadata, the signing
// clock not before the last signing time (the box's last-known-good time follows it), and a
// threshold of keys present for every role it signs.
package publish
