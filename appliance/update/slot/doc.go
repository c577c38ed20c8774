// Package slot knows the box's A/B layout, shared by the update agent (on the box) and the
// image build (on the host): the names and content of the systemd-boot entries, boot
// counting in entry file names, which slot is running, where the boot disk's partitions are,
// and reading and changing the ESP.
//
// # Entries and boot counting
//
// Each slot has one entry in /loader/entries, ordered by its "version" line (sort-key "anya";
// loader.conf says "default anya-*", and systemd-boot boots the first entry in its order
// that matches). A name carries systemd-boot's boot counter (Boot Loader Specification,
// "Boot counting"; [Name]):
//
//	anya-b.conf       good: no counting, the slot is committed
//	anya-b+3.conf     newly installed: three tries left
//	anya-b+2-1.conf   systemd-boot renamed it before booting it once (2 left, 1 done)
//	anya-b+0-3.conf   bad: no tries left; systemd-boot 252 sorts it after every entry with
//	                  tries left, so the other slot boots
//
// The running system ends the counting by renaming the entry (what systemd-bless-boot does):
// to anya-b.conf when it is healthy ([Name.Blessed]), to anya-b+0-M.conf when it is not
// ([Name.Failed]). Letter case is ignored (FAT).
//
// # Which slot runs
//
// The kernel command line says it (anya.slot=, from the entry's options; PID 1 mounts
// /system from that slot's partition), and systemd-boot's LoaderEntrySelected EFI variable
// names the entry it booted ([DetectBooted]). The command line wins when they disagree.
//
// # The ESP
//
// [ESP] is the ESP opened for reading or for an update; only WriteFile (temporary file, then
// rename) and Rename change what the boot loader reads, each in one directory update. On the
// box the ESP is mounted (vfat, which the initramfs loads) only while it is read or changed
// ([MountESP], [DeviceOpener]); without a vfat driver, and in tests and host tools on a disk
// image file, go-diskfs edits the FAT in place ([OpenFAT]). A plain directory works too
// ([OpenDir]).
package slot
