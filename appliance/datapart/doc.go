// Package datapart finds, checks, formats and mounts the box's data partition.
//
// The partition is found by its GPT label (PARTNAME in sysfs), never by device name, since
// device names change with the disk controller. The image ships the partition blank (all
// zeros), which keeps the image reproducible; on first boot a blank partition is formatted as
// ext4 with github.com/diskfs/go-diskfs (pure Go: the image has no mkfs). A partition that is
// neither blank nor a mountable ext4 is reported as damaged and left exactly as it is: the
// owner's funds may depend on what is on it, so it is never wiped without a person deciding to.
package datapart
