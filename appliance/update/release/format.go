package release

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strconv"
)

// Kind is what a payload is, which decides where the update agent writes it.
type Kind string

// The payload kinds of a release. A release carries exactly one of each for an architecture.
const (
	KindRelease Kind = "release" // release.json: the manifest, written to /anya/<slot>/release.json
	KindKernel  Kind = "kernel"  // the kernel, written to /anya/<slot>/vmlinuz
	KindInitrd  Kind = "initrd"  // the initramfs, written to /anya/<slot>/initrd.img
	KindSystem  Kind = "system"  // the system squashfs, written to the slot's partition
)

// Kinds returns the payload kinds in bundle order: the order in which payloads are stored in a
// tar bundle and listed in Release.Payloads (the small manifest first, the large system image
// last).
func Kinds() []Kind { return []Kind{KindRelease, KindKernel, KindInitrd, KindSystem} }

// order is k's position in bundle order.
func (k Kind) order() int { return slices.Index(Kinds(), k) }

// FileName is the base name of a payload of kind k in the bundle and on the ESP.
func (k Kind) FileName() string {
	switch k {
	case KindRelease:
		return "release.json"
	case KindKernel:
		return "vmlinuz"
	case KindInitrd:
		return "initrd.img"
	case KindSystem:
		return "system.squashfs"
	}
	return ""
}

func (k Kind) known() bool { return k.FileName() != "" }

// Bundle layout: a bundle is a TUF repository with consistent snapshots, as plain static files
// under one base (a directory, a URL, or the entries of a tar file):
//
//	metadata/1.root.json … metadata/N.root.json   the whole root chain (a box walks from its root)
//	metadata/timestamp.json                        the only file whose name does not change
//	metadata/V.snapshot.json                       V from timestamp.json
//	metadata/W.targets.json                        W from the snapshot
//	targets/<arch>/<sha256>.<file name>            payloads, named by content
//
// Every name but timestamp.json is content-addressed or versioned, so several releases can be
// published into the same directory and a CDN can cache everything but timestamp.json; a
// publisher uploads payloads and metadata first and timestamp.json last.
const (
	MetadataDir   = "metadata"
	TargetsDir    = "targets"
	TimestampFile = "metadata/timestamp.json"
)

// RootFile is the bundle path of root metadata version v.
func RootFile(v int64) string { return fmt.Sprintf("%s/%d.root.json", MetadataDir, v) }

// SnapshotFile is the bundle path of snapshot metadata version v.
func SnapshotFile(v int64) string { return fmt.Sprintf("%s/%d.snapshot.json", MetadataDir, v) }

// TargetsFile is the bundle path of targets metadata version v.
func TargetsFile(v int64) string { return fmt.Sprintf("%s/%d.targets.json", MetadataDir, v) }

// TargetPath is the TUF target path of a payload: "<arch>/<file name>".
func TargetPath(arch string, k Kind) string { return arch + "/" + k.FileName() }

// PayloadFile is the bundle path of the payload with target path target and SHA-256 sum
// (hex): targets/<dir>/<sum>.<base>, as TUF's consistent snapshots name targets.
func PayloadFile(target, sumHex string) string {
	dir, base := path.Split(target)
	return TargetsDir + "/" + dir + sumHex + "." + base
}

// IssuedField is the field of the signed timestamp metadata that holds the time it was signed
// (RFC 3339, UTC). TUF has no such field; go-tuf keeps unknown fields in the signed part, so it
// is covered by the timestamp role's signatures. The box's last-known-good time advances to it.
const IssuedField = "anya_issued"

// Custom is the custom metadata of every payload in the signed targets metadata. All payloads
// of one architecture carry the same Version, Counter and MinFrom.
type Custom struct {
	Arch    string `json:"arch"`    // GOARCH of the box: "amd64", "arm64"
	Kind    Kind   `json:"kind"`    // what the payload is
	Version string `json:"version"` // release version, shown to people (not compared)
	// Counter is the monotonic release counter: a box refuses a release whose counter is
	// below the installed one or the highest one it has accepted.
	Counter uint64 `json:"counter"`
	// MinFrom is the lowest installed release counter this release may update from (0: any).
	MinFrom uint64 `json:"min_from"`
	// MinFromVersion is MinFrom's version string, for the message when it refuses.
	MinFromVersion string `json:"min_from_version,omitempty"`
}

// Manifest is the part of a release's release.json that the verifier checks against the signed
// custom metadata (the image's release manifest has more fields).
type Manifest struct {
	Version string `json:"version"`
	Counter uint64 `json:"counter"`
	Arch    string `json:"arch"`
	Epoch   int64  `json:"epoch"`
}

func parseCustom(raw *json.RawMessage) (Custom, error) {
	var c Custom
	if raw == nil {
		return c, fmt.Errorf("no custom metadata")
	}
	if err := json.Unmarshal(*raw, &c); err != nil {
		return c, fmt.Errorf("custom metadata: %w", err)
	}
	if c.Arch == "" || c.Kind == "" || c.Version == "" || c.Counter == 0 {
		return c, fmt.Errorf("custom metadata: arch, kind, version and counter are required")
	}
	return c, nil
}

func formatCounter(version string, counter uint64) string {
	if version == "" {
		return "#" + strconv.FormatUint(counter, 10)
	}
	return version + " (#" + strconv.FormatUint(counter, 10) + ")"
}
