package hsm

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"testing"

	"github.com/anya-edge/anya/hsm/seal"
	"github.com/anya-edge/anya/hsm/sign"
	"github.com/anya-edge/anya/hsm/tpm"
	"github.com/anya-edge/anya/hsm/tpm/tpmtest"
)

// slotLog is a boot of slot: boot loader (PCR 4), command line (PCR 12, as systemd-boot
// measures it, UTF-16LE), initramfs (PCR 9, as the kernel's EFI stub does).
func slotLog(slot string, initrd [32]byte) []tpm.Event {
	h := func(b []byte) []byte { s := sha256.Sum256(b); return s[:] }
	var cmd []byte
	for _, r := range "console=ttyS0 anya.slot=" + slot + "\x00" {
		cmd = append(cmd, byte(r), 0)
	}
	return []tpm.Event{
		{PCR: 4, Type: tpm.EvEFIBootServicesApplication, Digest: h([]byte("systemd-boot")), Data: []byte("loader")},
		{PCR: 12, Type: 0x0d, Digest: h(cmd), Data: cmd},
		{PCR: 9, Type: 0x06, Digest: initrd[:], Data: []byte("Linux initrd")},
	}
}

// TestApproveBootSurvivesUpdate: the running slot a approves the predicted boot state of
// slot b; b then unseals the wallet by itself, and so does a after a fallback. A prediction
// missing a bound PCR is refused and changes nothing.
func TestApproveBootSurvivesUpdate(t *testing.T) {
	sim := tpmtest.Start(t)
	path := filepath.Join(t.TempDir(), "anya.db")
	initA, initB := sha256.Sum256([]byte("initrd a")), sha256.Sum256([]byte("initrd b"))
	open := func(events []tpm.Event) (*box, *tpm.Sealer) {
		t.Helper()
		conn := sim.Dial()
		for _, e := range events {
			sim.Extend(conn, e.PCR, e.Digest)
		}
		ts, err := tpm.New(conn)
		if err != nil {
			t.Fatal(err)
		}
		return openBox(t, path, map[string]seal.Sealer{seal.KindPassphrase: cheapPassphrase(t), seal.KindTPM: ts}, sign.Policy{}), ts
	}
	b, ts := open(slotLog("a", initA))
	if err := b.c.Setup(ctx, SetupRequest{Mnemonic: abandon, Protection: seal.KindTPM, Recovery: recovery}); err != nil {
		t.Fatal(err)
	}
	cur, err := ts.PCRs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ch := tpm.BootChange{FromSlot: "a", ToSlot: "b", OldInitrd: initA, NewInitrd: initB}

	// Refused: the log holds an event naming the slot that the prediction cannot redo.
	odd := append(slotLog("a", initA), tpm.Event{PCR: 12, Type: 0x0d, Digest: make([]byte, 32), Data: []byte("anya.slot=a")})
	before, _, _ := b.c.record()
	if ok, err := b.c.ApproveBoot(ctx, tpm.Predict(odd, cur, ch), "2.0.0"); ok || !errors.Is(err, ErrBootUnpredictable) {
		t.Fatalf("unpredictable PCR 12: approved %v, err %v", ok, err)
	}
	if after, _, _ := b.c.record(); !bytes.Equal(after.Sealed.Data, before.Sealed.Data) {
		t.Fatal("a refused approval changed the sealed copy")
	}

	ok, err := b.c.ApproveBoot(ctx, tpm.Predict(slotLog("a", initA), cur, ch), "2.0.0")
	if err != nil || !ok {
		t.Fatalf("approve: %v %v", ok, err)
	}
	b.close()

	for _, boot := range []struct {
		name   string
		events []tpm.Event
		ok     bool
	}{
		{"the updated slot b", slotLog("b", initB), true},
		{"slot a after a fallback", slotLog("a", initA), true},
		{"slot b with another initramfs", slotLog("b", initA), false},
	} {
		sim.Reboot()
		b, _ := open(boot.events)
		err := b.c.AutoUnlock(ctx)
		b.close()
		if (err == nil) != boot.ok {
			t.Fatalf("%s: auto unlock err = %v, want success %v", boot.name, err, boot.ok)
		}
	}

	// A passphrase wallet has nothing to approve.
	pb := openBox(t, filepath.Join(t.TempDir(), "p.db"), map[string]seal.Sealer{seal.KindPassphrase: cheapPassphrase(t)}, sign.Policy{})
	defer pb.close()
	if err := pb.c.Setup(ctx, SetupRequest{Mnemonic: abandon, Protection: seal.KindPassphrase, Auth: seal.Auth{Passphrase: passphrase}}); err != nil {
		t.Fatal(err)
	}
	if ok, err := pb.c.ApproveBoot(ctx, tpm.Prediction{}, "2.0.0"); ok || err != nil {
		t.Fatalf("passphrase wallet: %v %v", ok, err)
	}
}
