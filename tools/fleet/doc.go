// Package fleet is the fleet server of Anya Edge (`anyactl fleet serve`): it enrolls boxes,
// takes their authenticated check-ins, keeps an inventory, and decides which release each box
// should install — releases in channels (stable, beta, ...) under staged rollouts that widen
// in steps and pause by themselves when too many boxes fail. It is host-side: nothing here is
// imported by the box, whose half (and the wire protocol) is appliance/update/fleet.
//
// # What the server does not do
//
// It serves no release bytes it has not been given and vouches for nothing: a release is a
// bundle directory of plain static files (appliance/update/release's layout), served from a
// local directory under /releases/ or by any CDN or static file server, and every box
// verifies every byte against its own trusted root. The server verifies a bundle against the
// fleet's root when an admin adds it (AddRelease), only so that a wrong or stale bundle is
// caught before boxes are told about it. Each release lives in its own directory
// ("stable-12/"), because a bundle directory's timestamp.json names one release at a time and
// a box outside a new release's rollout must still find the previous one.
//
// # Enrollment and check-ins
//
// An admin creates an enrollment token (one use or N, with an expiry; only its SHA-256 is
// stored). A box enrolls by posting the token, its P-256 public key, where the key is held
// ("tpm" or "software") and a hardware description, signed with that key (proof of
// possession); its device id is derived from the key. A known token with a key enrolled
// already gets duplicate_key before the token's uses and expiry are looked at, so a box whose
// first answer was lost learns that it is enrolled.
//
// Check-ins are signed requests (see appliance/update/fleet for the scheme). The server
// refuses a timestamp more than Window (5 min) from its clock, answering with its own time so
// a box with a wrong clock can correct itself, and refuses a nonce the device used before: it
// keeps the last 16 (timestamp, nonce) pairs per device in the device's record, forgets
// those older than the window, and raises a per-device floor to the newest timestamp it
// forgot; a request at or below the floor is refused. That is replay protection that
// survives restarts and needs no global cache, in the same transaction as the check-in.
//
// # Rollouts
//
// A device is in a release's rollout at p percent if its bucket — SHA-256 of the release id
// and the device id, scaled to [0, 1) — is below p/100 (see Bucket): deterministic, different
// per release, and monotone (widening only adds devices; a rollout cannot be narrowed, only
// paused). A device is offered the newest release of its channel that is newer than what it
// runs and every release it tried, built for its architecture and installable from its
// release, active, and including it. A device that failed with a release gets nothing more
// in that channel until a newer one comes (older releases would be refused as rollbacks by
// the box, which has accepted the failed release's metadata).
//
// A report speaks of a release when its target (the latest attempt) is that release: the
// device attempted it; it failed when the attempt failed, was refused or rolled back (the
// last error is kept with the outcome); it succeeded once committed, running and healthy.
// Outcomes are per device and release, so counts are of devices, not of reports. A rollout
// pauses itself when, since it last (re)started, more than FailureThreshold of the devices
// that attempted it failed, with at least MinAttempts attempts. Resume starts a new failure
// window. With a schedule (Policy.Steps, 5 → 25 → 100 % by default) an active rollout
// widens to the next step once MinSuccesses devices succeeded during the step and Soak has
// passed (checked on every success and by Run every minute); the admin can widen at any time.
//
// # State
//
// The Store interface is two transactional methods and a Tx of typed getters and putters;
// the server's logic runs inside its transactions, so a SQL store can replace BoltStore
// without touching it. BoltStore keeps everything in one bbolt file through package storage
// (subsystem "fleet", JSON values, migrations) and group-commits updates: an idle server
// commits each at once, a busy one lets the check-ins that queued during one fsync share the
// next.
//
// # Capacity
//
// `anyactl fleet loadtest` measures check-ins per second on loopback against a no-op net/http
// anchor in the same run (see LoadTest). On the 2-core build machine, shared with other
// builds, the server answered 0.15–0.28 times as many requests per second as the anchor
// (about 800–3,800 check-ins/s, depending on the other load). A check-in's cost is the ECDSA
// P-256 verification (0.1–0.2 ms of CPU), then the serialized part: the transaction's JSON
// (device record, releases) and bbolt's two fsyncs per group. A thousand check-ins per second
// serve 3.6 million boxes polling hourly.
//
// # Admin
//
// The JSON API under /api/v1/ (bearer token) offers everything: summary, devices, tokens,
// releases with their outcomes, pause, resume, widen. The page under /admin/ shows the
// inventory, releases and rollouts and has the same actions; it signs in with the same token
// into a stateless HMAC-signed cookie (12 h), forms carry a CSRF token, and its
// Content-Security-Policy allows nothing external.
//
// # Dependencies
//
// Only the standard library (net/http with Go 1.22 patterns, html/template, embed, log/slog)
// and this module's packages: storage (bbolt, already the box's database), the box's release
// verifier (go-tuf, so a bundle is judged exactly as a box judges it) and image/publish (only
// to sign the load test's demo release). No web framework or router: the handful of routes
// does not need one, and every dependency is code the fleet's operators must trust.
package fleet
