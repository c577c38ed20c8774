package slot

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The two system slots.
const (
	A = "a"
	B = "b"
)

// Slots lists the slots in order.
func Slots() []string { return []string{A, B} }

// Valid reports whether s names a slot.
func Valid(s string) bool { return s == A || s == B }

// Other returns the slot that is not s ("" when s is not a slot).
func Other(s string) string {
	switch s {
	case A:
		return B
	case B:
		return A
	}
	return ""
}

// Label is the GPT partition name of a slot's system partition: "anya-a", "anya-b".
func Label(s string) string { return "anya-" + s }

// Partition labels of the other partitions of the disk.
const (
	LabelESP  = "ESP"
	LabelData = "anya-data"
)

// Paths on the ESP (slash-separated, relative to its root).
const (
	EntriesDir = "loader/entries"
	LoaderConf = "loader/loader.conf"
)

// BootDir is the ESP directory of a slot's boot files: "anya/a".
func BootDir(s string) string { return "anya/" + s }

// The boot files of a slot, in its BootDir.
const (
	KernelFile  = "vmlinuz"
	InitrdFile  = "initrd.img"
	ReleaseFile = "release.json"
)

// TrustedRootFile is where the system squashfs carries the update trusted root (TUF root
// metadata), relative to the slot's root; the running system sees it below /system.
const TrustedRootFile = "etc/anya/update/root.json"

// DefaultTries is the number of boots a newly installed slot gets before systemd-boot gives
// up on it.
const DefaultTries = 3

// State is what a boot entry's name says about its slot (systemd's Boot Loader Specification,
// "Boot counting").
type State int

const (
	// Good: no boot counter, the slot is committed (blessed).
	Good State = iota
	// Trying: the slot is on trial with tries left; systemd-boot counts one down at each boot.
	Trying
	// Bad: no tries left. systemd-boot sorts the entry after all others, so the other slot
	// boots.
	Bad
)

