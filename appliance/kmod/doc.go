// Package kmod loads Linux kernel modules the way modprobe and udev's coldplug do, without
// either: it reads modules.dep and modules.alias (kmod's formats, written by the image builder
// into a flat directory of .ko files), loads a module's dependencies first with finit_module(2),
// and matches the modalias of every device in sysfs against the aliases to load drivers for
// the hardware that is present. Loading a device's driver can reveal new devices (a PCI
// virtio device reveals a virtio-bus device), so coldplug repeats until nothing new loads.
package kmod
