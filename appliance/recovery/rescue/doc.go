// Package rescue is the box's recovery mode: the recovery page, served on the same address
// and port as the setup page (:80) when the box starts from a recovery stick (kernel command
// line anya.mode=recovery) or when both system slots of its internal disk have used up their
// boot tries (PID 1 reads the entries: anya-a+0-N.conf and anya-b+0-N.conf). PID 1 mounts
// the stick and runs the page as its supervised child, "anyad recovery"; no service of the
// normal firmware runs and the internal data partition is mounted only when an action needs
// it (read-only to look, read-write to restore or erase).
//
// # What the page does
//
//   - Reinstall (Reinstall): the stick's signed release (bundle.tar) is verified against
//     the trusted root the recovery system carries (the release's own squashfs, at
//     slot.TrustedRootFile; the stick's root.json otherwise), every payload is read and
//     checked before the disk is touched, then: a new GPT with the image's four partitions
//     (unless the data partition is kept, when the existing table is reused), a new ESP with
//     the stick's systemd-boot and loader.conf, slot A installed by the update agent
//     (agent.Install with a throw-away records database in tmpfs, "pretending" slot B runs:
//     the same write, fsync, read-back and hash as an over-the-air update), then slot B gets
//     the same verified payloads and both entries are written as committed, A first, with
//     the recovery entry's own command line (network, static address) minus anya.mode. A
//     wiped data partition gets its first MiB zeroed, so the firmware formats it at its
//     first start; erasing old secrets is EraseData's job.
//   - Restore (RestoreBackup): the backups in the stick's backups/ are listed from their
//     clear headers (ListBackups); the owner picks one and types the mnemonic and optional
//     BIP39 passphrase; hsm.BackupKeyFromMnemonic, then backup.Verify over the whole file,
//     then backup.Restore into the internal data partition's database (formatted first if it
//     is blank) in one transaction. Every refusal leaves the database unchanged and Explain
//     says in one sentence what happened: another wallet (or a wrong mnemonic or passphrase,
//     which is the same thing: the wallet id comes from the seed), cut short, damaged, a
//     replaced key, newer firmware. The restored box is then set up with the same words.
//   - Check (CheckData): read-only. datapart.Probe (blank, ext4, something else), the
//     kernel's read-only mount (which replays the journal: e2fsck is not in the image, and
//     there is no pure-Go ext4 checker worth trusting), then the database: it opens, bbolt's
//     own consistency check (every page reachable once, free list, key order), the
//     subsystems and their schema versions. bbolt panics on some damage in a goroutine of its
//     own, which no recover catches, so the page checks the database in a child process
//     (ProcessChecker, "anyad check-db"): a crash is reported as damage, not as a dead page.
//     Repair is what the page then offers for what it found: restore a backup, reinstall
//     without the data, or erase; it does not patch a damaged database in place.
//   - Export logs (ExportLogs): PID 1's log ring, the status and the check report go to the
//     stick's logs/ as one text file.
//   - Erase (Machine.EraseData): the factory reset of package appliance/recovery/reset.
//
// # Who may use the page (the design decision)
//
// A box in recovery mode may have a blank disk (the admin password is gone with the old
// disk), a damaged one, or a healthy one whose firmware failed. The page is on the local
// network, which the web package's security model treats as hostile. The rules:
//
//  1. The disk holds nothing to protect (Status.Protected is false: the data partition is
//     blank or an empty filesystem): the page is open. Nothing it does can harm the owner
//     there: the reinstalled firmware is the vendor-signed release on the owner's own stick,
//     a restore needs the mnemonic (the real secret; without it there is nothing to restore
//     to), and a box without a wallet is what any new box is ("whoever reaches a new box
//     first owns it", as at setup).
//  2. Otherwise every action needs either the one-time recovery code or physical presence.
//     The code (NewCode: 10 characters of a 31-letter alphabet without look-alikes, about 49
//     bits) is made by PID 1 at each recovery boot and written to the console only (HDMI and
//     serial), never to the log ring, which the page exports. Five wrong codes lock the
//     login for everybody for a minute, doubling up to 30 minutes: the code is the same for
//     every client, so the limit is global, and 49 bits at a few tries per hour is out of
//     reach. Physical presence is for boxes without a screen: the browser asks, then the
//     owner pulls the recovery stick out and puts it back within two minutes; the kernel's
//     uevents tell the page, and that browser gets a session. Only one browser may wait at a
//     time: a second one asking while the first waits cancels both and locks presence for
//     five minutes (someone else on the network is trying), so a race can only delay the
//     owner, never let the other one in. The box's admin password is not accepted: it may be
//     the very thing that is lost, and a damaged database must not be read to check it.
//
// Sessions are random 32-byte cookies (HttpOnly, SameSite=Strict) kept as SHA-256 in memory
// for two hours; every state-changing request must be same-origin
// (http.CrossOriginProtection); destructive choices (erase, reinstall without the data)
// also need the typed confirmation "erase this box"; one action runs at a time.
//
// # Figures (go test, the build machine, shared; image files in tmpfs)
//
// Reinstall of a 3.5 MB test release onto a 200 MiB blank disk image: 0.1–0.5 s. Backup of a
// small database: 17 KB in 1–4 ms; restore (Verify + Restore) 4–30 ms (package backup has
// the figures of a 10,000-transaction wallet). In QEMU (image's
// TestRecoveryBackupRestoreReset, TCG, no KVM, 2026-11-26): a fresh box's backup through the
// page is 17 KB and takes 0.8 s, copy onto the stick included; the stick (112 MiB, a 22.8 MiB
// bundle) reaches its page 17–38 s after QEMU starts; the reinstall onto a blank 1 GiB virtio
// disk takes 17–33 s through the page; five refused restores leave the disk byte-identical;
// the restore takes 4.2 s (check, format the blank data partition, restore); the restored
// disk boots to its setup page in 33 s; a factory reset from the page is back at the wizard
// 53–58 s after the request (reboot, zeroing the data partition, formatting, boot).
package rescue
