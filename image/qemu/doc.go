// Package qemu boots an Anya Edge disk image in QEMU on the build host, the way the tests,
// the benchmarks and `make run` do: x86-64 q35 machine, OVMF firmware, the image as a virtio
// disk, user networking with the box's port 80 forwarded to a host port on 127.0.0.1, and the
// serial console captured line by line so callers can wait for anyad's ready line.
//
// There is no KVM on the build machines (nested virtualisation fails), so QEMU runs with TCG;
// a boot takes tens of seconds.
package qemu
