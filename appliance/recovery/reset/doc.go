// Package reset is the box's factory reset: it erases the data partition and with it every
// sealed secret, and the box starts again with the first-boot wizard; the firmware (ESP,
// slots) stays.
//
// # What holds secrets, and why erasing the data partition is enough
//
// Everything secret lives in the database on the data partition: the wallet record with the
// seed sealed to the TPM (hsm/tpm) or to a YubiKey's PIV key (hsm/piv), the admin password's
// Argon2id hash, sessions, the backup recipient, the update agent's records. The TPM keeps
// nothing: hsm/tpm re-creates its storage root key from the owner hierarchy's template at
// every use and its sealed objects exist only as blobs in the database (no NV index, no
// persistent handle), so once the blobs are gone the TPM holds no trace of the wallet. The
// PIV key in slot 9d is on the owner's YubiKey (adopted, or generated there at setup), which
// leaves with the owner and need not be plugged in for a reset: the box's record of it and
// the blob sealed to it are in the database, and without the blob the key decrypts nothing
// of the box's. An owner who wants the slot back can reset the YubiKey's PIV applet. (A TPM2_Clear would also rotate the
// owner hierarchy's seed; it needs platform authorization the running OS normally lacks, and
// is not needed for the blobs to be useless.)
//
// # Erase
//
// Erase overwrites every regular file on the mounted partition with zeros in place and syncs
// (the database first), unmounts, then zeroes the whole partition (BLKZEROOUT, which an SSD
// does quickly, else plain writes; synced), which also clears stale copies in freed blocks
// and in the ext4 journal, and writes an empty ext4 (datapart.Format). A disk-image test
// fills an ext4 data partition with a real database holding marker secrets and a deleted copy
// of it, erases it, and scans every byte of the image: none is left, and the partitions
// before it are unchanged.
//
// # How a reset is asked for
//
//   - The page (appliance/web, /reset): the admin password (counted against the login's
//     guessing limits) and the typed confirmation "erase this box". The page writes
//     MarkerFile on the data partition and reboots; PID 1 erases before any service opens
//     the data (pid1.resetIfRequested), so nothing holds the database open.
//   - A USB stick, for an owner who lost the password: a file anya-factory-reset.txt on a
//     stick labelled ANYA-BACKUP (or the recovery stick) with the reset token on its first
//     line and "erase this box" on its second. The token is made on the page (NewToken: 160
//     random bits, shown once, in groups of four base32 characters); only its SHA-256 is
//     stored, in TokenFile beside the database, so PID 1 can check it without opening the
//     database, and a copy of the disk does not reveal it (a hash suffices: the token is
//     random, not a password). PID 1 sees the stick arrive (package usbstick), checks the
//     token in constant time, renames the request to .done, writes MarkerFile and reboots.
//   - The recovery page (package rescue), with its own authorization.
package reset