func (s State) String() string {
	switch s {
	case Good:
		return "good"
	case Trying:
		return "trying"
	case Bad:
		return "bad"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// MarshalText gives the state's name in JSON ("good", "trying", "bad").
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a state's name.
func (s *State) UnmarshalText(b []byte) error {
	for _, v := range []State{Good, Trying, Bad} {
		if v.String() == string(b) {
			*s = v
			return nil
		}
	}
	return fmt.Errorf("unknown slot state %q", b)
}

// Name is a parsed boot entry file name: anya-<slot>.conf, or with systemd-boot's boot
// counter anya-<slot>+<left>.conf and anya-<slot>+<left>-<done>.conf.
type Name struct {
	Slot string
	// Counting is set when the name has a +left[-done] counter.
	Counting bool
	// Left is the number of tries left, Done the number of tries made.
	Left, Done int
}

// maxCount bounds the counters (systemd-boot parses them as unsigned ints).
const maxCount = 1 << 20

// ErrNotEntry means a file name is not one of our boot entries.
var ErrNotEntry = errors.New("not an anya boot entry name")

// ParseName parses a boot entry file name. Letter case is ignored (the ESP is FAT, and
// systemd-boot folds case too).
func ParseName(file string) (Name, error) {
	var n Name
	s := strings.ToLower(file)
	rest, ok := strings.CutPrefix(s, "anya-")
	if !ok {
		return n, fmt.Errorf("%q: %w", file, ErrNotEntry)
	}
	rest, ok = strings.CutSuffix(rest, ".conf")
	if !ok {
		return n, fmt.Errorf("%q: %w", file, ErrNotEntry)
	}
	slot, counter, hasCounter := strings.Cut(rest, "+")
	if !Valid(slot) {
		return n, fmt.Errorf("%q: %w: no slot %q", file, ErrNotEntry, slot)
	}
	n.Slot = slot
	if !hasCounter {
		return n, nil
	}
	left, done, hasDone := strings.Cut(counter, "-")
	var err error
	if n.Left, err = parseCount(left); err != nil {
		return Name{}, fmt.Errorf("%q: %w: tries left: %v", file, ErrNotEntry, err)
	}
	if hasDone {
		if n.Done, err = parseCount(done); err != nil {
			return Name{}, fmt.Errorf("%q: %w: tries done: %v", file, ErrNotEntry, err)
		}
	}
	n.Counting = true
	return n, nil
}

func parseCount(s string) (int, error) {
	if s == "" || len(s) > 7 {
		return 0, fmt.Errorf("%q is not a count", s)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a count", s)
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil || v > maxCount {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	return v, nil
}

// String is the canonical file name: anya-b.conf, anya-b+3.conf, anya-b+2-1.conf.
func (n Name) String() string {
	switch {
	case !n.Counting:
		return "anya-" + n.Slot + ".conf"
	case n.Done == 0:
		return fmt.Sprintf("anya-%s+%d.conf", n.Slot, n.Left)
	}
	return fmt.Sprintf("anya-%s+%d-%d.conf", n.Slot, n.Left, n.Done)
}

// State is what the name says about the slot.
func (n Name) State() State {
	switch {
	case !n.Counting:
		return Good
	case n.Left > 0:
		return Trying
	}
	return Bad
}

// Blessed is the name after the slot was committed (what systemd-bless-boot's "good" does).
func (n Name) Blessed() Name { return Name{Slot: n.Slot} }

// Failed is the name after the slot was marked bad (systemd-bless-boot's "bad"): no tries
// left, the tries made kept.
func (n Name) Failed() Name { return Name{Slot: n.Slot, Counting: true, Left: 0, Done: n.Done} }

// Trial is the name of a new slot's entry with tries boots to go.
func Trial(slot string, tries int) Name { return Name{Slot: slot, Counting: true, Left: tries} }

// Entry is the content of a boot entry file (Boot Loader Specification, type 1), as far as
// the box writes it.
type Entry struct {
	Title, Version, SortKey, Linux, Initrd, Options string
}

// ParseEntry reads the keys of a boot entry file; unknown keys and comments are ignored.
func ParseEntry(b []byte) Entry {
	var e Entry
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, " ")
		v = strings.TrimSpace(v)
		switch k {
		case "title":
			e.Title = v
		case "version":
			e.Version = v
		case "sort-key":
			e.SortKey = v
		case "linux":
			e.Linux = v
		case "initrd":
			e.Initrd = v
		case "options":
			if e.Options != "" {
				v = e.Options + " " + v // systemd-boot joins repeated options lines
			}
			e.Options = v
		}
	}
	return e
}

// Bytes is the entry file's content.
func (e Entry) Bytes() []byte {
	var b strings.Builder
	for _, kv := range [][2]string{{"title", e.Title}, {"version", e.Version}, {"sort-key", e.SortKey},
		{"linux", e.Linux}, {"initrd", e.Initrd}, {"options", e.Options}} {
		if kv[1] != "" {
			b.WriteString(kv[0] + " " + kv[1] + "\n")
		}
	}
	return []byte(b.String())
}

// Order is the entry's version as a number, which orders the slots: systemd-boot boots the
// entry with the highest version among those with tries left. -1 when it is not a number.
func (e Entry) Order() int {
	v, err := strconv.Atoi(e.Version)
	if err != nil {
		return -1
	}
	return v
}

// SortKey is the sort-key of every entry: entries are compared by version within it.
const SortKey = "anya"

// NewEntry returns the boot entry of a slot: its kernel and initramfs from its boot directory,
// ordered by order (higher boots first), with the kernel command line options.
func NewEntry(slot, version string, order int, options string) Entry {
	return Entry{
		Title:   fmt.Sprintf("Anya Edge %s (slot %s)", version, strings.ToUpper(slot)),
		Version: strconv.Itoa(order),
		SortKey: SortKey,
		Linux:   "/" + BootDir(slot) + "/" + KernelFile,
		Initrd:  "/" + BootDir(slot) + "/" + InitrdFile,
		Options: options,
	}
}

// KernelCmdline is the kernel command line of a slot. panic=10 turns a failed boot into a
// reboot, which is what lets boot counting fall back to the other slot. extra is appended.
func KernelCmdline(slot, extra string) string {
	s := "console=tty0 console=ttyS0,115200 loglevel=4 panic=10 " + SlotParam + "=" + slot
	if extra != "" {
		s += " " + extra
	}
	return s
}

// SlotParam is the kernel command line parameter that names the booted slot.
const SlotParam = "anya.slot"

// WithSlot returns the command line options with anya.slot set to slot: every other
// parameter (the network, static addresses, the console) carries over to the other slot.
func WithSlot(options, slot string) string {
	fields := strings.Fields(options)
	out := fields[:0]
	found := false
	for _, f := range fields {
		if k, _, _ := strings.Cut(f, "="); k == SlotParam {
			if found {
				continue
			}
			f, found = SlotParam+"="+slot, true
		}
		out = append(out, f)
	}
	if !found {
		out = append(out, SlotParam+"="+slot)
	}
	return strings.Join(out, " ")
}
