package slot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf16"
)

// LoaderVendor is the EFI vendor GUID of the variables systemd-boot sets
// (LoaderEntrySelected, LoaderEntryDefault, LoaderDevicePartUUID, ...).
const LoaderVendor = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"

// EFIVarsDir is where efivarfs is mounted.
const EFIVarsDir = "/sys/firmware/efi/efivars"

// ReadLoaderVar reads a systemd-boot variable (a NUL-terminated UTF-16LE string after the
// 4-byte attributes) from efivarfs at dir. A missing variable gives an error wrapping
// fs.ErrNotExist.
func ReadLoaderVar(dir, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, name+"-"+LoaderVendor))
	if err != nil {
		return "", fmt.Errorf("read EFI variable %s: %w", name, err)
	}
	s, err := decodeEFIString(b)
	if err != nil {
		return "", fmt.Errorf("read EFI variable %s: %w", name, err)
	}
	return s, nil
}

func decodeEFIString(b []byte) (string, error) {
	if len(b) < 4 || len(b)%2 != 0 {
		return "", errors.New("malformed variable")
	}
	b = b[4:] // attributes
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u)), nil
}

// CmdlineParam returns the value of key=value on a kernel command line, and whether it is
// there.
func CmdlineParam(cmdline, key string) (string, bool) {
	for _, f := range strings.Fields(cmdline) {
		if k, v, _ := strings.Cut(f, "="); k == key {
			return v, true
		}
	}
	return "", false
}

// Booted is which slot is running and how that is known.
type Booted struct {
	// Slot is the running slot, "a" or "b".
	Slot string
	// Entry is the boot entry systemd-boot selected (LoaderEntrySelected), "" when unknown
	// (booted without systemd-boot, or efivarfs not mounted).
	Entry string
	// Warning says when the sources disagree; Slot then follows the command line, since that
	// is what PID 1 mounted /system from.
	Warning string
}

// ErrUnknownSlot means nothing says which slot is running (a development run on a host).
var ErrUnknownSlot = errors.New("the running slot is unknown")

// FindBooted says which slot is running from the kernel command line (anya.slot=, what PID 1
// mounts /system from) and the entry systemd-boot selected (loaderEntry, the value of the
// LoaderEntrySelected EFI variable, may be empty). The command line wins when they disagree.
func FindBooted(cmdline, loaderEntry string) (Booted, error) {
	b := Booted{Entry: loaderEntry}
	fromCmdline, _ := CmdlineParam(cmdline, SlotParam)
	var fromLoader string
	if loaderEntry != "" {
		if n, err := ParseName(loaderEntry); err == nil {
			fromLoader = n.Slot
		} else {
			b.Warning = fmt.Sprintf("systemd-boot booted entry %q, which is not a slot's entry", loaderEntry)
		}
	}
	switch {
	case Valid(fromCmdline):
		b.Slot = fromCmdline
		if fromLoader != "" && fromLoader != fromCmdline {
			b.Warning = fmt.Sprintf("kernel command line says slot %s, systemd-boot booted entry %s", fromCmdline, loaderEntry)
		}
	case fromCmdline != "":
		return b, fmt.Errorf("kernel command line names slot %q: %w", fromCmdline, ErrUnknownSlot)
	case fromLoader != "":
		b.Slot = fromLoader
	default:
		return b, ErrUnknownSlot
	}
	return b, nil
}

// DetectBooted reads /proc/cmdline (at procCmdline) and LoaderEntrySelected (from efivarfs at
// efivars) and calls FindBooted.
func DetectBooted(procCmdline, efivars string) (Booted, error) {
	cmdline, err := os.ReadFile(procCmdline)
	if err != nil {
		return Booted{}, fmt.Errorf("find the running slot: %w", err)
	}
	entry, _ := ReadLoaderVar(efivars, "LoaderEntrySelected") // absent without systemd-boot
	b, err := FindBooted(string(cmdline), entry)
	if err != nil {
		return b, fmt.Errorf("find the running slot: %w", err)
	}
	return b, nil
}
