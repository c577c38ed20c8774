package services

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anya-edge/anya/appliance/update/agent"
	"github.com/anya-edge/anya/hsm"
	"github.com/anya-edge/anya/hsm/keys"
	"github.com/anya-edge/anya/hsm/seal"
	"github.com/anya-edge/anya/hsm/tpm"
	"github.com/anya-edge/anya/hsm/tpm/tpmtest"
	"github.com/anya-edge/anya/storage"
)

// testEventLog encodes events as a crypto-agile TCG event log (SHA-256 bank only).
func testEventLog(events []tpm.Event) []byte {
	var b bytes.Buffer
	le := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	spec := append([]byte("Spec ID Event03\x00"), 0, 0, 0, 0, 0, 2, 0, 2)
	spec = binary.LittleEndian.AppendUint32(spec, 1)
	spec = binary.LittleEndian.AppendUint16(spec, 0x000b)
	spec = binary.LittleEndian.AppendUint16(spec, 32)
	spec = append(spec, 0)
	le(uint32(0))
	le(uint32(tpm.EvNoAction))
	b.Write(make([]byte, 20))
	le(uint32(len(spec)))
	b.Write(spec)
	for _, e := range events {
		le(uint32(e.PCR))
		le(e.Type)
		le(uint32(1))
		le(uint16(0x000b))
		b.Write(e.Digest)
		le(uint32(len(e.Data)))
		b.Write(e.Data)
	}
	return b.Bytes()
}

func utf16z(s string) []byte {
	var b []byte
	for _, r := range s + "\x00" {
		b = append(b, byte(r), 0)
	}
	return b
}

// TestBeforeSwitchApprovesTPMWallet runs the agent's BeforeSwitch hook as the box does, on a
// software TPM measured like slot a, with an ESP holding both slots' boot files.
func TestBeforeSwitchApprovesTPMWallet(t *testing.T) {
	sim := tpmtest.Start(t)
	ctx := context.Background()
	dir := t.TempDir()
	esp := filepath.Join(dir, "esp")
	files := map[string][]byte{"a/vmlinuz": []byte("kernel 1"), "a/initrd.img": []byte("initrd 1"),
		"b/vmlinuz": []byte("kernel 2"), "b/initrd.img": []byte("initrd 2")}
	for name, b := range files {
		os.MkdirAll(filepath.Join(esp, "anya", filepath.Dir(name)), 0o755)
		os.WriteFile(filepath.Join(esp, "anya", name), b, 0o644)
	}
	h := func(b []byte) []byte { s := sha256.Sum256(b); return s[:] }
	cmd := utf16z(`console=ttyS0 anya.slot=a initrd=\anya\a\initrd.img`)
	events := []tpm.Event{
		{PCR: 4, Type: tpm.EvEFIBootServicesApplication, Digest: h([]byte("systemd-boot")), Data: []byte("loader")},
		{PCR: 12, Type: 0x0d, Digest: h(cmd), Data: cmd},
		{PCR: 9, Type: 0x06, Digest: h(files["a/initrd.img"]), Data: []byte("Linux initrd")},
	}
	logFile := filepath.Join(dir, "binary_bios_measurements")
	os.WriteFile(logFile, testEventLog(events), 0o644)
	conn := sim.Dial()
	for _, e := range events {
		sim.Extend(conn, e.PCR, e.Digest)
	}
	ts, err := tpm.New(conn)
	if err != nil {
		t.Fatal(err)
	}
	pass, err := seal.NewPassphrase(seal.WithArgon2(seal.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}))
	if err != nil {
		t.Fatal(err)
	}
	db, err := storage.Open(filepath.Join(dir, "anya.db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sealers := map[string]seal.Sealer{seal.KindPassphrase: pass, seal.KindTPM: ts}
	custody, err := hsm.New(hsm.Config{DB: db, Network: keys.Mainnet, Sealers: sealers})
	if err != nil {
		t.Fatal(err)
	}
	var logBuf strings.Builder
	u := &updates{log: slog.New(slog.NewTextHandler(&logBuf, nil)), slot: "a"}
	sw := agent.Switch{Slot: "b", Version: "2.0.0", KernelSHA256: sha256.Sum256(files["b/vmlinuz"]), InitrdSHA256: sha256.Sum256(files["b/initrd.img"])}
	if err := u.beforeSwitch(ctx, sw); err == nil {
		t.Fatal("BeforeSwitch without the key custody passed")
	}
	u.approveWith(custody, sealers)
	a := u.approver.Load()
	a.espDir, a.eventLog = esp, logFile

	// No wallet: nothing to approve.
	if err := u.beforeSwitch(ctx, sw); err != nil {
		t.Fatalf("no wallet: %v", err)
	}
	err = custody.Setup(ctx, hsm.SetupRequest{Mnemonic: "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
		Protection: seal.KindTPM, Recovery: []byte("a long recovery passphrase")})
	if err != nil {
		t.Fatal(err)
	}
	// A kernel on the ESP that is not the verified one.
	bad := sw
	bad.KernelSHA256[0] ^= 1
	if err := u.beforeSwitch(ctx, bad); err == nil || !strings.Contains(err.Error(), "not the verified one") {
		t.Fatalf("wrong kernel: %v", err)
	}
	if err := u.beforeSwitch(ctx, sw); err != nil {
		t.Fatalf("approve: %v\n%s", err, logBuf.String())
	}
	if !strings.Contains(logBuf.String(), "TPM approved the boot state of the new slot") {
		t.Fatalf("log: %s", logBuf.String())
	}
	// An event log that does not explain the PCRs: refused, with the PCR named.
	os.WriteFile(logFile, testEventLog(events[:2]), 0o644)
	err = u.beforeSwitch(ctx, sw)
	if !errors.Is(err, hsm.ErrBootUnpredictable) || !strings.Contains(err.Error(), "PCR 9") {
		t.Fatalf("unexplained PCR 9: %v", err)
	}
}
