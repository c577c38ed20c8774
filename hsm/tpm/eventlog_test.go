package tpm

import (
	"bytes"
	"crypto/sha256"
	"debug/pe"
	"encoding/binary"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// encodeLog writes events as a crypto-agile TCG event log with SHA-1 and SHA-256 digests.
func encodeLog(events []Event) []byte {
	var b bytes.Buffer
	le := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	spec := []byte("Spec ID Event03\x00")
	spec = append(spec, 0, 0, 0, 0, 0, 2, 0, 2) // platform class, version 2.0, errata, uintn size
	spec = binary.LittleEndian.AppendUint32(spec, 2)
	spec = binary.LittleEndian.AppendUint16(spec, 0x0004)
	spec = binary.LittleEndian.AppendUint16(spec, 20)
	spec = binary.LittleEndian.AppendUint16(spec, tcgAlgSHA256)
	spec = binary.LittleEndian.AppendUint16(spec, 32)
	spec = append(spec, 0)
	le(uint32(0))
	le(uint32(EvNoAction))
	b.Write(make([]byte, 20))
	le(uint32(len(spec)))
	b.Write(spec)
	for _, e := range events {
		le(uint32(e.PCR))
		le(e.Type)
		le(uint32(2))
		le(uint16(0x0004))
		b.Write(make([]byte, 20))
		le(tcgAlgSHA256)
		d := e.Digest
		if d == nil {
			d = make([]byte, 32)
		}
		b.Write(d)
		le(uint32(len(e.Data)))
		b.Write(e.Data)
	}
	return b.Bytes()
}

func sum(b []byte) []byte { h := sha256.Sum256(b); return h[:] }

// debianKernel returns the Debian kernel the image build caches, or skips.
func debianKernel(t *testing.T) []byte {
	t.Helper()
	d, _ := os.UserCacheDir()
	if c := os.Getenv("ANYA_CACHE"); c != "" {
		d = c
	} else {
		d = filepath.Join(d, "anya")
	}
	m, _ := filepath.Glob(filepath.Join(d, "linux-image-*amd64*.d", "boot", "vmlinuz-*"))
	if len(m) == 0 {
		t.Skip("no cached Debian kernel (the image tests download it)")
	}
	b, err := os.ReadFile(m[0])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAuthenticodeMatchesOsslsigncode checks the digest against the signed one (the Debian
// kernel is signed for Secure Boot; osslsigncode recomputes its Authenticode digest).
func TestAuthenticodeMatchesOsslsigncode(t *testing.T) {
	k := debianKernel(t)
	got, err := Authenticode(k)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("osslsigncode"); err != nil {
		t.Skip("osslsigncode not installed")
	}
	p := filepath.Join(t.TempDir(), "vmlinuz")
	os.WriteFile(p, k, 0o644)
	out, _ := exec.Command("osslsigncode", "verify", "-in", p).CombinedOutput()
	m := regexp.MustCompile(`Calculated message digest\s*:\s*([0-9A-Fa-f]{64})`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("osslsigncode printed no digest:\n%s", out)
	}
	if want := strings.ToLower(string(m[1])); hex.EncodeToString(got) != want {
		t.Fatalf("Authenticode = %x, osslsigncode says %s", got, want)
	}
}

// bootLog is what OVMF, systemd-boot and the kernel's EFI stub log when booting slot.
func bootLog(slot string, kernelAuth, initrd []byte) []Event {
	cmd := utf16le("console=ttyS0 anya.slot=" + slot + " initrd=\\anya\\" + slot + "\\initrd.img\x00")
	dp := append(make([]byte, 32), utf16le("\\anya\\"+slot+"\\vmlinuz\x00")...)
	return []Event{
		{PCR: 0, Type: EvNoAction, Data: []byte("StartupLocality\x00\x03")},
		{PCR: 0, Type: 8, Digest: sum([]byte("firmware"))},
		{PCR: 4, Type: 0x80000007, Digest: sum([]byte("Calling EFI Application from Boot Option")), Data: []byte("Calling EFI Application from Boot Option")},
		{PCR: 4, Type: EvEFIBootServicesApplication, Digest: sum([]byte("systemd-boot")), Data: utf16le("\\EFI\\BOOT\\BOOTX64.EFI")},
		{PCR: 4, Type: EvEFIBootServicesApplication, Digest: kernelAuth, Data: dp},
		{PCR: 12, Type: 0x0d, Digest: sum(cmd), Data: cmd},
		{PCR: 9, Type: 0x06, Digest: sum(cmd), Data: []byte("LOADED_IMAGE::LoadOptions")},
		{PCR: 9, Type: 0x06, Digest: initrd, Data: []byte("Linux initrd")},
	}
}

func TestPredictNextSlot(t *testing.T) {
	k := debianKernel(t)
	k2 := bytes.Clone(k)
	f, err := pe.NewFile(bytes.NewReader(k))
	if err != nil {
		t.Fatal(err)
	}
	k2[f.Sections[len(f.Sections)-1].Offset+7] ^= 0xff // a different kernel build
	authA, _ := Authenticode(k)
	authB, _ := Authenticode(k2)
	initA, initB := sha256.Sum256([]byte("initrd A")), sha256.Sum256([]byte("initrd B"))

	events, err := ParseEventLog(encodeLog(bootLog("a", authA, initA[:])))
	if err != nil {
		t.Fatal(err)
	}
	current := Replay(events)
	ch := BootChange{FromSlot: "a", ToSlot: "b", OldKernel: k, NewKernel: k2, OldInitrd: initA, NewInitrd: initB}
	p := Predict(events, current, ch)
	want := Replay(bootLog("b", authB, initB[:]))
	if miss := p.Missing(DefaultPCRs); len(miss) > 0 {
		t.Fatalf("unpredictable: %v (%v)", miss, p.Unpredictable)
	}
	for _, i := range DefaultPCRs {
		if !bytes.Equal(p.Values[i], want[i]) {
			t.Errorf("PCR %d predicted %x, slot b measures %x", i, p.Values[i], want[i])
		}
	}
	loc3 := make([]byte, 32)
	loc3[31] = 3
	if !bytes.Equal(current[0], ExtendPCR(loc3, sum([]byte("firmware")))) {
		t.Errorf("startup locality not applied: %x", current[0])
	}
	if len(p.Changed) != 4 {
		t.Errorf("changed = %q, want kernel, cmdline twice and initrd", p.Changed)
	}

	// A log that does not replay to the TPM's values predicts nothing for that PCR.
	cur2 := Replay(events)
	cur2[9] = sum([]byte("something measured after the log"))
	if p := Predict(events, cur2, ch); p.Unpredictable[9] == "" || p.Values[9] != nil {
		t.Errorf("PCR 9 predicted despite a log mismatch: %v", p.Unpredictable)
	}
	// A kernel whose measurement is not its Authenticode digest.
	bad := bootLog("a", sum(k), initA[:])
	if p := Predict(bad, Replay(bad), ch); p.Unpredictable[4] == "" {
		t.Error("PCR 4 predicted though the kernel's measurement is unexplained")
	}
	// An event naming the slot that is not the hash of its data.
	odd := append(bootLog("a", authA, initA[:]), Event{PCR: 12, Type: 0x0d, Digest: sum([]byte("x")), Data: []byte("anya.slot=a")})
	if p := Predict(odd, Replay(odd), ch); p.Unpredictable[12] == "" || p.Values[4] == nil {
		t.Errorf("odd PCR 12 event: %v", p.Unpredictable)
	}
}

func TestParseEventLogRejectsDamage(t *testing.T) {
	good := encodeLog(bootLog("a", sum([]byte("k")), sum([]byte("i"))))
	for _, n := range []int{10, 40, len(good) - 3} {
		if _, err := ParseEventLog(good[:n]); err == nil {
			t.Errorf("log cut at %d bytes parsed", n)
		}
	}
	if _, err := ParseEventLog(bytes.Repeat([]byte{0}, 64)); err == nil {
		t.Error("zeros parsed as a log")
	}
}
