// Package agent is the update agent's core: it installs a verified release (package
// release) into the inactive A/B slot, lets systemd-boot try it with boot counting, commits it
// after a health check or marks it bad so the box falls back, and keeps the records (trust
// state, attempt history, versions) in the storage database. It is a library: sources (the
// fleet server, an upload, a USB stick), the page and the reboot are the caller's.
//
// # Use (in anyad's services process, which owns the database)
//
//	cfg, _ := agent.BoxConfig(log)                  // slot, disk, ESP, running release, root
//	cfg.DB, cfg.Log, cfg.Reboot = db, log, system.Reboot // control.System asks PID 1
//	cfg.BeforeSwitch = approve                          // hsm/tpm Authorize of the new PCRs
//	a, _ := agent.New(cfg)
//	bs, _ := a.Boot(ctx)               // trial? fallback? (bs.Fallback: "update to X failed: …")
//	held, _ := agent.Migrate(db, a, "wallet", walletMigrations) // breaking ones wait for commit
//	… start the services …
//	go a.Confirm(ctx, checks, agent.ConfirmOptions{Deadline: 5 * time.Minute, Uptime: agent.BootTime})
//	…
//	att, err := a.Update(ctx, src, agent.InstallOptions{Source: "fleet"}) // verify + install
//	if err == nil { reboot }                                              // the new slot is tried
//
// a.Status() and a.History(n) are what the page shows; a.MigrationsAllowed() and
// a.Committed() gate breaking migrations.
//
// # Install
//
// Install writes only the inactive slot, and makes it bootable only as its last step, after
// everything verified:
//
//  1. Every payload is read and checked against its signed length and SHA-256 without writing
//     anything (skipped with InstallOptions.SinglePass, for a tar stream that cannot be read
//     twice). A tampered or truncated payload is refused here and no byte of any slot
//     changes.
//  2. The inactive slot's entry is removed and the removal synced, then its boot files: from
//     here on no entry refers to the slot, so a half-written slot can never be booted.
//  3. Payloads stream in bundle order, each hashed as it streams (a release.PayloadReader ends
//     in io.EOF only when the bytes match): the system squashfs into the slot's partition
//     with 4 MiB writes, one fsync, then read back from the device past the page cache and
//     hashed again; the kernel, initramfs and release.json into /anya/<slot>/ on the ESP,
//     each through a temporary name and a rename.
//  4. Config.BeforeSwitch runs (the TPM approves the new boot state, see hsm/tpm).
//  5. The new entry anya-<slot>+3.conf is written (temporary name, then rename) with the
//     command line of the running entry (anya.slot changed) and a version above it, so
//     systemd-boot tries it first.
//
// The running slot, its entry and the data partition are never written. Killed at any point
// before step 5, the box boots the running slot as before and the next start records the
// attempt as interrupted; the install can be retried. Killed after step 5, the new slot is
// tried, and its agent takes the attempt over.
//
// # Trial, commit, fallback
//
// systemd-boot renames anya-b+3.conf to anya-b+2-1.conf and boots it. Boot sees the counter:
// this boot is a trial, and MigrationsAllowed is false. Confirm runs the caller's checks
// (storage opens and migrates, services up, signer unlock, node reachable when configured)
// until all passed once or the deadline (counted from the boot with Uptime, so a services
// process restarted during the trial gets one more round, not a new deadline); a check can
// fail at once with Permanent.
//
//   - All pass: Commit renames the entry to anya-b.conf (systemd-bless-boot's "good"),
//     lowers the other slot's version if it sorted first, records the attempt committed and
//     the versions (current, previous), and opens the migration gate.
//   - Not by the deadline: the reason is recorded first (so the old firmware can show it),
//     then the entry is renamed anya-b+0-1.conf (systemd-bless-boot's "bad"), then
//     Config.Reboot. systemd-boot sorts the bad entry last and boots the previous slot at
//     once, instead of spending the two tries left on a version known to be bad.
//   - The new slot never gets that far (a kernel panic, PID 1 dying: panic=10 reboots; a
//     hang: the watchdog resets): every boot costs a try, the third leaves the entry named
//     anya-b+0-3.conf, and the next boot starts the previous slot. (A services process that
//     crash-loops before Confirm runs does not reboot the box; PID 1 has to, by giving a trial
//     boot a deadline of its own.)
//
// On the previous slot, Boot finds the other slot's entry bad and its attempt unfinished or
// rolled back, records it rolled back with the reason (the health check's, or "did not start
// (tried 3 times)", or "restarted before its health check passed") and returns it in
// BootState.Fallback: "update to 2.0.0 failed: …". The bad entry stays (it boots only if
// nothing else can) until the next install replaces it. A release that rolled back is not
// installed again unless InstallOptions.Force (the owner asked), so a fleet server offering
// it again does not loop the box. Install refuses while the running slot is itself on trial
// (ErrOnTrial): the other slot is then its fallback.
//
// A trial boot whose entry cannot be read (the ESP does not mount) is judged from the
// records: a trial iff an unfinished attempt wrote the running slot. A healthy slot whose
// commit fails (ESP or database error) is not marked bad; the counter decides.
//
// # Migrations and rollback
//
// storage's rule: a Breaking migration records a minimum reader version, and older firmware
// then refuses the data rather than misread it. With A/B updates that rule needs a second
// one, implemented here:
//
//	Breaking migrations run only on a committed slot.
//
// While the running slot is on trial, Migrate (use it instead of storage.DB.Migrate) runs a
// subsystem's migrations up to, not including, the first pending breaking one, and returns
// how many it held back. Non-breaking migrations are safe on trial: storage promises that
// older code still reads and writes such data. So whatever happens during a trial, a
// fallback leaves data the previous firmware opens; the database itself is never rolled
// back — restoring a copy would undo state that is unsafe to roll back (addresses handed out,
// signatures made, the audit trail). After the commit, MigrationsAllowed turns true and
// Committed is closed: the services call Migrate again (or are restarted), and from then on
// the previous firmware, started by hand, would refuse the data as storage intends — a
// committed update is not rolled back automatically.
//
// The consequence for authors: a release whose schema change is breaking must pass its
// health check on the old schema (Migrate told it how many migrations it held back) and run
// its new format only after the commit; where that is impossible, make the migration
// non-breaking (add fields, keep the old ones) and drop the old form one release later. The
// "update" subsystem's own migrations are never breaking (a test enforces it): the previous
// firmware must read the attempt records to say why an update failed.
//
// # Records (storage subsystem "update")
//
//	update/trust     "state": release.State — the trusted root (as rotated), the highest
//	                 metadata versions and release counter, the last-known-good time.
//	                 Implements release.Store; starts from the root shipped in the image.
//	update/attempts  one Attempt per install, refusal or fallback, newest last (100 kept):
//	                 version, source, from, slot, started/switched/booted/finished, result,
//	                 code, reason.
//	update/versions  "versions": current and previous version, counter and slot.
//
// # Trusted root
//
// The image build ships the vendor's root metadata at slot.TrustedRootFile in the system
// squashfs (anyactl image build -trusted-root keys/roots/1.root.json); BoxConfig reads it
// from /system. The database's trust state, once there, takes precedence (it follows root
// rotations). An image built without a root, on a box whose database holds none, runs with
// updates disabled and says so in the log and in Status ("updates disabled: no trusted
// root"); boot counting, commit and fallback reporting still work.
package agent
