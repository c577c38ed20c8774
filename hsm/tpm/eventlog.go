package tpm

import (
	"bytes"
	"crypto/sha256"
	"debug/pe"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"unicode/utf16"

	"github.com/anya-edge/anya/hsm/seal"
)

// DefaultEventLog is where Linux exposes the firmware's TCG event log (securityfs).
const DefaultEventLog = "/sys/kernel/security/tpm0/binary_bios_measurements"

// Event types of the TCG PC Client specification this package looks at.
const (
	EvNoAction                          = 0x00000003
	EvEFIBootServicesApplication        = 0x80000003
	tcgAlgSHA256                 uint16 = 0x000b
)

// Event is one measurement of the TCG event log, with its SHA-256 bank digest.
type Event struct {
	PCR    int
	Type   uint32
	Digest []byte // nil when the log has no SHA-256 digest for the event
	Data   []byte
}

// ParseEventLog parses a crypto-agile TCG event log (TCG PC Client Platform Firmware Profile
// §10: a SHA-1 format "Spec ID Event03" header, then TCG_PCR_EVENT2 records), as Linux exposes
// it in binary_bios_measurements.
func ParseEventLog(b []byte) ([]Event, error) {
	r := bytes.NewReader(b)
	var hdr struct {
		PCR, Type uint32
		Digest    [20]byte
		Size      uint32
	}
	if err := binary.Read(r, binary.LittleEndian, &hdr); err != nil {
		return nil, fmt.Errorf("event log header: %w", err)
	}
	spec := make([]byte, hdr.Size)
	if _, err := io.ReadFull(r, spec); err != nil {
		return nil, fmt.Errorf("event log spec event: %w", err)
	}
	if hdr.Type != EvNoAction || !bytes.HasPrefix(spec, []byte("Spec ID Event03\x00")) || len(spec) < 28 {
		return nil, errors.New("event log: not a crypto-agile (Spec ID Event03) log")
	}
	n := int(binary.LittleEndian.Uint32(spec[24:28]))
	if len(spec) < 28+4*n {
		return nil, errors.New("event log: spec event too short for its algorithms")
	}
	sizes := map[uint16]int{}
	for i := range n {
		o := 28 + 4*i
		sizes[binary.LittleEndian.Uint16(spec[o:])] = int(binary.LittleEndian.Uint16(spec[o+2:]))
	}
	if sizes[tcgAlgSHA256] != sha256.Size {
		return nil, errors.New("event log: the SHA-256 bank is not logged")
	}
	var out []Event
	for r.Len() > 0 {
		var h struct{ PCR, Type, Count uint32 }
		if err := binary.Read(r, binary.LittleEndian, &h); err != nil {
			return nil, fmt.Errorf("event log: event %d: %w", len(out), err)
		}
		if h.PCR > 23 || h.Count > 8 {
			return nil, fmt.Errorf("event log: event %d: PCR %d with %d digests", len(out), h.PCR, h.Count)
		}
		ev := Event{PCR: int(h.PCR), Type: h.Type}
		for range h.Count {
			var alg uint16
			if err := binary.Read(r, binary.LittleEndian, &alg); err != nil {
				return nil, fmt.Errorf("event log: event %d: %w", len(out), err)
			}
			size, ok := sizes[alg]
			if !ok {
				return nil, fmt.Errorf("event log: event %d: digest of unknown algorithm %#x", len(out), alg)
			}
			d := make([]byte, size)
			if _, err := io.ReadFull(r, d); err != nil {
				return nil, fmt.Errorf("event log: event %d: %w", len(out), err)
			}
			if alg == tcgAlgSHA256 {
				ev.Digest = d
			}
		}
		var size uint32
		if err := binary.Read(r, binary.LittleEndian, &size); err != nil {
			return nil, fmt.Errorf("event log: event %d: %w", len(out), err)
		}
		if int64(size) > int64(r.Len()) {
			return nil, fmt.Errorf("event log: event %d: data of %d bytes past the end", len(out), size)
		}
		ev.Data = make([]byte, size)
		io.ReadFull(r, ev.Data)
		out = append(out, ev)
	}
	return out, nil
}

