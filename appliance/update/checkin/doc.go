// Package checkin runs the box's side of fleet-managed updates: it enrolls the box with a
// fleet server (tools/fleet) when the owner gives the server's address and an enrollment
// token, checks in on the server's schedule with jitter, and installs the release the server
// offers through the update agent, then restarts into it. Package appliance/update/fleet is
// the wire protocol and the signing client; package agent does the install, the trial boot
// and the rollback; this package decides when to ask and when to act.
//
// # What is stored
//
// The enrollment lives in the database's "fleet" subsystem: the server's URL, the device id,
// the channel, whether offers are installed automatically, and how the device key is held.
// The device key is the box's own, never in a backup (a restored box enrolls again): in the
// TPM when the box has one (KeyStore, hsm/tpm's signing key; its wrapped blob is stored
// here, useless without that TPM), else in a file on the data partition (fleet.SoftwareKey,
// mode 0600).
//
// # The loop
//
// Run checks in at once when enrolled, then after the interval the server suggests (an hour
// by default), spread by ±15 % (fleet.NextPoll) so a fleet does not call in together after a
// power cut; Enroll and CheckNow wake it. Each check-in reports the running release, slot,
// health and the latest attempt (fleet.Report.Target), which is how the server learns of an
// install, a commit or a rollback, and counts failures for its staged rollout.
//
// An offer is installed automatically (Settings.Auto, on by default) when its release
// counter is above the running one and it is not the release whose last attempt was refused
// or rolled back here: a box does not retry a release that broke it (or did not verify)
// until the owner forces it on the page, or the server offers a newer one. An attempt that
// stopped before the switch (agent.Failed: interrupted by a power cut, a download that broke
// off) changed nothing and is retried at the next check-in; a failed check-in or install is
// retried after RetryPoll rather than the full interval. The box verifies every byte it fetches
// against its own trusted root (package release); the server only says what to fetch.
// After a successful install the box checks in once more (target "installed") and restarts;
// the trial boot, its health check and the commit or rollback are the agent's.
package checkin
