// Package image builds the Anya Edge disk image on a build host, without root and without loop
// devices.
//
// The image is a GPT disk for x86-64 UEFI:
//
//	1 ESP        FAT32, label "ESP":  systemd-boot, loader.conf, one boot entry and one
//	             boot directory per slot (/anya/a, /anya/b) holding that slot's kernel and
//	             initramfs. The initramfs holds anyad (as /init) and the kernel modules
//	             needed to reach the disks, the network and the filesystems.
//	2 anya-a     squashfs, read-only: the slot's system tree (release manifest, further
//	             kernel modules, the update trusted root when the build was given one),
//	             mounted by anyad at /system.
//	3 anya-b     the same for slot B.
//	4 anya-data  left blank (zeros): anyad formats it as ext4 on first boot and keeps all state
//	             there. Leaving it blank keeps the image reproducible.
//
// A slot is its boot directory on the ESP plus its system partition; an update writes both
// halves of the inactive slot and never touches the booted one, so the only boot files are
// never overwritten. systemd-boot's boot counting (an entry named anya-b+3.conf is tried three
// times, then sorted last) lets the box try a slot and fall back to the other.
//
// Why these parts: systemd-boot is the one boot loader with boot counting that Debian ships as
// a plain EFI binary; the kernel is Debian's (it keeps its TPM drivers built in, which the
// signer needs); github.com/diskfs/go-diskfs writes GPT, FAT32 and squashfs from Go without
// root. The newc cpio writer is our own: it is 60 lines, writes device nodes (the initramfs
// needs /dev/console) and is deterministic, which the available libraries either are not or
// only with a large dependency tree.
//
// Reproducibility: the same inputs (anyad binary, Debian packages, version, epoch) give a
// bit-identical image. GUIDs are derived from the version, every timestamp is the build epoch
// (SOURCE_DATE_EPOCH, which go-diskfs's FAT writer also reads), the squashfs superblock time is
// patched to it, the FAT volume id is fixed, and file order is sorted.
package image
