// Package usbstick finds and mounts the box's USB sticks: a backup stick (a FAT stick
// labelled ANYA-BACKUP, as a laptop formats it, or a GPT partition of that name) and the
// recovery stick (anyactl recovery build: its files partition ANYA-RECOVERY). There is no
// udev and no blkid on the box: PID 1 hears a block device arrive in the kernel's uevents
// (package appliance/uevent), takes the GPT partition name from the event (PARTNAME) or reads
// the FAT volume label from the boot sector itself, and mounts a stick of ours at
// MountRoot/<label> (vfat: nosuid, nodev, noexec, flush, so that a pulled stick loses as
// little as possible). The backup scheduler writes into its backups/ directory; PID 1 also
// looks for a factory-reset request there (package appliance/recovery/reset).
package usbstick