// Replay computes the PCR values the events produce from reset (all zeros, or the startup
// locality in PCR 0), for every PCR 0..23.
func Replay(events []Event) PCRValues {
	v := PCRValues{}
	for i := range 24 {
		v[i] = make([]byte, sha256.Size)
	}
	for _, e := range events {
		if e.Type == EvNoAction {
			if d := e.Data; e.PCR == 0 && len(d) == 17 && string(d[:16]) == "StartupLocality\x00" {
				v[0][31] = d[16]
			}
			continue
		}
		if e.Digest != nil {
			v[e.PCR] = ExtendPCR(v[e.PCR], e.Digest)
		}
	}
	return v
}

// BootChange is how the next boot differs from the running one: another slot's kernel,
// initramfs and command line (anya.slot and the slot's paths).
type BootChange struct {
	FromSlot, ToSlot string
	// OldKernel and NewKernel are the kernel images (PE files with the EFI stub); the firmware
	// measures their Authenticode digest into PCR 4 when the boot loader starts them.
	OldKernel, NewKernel []byte
	// OldInitrd and NewInitrd are the SHA-256 digests of the initramfs files; the kernel's EFI
	// stub measures the initramfs it loads into PCR 9.
	OldInitrd, NewInitrd [32]byte
}

// Prediction is the boot state a BootChange will produce.
type Prediction struct {
	// Values holds every PCR whose next value is known: the replay of the event log with the
	// changed measurements substituted, for each PCR whose replay matches its current value.
	Values PCRValues
	// Unpredictable says, per PCR, why its next value is not known.
	Unpredictable map[int]string
	// Changed lists the measurements substituted, Kept the slot's measurements checked and
	// found unchanged, for the log.
	Changed, Kept []string
}

// Missing returns, sorted, the PCRs of pcrs the prediction has no value for.
func (p Prediction) Missing(pcrs []int) []int {
	var out []int
	for _, i := range pcrs {
		if _, ok := p.Values[i]; !ok {
			out = append(out, i)
		}
	}
	sort.Ints(out)
	return out
}

// Predict replays the event log of the running boot with the measurements that the change
// replaces substituted:
//
//   - the boot loader starting the kernel (EV_EFI_BOOT_SERVICES_APPLICATION whose device path
//     names \anya\<from>\vmlinuz): its recorded digest must be the Authenticode digest of the
//     old kernel, and becomes that of the new one;
//   - any event whose digest is the old initramfs's SHA-256 (the EFI stub's "Linux initrd"
//     event) takes the new one's;
//   - any event whose data names the running slot (the command line the boot loader measures:
//     "anya.slot=a", "initrd=\anya\a\initrd.img"; UTF-8 or UTF-16LE) and whose digest is the
//     SHA-256 of that data gets the data with the other slot's names, hashed again.
//
// An event that names the running slot in any other way makes its PCR unpredictable, as does
// a PCR whose replay of the unchanged log differs from current (an incomplete log, or
// measurements made after the firmware's log ended).
func Predict(events []Event, current PCRValues, ch BootChange) Prediction {
	p := Prediction{Values: PCRValues{}, Unpredictable: map[int]string{}}
	bad := func(pcr int, why string) {
		if _, ok := p.Unpredictable[pcr]; !ok {
			p.Unpredictable[pcr] = why
		}
	}
	replayed := Replay(events)
	for pcr, cur := range current {
		if !bytes.Equal(replayed[pcr], cur) {
			bad(pcr, "the event log does not replay to the current value")
		}
	}
	repl := slotReplacer(ch.FromSlot, ch.ToSlot)
	kernelPath := []string{`\anya\` + ch.FromSlot + `\vmlinuz`, `/anya/` + ch.FromSlot + `/vmlinuz`}
	var oldAuth, newAuth []byte
	// A string measured in one event (the command line in PCR 12) may be measured again by
	// digest only elsewhere (the EFI stub's LoadOptions event): map such digests too.
	rehash := map[[32]byte][]byte{}
	for _, e := range events {
		nd, changed := repl(e.Data)
		if !changed {
			continue
		}
		for _, cut := range []int{0, 1, 2} {
			if len(e.Data) > cut && len(nd) > cut {
				rehash[sha256.Sum256(e.Data[:len(e.Data)-cut])] = sum256(nd[:len(nd)-cut])
			}
		}
	}
	next := make([]Event, 0, len(events))
	for _, e := range events {
		if e.Type == EvNoAction || e.Digest == nil {
			next = append(next, e)
			continue
		}
		switch {
		case e.Type == EvEFIBootServicesApplication && containsAny(e.Data, kernelPath):
			if oldAuth == nil {
				var err1, err2 error
				oldAuth, err1 = Authenticode(ch.OldKernel)
				newAuth, err2 = Authenticode(ch.NewKernel)
				if err := errors.Join(err1, err2); err != nil {
					bad(e.PCR, "kernel image: "+err.Error())
					oldAuth = []byte{}
				}
			}
			if !bytes.Equal(e.Digest, oldAuth) {
				bad(e.PCR, "the kernel's measurement is not its Authenticode digest")
				break
			}
			if !bytes.Equal(oldAuth, newAuth) {
				p.Changed = append(p.Changed, fmt.Sprintf("PCR %d: kernel image (Authenticode)", e.PCR))
			} else {
				p.Kept = append(p.Kept, fmt.Sprintf("PCR %d: kernel image (its Authenticode digest matches the log)", e.PCR))
			}
			e.Digest = newAuth
		case len(e.Digest) == sha256.Size && rehash[[32]byte(e.Digest)] != nil && !containsSlot(e.Data, repl):
			p.Changed = append(p.Changed, fmt.Sprintf("PCR %d: a string naming the slot, by digest", e.PCR))
			e.Digest = rehash[[32]byte(e.Digest)]
		case bytes.Equal(e.Digest, ch.OldInitrd[:]):
			if ch.OldInitrd != ch.NewInitrd {
				p.Changed = append(p.Changed, fmt.Sprintf("PCR %d: initramfs", e.PCR))
			}
			e.Digest = slices.Clone(ch.NewInitrd[:])
		default:
			nd, changed := repl(e.Data)
			if !changed {
				break
			}
			if h := sha256.Sum256(e.Data); !bytes.Equal(h[:], e.Digest) {
				bad(e.PCR, fmt.Sprintf("an event of type %#x names the running slot but is not the hash of its data", e.Type))
				break
			}
			h := sha256.Sum256(nd)
			e.Digest, e.Data = h[:], nd
			p.Changed = append(p.Changed, fmt.Sprintf("PCR %d: %q", e.PCR, printable(nd)))
		}
		next = append(next, e)
	}
	for pcr, v := range Replay(next) {
		if _, ok := p.Unpredictable[pcr]; !ok {
			p.Values[pcr] = v
		}
	}
	return p
}

func sum256(b []byte) []byte { h := sha256.Sum256(b); return h[:] }

// containsSlot reports whether data names the slot (the substitution rule handles it).
func containsSlot(data []byte, repl func([]byte) ([]byte, bool)) bool {
	_, changed := repl(data)
	return changed
}

// slotReplacer returns a function that renames the slot from in a measured string (UTF-8 and
// UTF-16LE): the anya.slot parameter and the slot's directory on the ESP.
func slotReplacer(from, to string) func([]byte) ([]byte, bool) {
	var pairs [][2][]byte
	for _, s := range [][2]string{
		{"anya.slot=" + from, "anya.slot=" + to},
		{`\anya\` + from + `\`, `\anya\` + to + `\`},
		{`/anya/` + from + `/`, `/anya/` + to + `/`},
	} {
		pairs = append(pairs, [2][]byte{[]byte(s[0]), []byte(s[1])}, [2][]byte{utf16le(s[0]), utf16le(s[1])})
	}
	return func(b []byte) ([]byte, bool) {
		changed := false
		for _, p := range pairs {
			if bytes.Contains(b, p[0]) {
				b, changed = bytes.ReplaceAll(b, p[0], p[1]), true
			}
		}
		return b, changed
	}
}

func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

// containsAny reports whether b holds any of subs, as UTF-8 or UTF-16LE, ignoring ASCII case.
func containsAny(b []byte, subs []string) bool {
	lb := bytes.ToLower(b)
	for _, s := range subs {
		s = strings.ToLower(s)
		if bytes.Contains(lb, []byte(s)) || bytes.Contains(lb, utf16le(s)) {
			return true
		}
	}
	return false
}

// printable renders measured data for a log line (UTF-16LE decoded when it looks like it).
func printable(b []byte) string {
	if len(b) >= 4 && len(b)%2 == 0 && b[1] == 0 && b[3] == 0 {
		u := make([]uint16, len(b)/2)
		for i := range u {
			u[i] = binary.LittleEndian.Uint16(b[2*i:])
		}
		return strings.TrimRight(string(utf16.Decode(u)), "\x00")
	}
	return strings.TrimRight(string(b), "\x00")
}

// Authenticode returns the SHA-256 Authenticode digest of a PE image (the "Windows
// Authenticode Portable Executable Signature Format" hash): what UEFI firmware measures into
// PCR 4 when it starts an image.
func Authenticode(img []byte) ([]byte, error) {
	f, err := pe.NewFile(bytes.NewReader(img))
	if err != nil {
		return nil, fmt.Errorf("authenticode: %w", err)
	}
	defer f.Close()
	if len(img) < 0x40 {
		return nil, errors.New("authenticode: image too short")
	}
	peOff := int(binary.LittleEndian.Uint32(img[0x3c:]))
	opt := peOff + 4 + 20 // PE signature, COFF header
	var sizeOfHeaders int
	var certDir int // offset of the certificate table's data directory entry
	var certOff, certSize uint32
	switch oh := f.OptionalHeader.(type) {
	case *pe.OptionalHeader64:
		sizeOfHeaders, certDir = int(oh.SizeOfHeaders), opt+112+4*8
		if oh.NumberOfRvaAndSizes > 4 {
			certOff, certSize = oh.DataDirectory[4].VirtualAddress, oh.DataDirectory[4].Size
		}
	case *pe.OptionalHeader32:
		sizeOfHeaders, certDir = int(oh.SizeOfHeaders), opt+96+4*8
		if oh.NumberOfRvaAndSizes > 4 {
			certOff, certSize = oh.DataDirectory[4].VirtualAddress, oh.DataDirectory[4].Size
		}
	default:
		return nil, errors.New("authenticode: no optional header")
	}
	checksum := opt + 64
	if sizeOfHeaders > len(img) || certDir+8 > sizeOfHeaders {
		return nil, errors.New("authenticode: headers out of range")
	}
	h := sha256.New()
	h.Write(img[:checksum])
	h.Write(img[checksum+4 : certDir])
	h.Write(img[certDir+8 : sizeOfHeaders])
	secs := slices.Clone(f.Sections)
	slices.SortFunc(secs, func(a, b *pe.Section) int { return int(a.Offset) - int(b.Offset) })
	sum := int64(sizeOfHeaders)
	for _, s := range secs {
		if s.Size == 0 {
			continue
		}
		end := int64(s.Offset) + int64(s.Size)
		if end > int64(len(img)) {
			return nil, fmt.Errorf("authenticode: section %s past the end of the image", s.Name)
		}
		h.Write(img[s.Offset:end])
		sum += int64(s.Size)
	}
	end := int64(len(img))
	if certSize > 0 {
		end -= int64(certSize)
		if int64(certOff) != end || end < sum {
			return nil, errors.New("authenticode: the certificate table is not at the end of the image")
		}
	}
	if sum < end {
		h.Write(img[sum:end])
	}
	return h.Sum(nil), nil
}

// BlobPCRs returns the PCRs a TPM blob is bound to.
func BlobPCRs(blob seal.Blob) ([]int, error) {
	b, err := decode(blob)
	if err != nil {
		return nil, err
	}
	var out []int
	for i := range 24 {
		if b.pcrMask&(1<<i) != 0 {
			out = append(out, i)
		}
	}
	return out, nil
}
