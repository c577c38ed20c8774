package tpm

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/anya-edge/anya/hsm/seal"
	"github.com/anya-edge/anya/hsm/seal/sealtest"
	"github.com/anya-edge/anya/hsm/tpm/tpmtest"
)

func newTestSealer(t testing.TB, sim *tpmtest.Sim, opts ...Option) *Sealer {
	t.Helper()
	s, err := New(sim.Dial(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	tests := []struct {
		name        string
		auth, wrong seal.Auth
		opts        []sealtest.Option
	}{
		{"PIN", seal.Auth{PIN: "1234"}, seal.Auth{PIN: "4321"}, nil},
		// Without a PIN the blob is bound to the boot state only; every bit is still tried
		// above, here a stride keeps the run short.
		{"NoPIN", seal.Auth{}, seal.Auth{}, []sealtest.Option{sealtest.NoAuth(), sealtest.FlipStride(13)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sealtest.Run(t, func(t *testing.T) seal.Sealer {
				return newTestSealer(t, tpmtest.Start(t))
			}, tc.auth, tc.wrong, tc.opts...)
		})
	}
}

func digest(s string) []byte {
	d := sha256.Sum256([]byte(s))
	return d[:]
}

// slotMeasurements is what firmware, the boot loader and the kernel measure when booting a slot.
func slotMeasurements(slot string) map[int][][]byte {
	return map[int][][]byte{
		0:  {digest("firmware 1.0")},
		2:  {digest("no option ROM")},
		4:  {digest("EV_EFI_ACTION calling EFI application"), digest("systemd-boot 252"), digest("UKI " + slot)},
		7:  {digest("SecureBoot=1"), digest("db: anya release key")},
		9:  {digest("initrd " + slot)},
		11: {digest(".linux " + slot), digest(".osrel " + slot), digest(".cmdline " + slot)},
	}
}

// boot extends the PCRs as booting slot would.
func boot(sim *tpmtest.Sim, s *Sealer, slot string) {
	for pcr, ms := range slotMeasurements(slot) {
		for _, m := range ms {
			sim.Extend(s.tpm, pcr, m)
		}
	}
}

// predict replays slot's measurements from reset PCRs, as the update agent does from the event
// log with the new slot's image digests substituted.
func predict(pcrs []int, slot string) PCRValues {
	ms := slotMeasurements(slot)
	out := PCRValues{}
	for _, p := range pcrs {
		v := make([]byte, 32)
		for _, m := range ms[p] {
			v = ExtendPCR(v, m)
		}
		out[p] = v
	}
	return out
}

func TestBootStateChange(t *testing.T) {
	tests := []struct {
		name    string
		pcr     int
		wantErr error
	}{
		{"firmware PCR 0", 0, seal.ErrBootState},
		{"kernel PCR 4", 4, seal.ErrBootState},
		{"secure boot PCR 7", 7, seal.ErrBootState},
		{"initrd PCR 9", 9, seal.ErrBootState},
		{"UKI PCR 11", 11, seal.ErrBootState},
		{"cmdline PCR 12", 12, seal.ErrBootState},
		{"unselected PCR 14", 14, nil},
	}
	sim := tpmtest.Start(t)
	ctx := context.Background()
	secret := digest("seed")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sim.Reboot()
			s := newTestSealer(t, sim)
			boot(sim, s, "A")
			blob, err := s.Seal(ctx, secret, seal.Auth{PIN: "1234"})
			if err != nil {
				t.Fatal(err)
			}
			sim.Extend(s.tpm, tc.pcr, digest("attacker"))
			got, err := s.Unseal(ctx, blob, seal.Auth{PIN: "1234"})
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("Unseal after extending PCR %d: err = %v, want %v", tc.pcr, err, tc.wantErr)
			}
			if tc.wantErr == nil && !bytes.Equal(got, secret) {
				t.Fatal("wrong secret")
			}
			if tc.wantErr != nil && got != nil {
				t.Fatal("data returned with an error")
			}
		})
	}
}

// TestUpdateFlow is the OTA path: slot A is running, the update agent approves the predicted
// state of slot B before rebooting, B unseals, falling back to A still unseals, and a boot
// nobody approved (an attacker's kernel) can neither unseal nor approve itself.
func TestUpdateFlow(t *testing.T) {
	sim := tpmtest.Start(t)
	ctx := context.Background()
	auth := seal.Auth{PIN: "246810"}
	secret := digest("the wallet seed")

	s := newTestSealer(t, sim)
	boot(sim, s, "A")
	blobA, err := s.Seal(ctx, secret, auth)
	if err != nil {
		t.Fatal(err)
	}
	// The update agent approves slot B before rebooting.
	blobAB, err := s.Authorize(ctx, blobA, predict(DefaultPCRs, "B"))
	if err != nil {
		t.Fatalf("Authorize(B) while running A: %v", err)
	}
	if got, err := s.Unseal(ctx, blobAB, auth); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Unseal of the re-authorised blob while still on A: %v", err)
	}

	steps := []struct {
		slot       string
		blob       seal.Blob
		wantUnseal error
	}{
		{"B", blobAB, nil},
		{"B", blobA, seal.ErrBootState}, // the blob from before the update was not approved for B
		{"A", blobAB, nil},              // fallback to the old slot
		{"evil", blobAB, seal.ErrBootState},
	}
	for _, st := range steps {
		sim.Reboot()
		s := newTestSealer(t, sim)
		boot(sim, s, st.slot)
		got, err := s.Unseal(ctx, st.blob, auth)
		if !errors.Is(err, st.wantUnseal) || (err == nil) != (st.wantUnseal == nil) {
			t.Fatalf("boot %s: Unseal err = %v, want %v", st.slot, err, st.wantUnseal)
		}
		if err == nil && !bytes.Equal(got, secret) {
			t.Fatalf("boot %s: wrong secret", st.slot)
		}
		if st.slot == "evil" {
			// Root on an unapproved boot cannot approve itself: the signing key stays sealed.
			if _, err := s.Authorize(ctx, st.blob, predict(DefaultPCRs, "evil")); !errors.Is(err, seal.ErrBootState) {
				t.Fatalf("Authorize on an unapproved boot: err = %v, want ErrBootState", err)
			}
		}
	}

	// Next update, from B to C: the approvals become {B, C}; A is dropped from the blob.
	sim.Reboot()
	s = newTestSealer(t, sim)
	boot(sim, s, "B")
	blobBC, err := s.Authorize(ctx, blobAB, predict(DefaultPCRs, "C"))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := decode(blobBC); len(b.approvals) != 2 {
		t.Fatalf("%d approvals after B->C, want 2", len(b.approvals))
	}
	for _, st := range []struct {
		slot string
		want error
	}{{"C", nil}, {"A", seal.ErrBootState}} {
		sim.Reboot()
		s := newTestSealer(t, sim)
		boot(sim, s, st.slot)
		if _, err := s.Unseal(ctx, blobBC, auth); !errors.Is(err, st.want) || (err == nil) != (st.want == nil) {
			t.Fatalf("boot %s with the B->C blob: err = %v, want %v", st.slot, err, st.want)
		}
	}
}

func TestAuth(t *testing.T) {
	tests := []struct {
		name      string
		sealed    seal.Auth
		unseal    seal.Auth
		wantError error
	}{
		{"empty", seal.Auth{}, seal.Auth{}, nil},
		{"PIN", seal.Auth{PIN: "1234"}, seal.Auth{PIN: "1234"}, nil},
		{"passphrase", seal.Auth{Passphrase: []byte("pw")}, seal.Auth{Passphrase: []byte("pw")}, nil},
		{"both", seal.Auth{Passphrase: []byte("pw"), PIN: "1"}, seal.Auth{Passphrase: []byte("pw"), PIN: "1"}, nil},
		{"wrong PIN", seal.Auth{PIN: "1234"}, seal.Auth{PIN: "1235"}, seal.ErrWrongAuth},
		{"missing PIN", seal.Auth{PIN: "1234"}, seal.Auth{}, seal.ErrWrongAuth},
		{"PIN given, none sealed", seal.Auth{}, seal.Auth{PIN: "1234"}, seal.ErrWrongAuth},
		{"PIN as passphrase", seal.Auth{PIN: "pw"}, seal.Auth{Passphrase: []byte("pw")}, seal.ErrWrongAuth},
	}
	sim := tpmtest.Start(t)
	s := newTestSealer(t, sim)
	ctx := context.Background()
	secret := digest("seed")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			blob, err := s.Seal(ctx, secret, tc.sealed)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Unseal(ctx, blob, tc.unseal)
			if !errors.Is(err, tc.wantError) || (err == nil) != (tc.wantError == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantError)
			}
			if err == nil && !bytes.Equal(got, secret) {
				t.Fatal("wrong secret")
			}
		})
	}
}

// TestLockout: wrong PINs trip the TPM's dictionary-attack protection; then even the right PIN
// is refused with ErrLocked, while a blob without PIN (NoDA) still unseals.
func TestLockout(t *testing.T) {
	sim := tpmtest.Start(t)
	s := newTestSealer(t, sim)
	ctx := context.Background()
	secret := digest("seed")
	withPIN, err := s.Seal(ctx, secret, seal.Auth{PIN: "1234"})
	if err != nil {
		t.Fatal(err)
	}
	noPIN, err := s.Seal(ctx, secret, seal.Auth{})
	if err != nil {
		t.Fatal(err)
	}
	var locked error
	tries := 0
	for tries = 1; tries <= 50; tries++ {
		_, err := s.Unseal(ctx, withPIN, seal.Auth{PIN: "0000"})
		if errors.Is(err, seal.ErrLocked) {
			locked = err
			break
		}
		if !errors.Is(err, seal.ErrWrongAuth) {
			t.Fatalf("try %d: err = %v, want ErrWrongAuth until locked", tries, err)
		}
	}
	if locked == nil {
		t.Fatal("no lockout after 50 wrong PINs")
	}
	t.Logf("locked after %d wrong PINs: %v", tries, locked)
	if _, err := s.Unseal(ctx, withPIN, seal.Auth{PIN: "1234"}); !errors.Is(err, seal.ErrLocked) {
		t.Fatalf("right PIN during lockout: err = %v, want ErrLocked", err)
	}
	if got, err := s.Unseal(ctx, noPIN, seal.Auth{}); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("blob without PIN during lockout: %v", err)
	}
}

func TestOpenMissingDevice(t *testing.T) {
	_, err := Open("/nonexistent/tpmrm0")
	if !errors.Is(err, seal.ErrDeviceMissing) {
		t.Fatalf("err = %v, want ErrDeviceMissing", err)
	}
}

// TestOtherTPM: a blob moved to another TPM (another box, or a cleared TPM) does not load.
func TestOtherTPM(t *testing.T) {
	ctx := context.Background()
	a := newTestSealer(t, tpmtest.Start(t))
	b := newTestSealer(t, tpmtest.Start(t))
	blob, err := a.Seal(ctx, digest("seed"), seal.Auth{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Unseal(ctx, blob, seal.Auth{}); !errors.Is(err, seal.ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
}

// TestForgedApproval: an attacker with the disk replaces the policy-signing key with their
// own and approves their boot state. The software checks report corruption; below them, the
// TPM itself refuses, because the sealed object's policy names the original key.
func TestForgedApproval(t *testing.T) {
	sim := tpmtest.Start(t)
	s := newTestSealer(t, sim)
	ctx := context.Background()
	blob, err := s.Seal(ctx, digest("seed"), seal.Auth{})
	if err != nil {
		t.Fatal(err)
	}
	sim.Extend(s.tpm, 4, digest("evil kernel"))
	evil, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := decode(blob)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := s.PCRs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d, err := pcrDigest(b.pcrMask, cur)
	if err != nil {
		t.Fatal(err)
	}
	ap, err := signApproval(evil, b.pcrMask, d)
	if err != nil {
		t.Fatal(err)
	}
	b.signerPub, _ = evil.PublicKey.Bytes()
	b.approvals = []approval{ap}
	b.encodeHead()
	forged := seal.Blob{Kind: seal.KindTPM, Version: formatVersion, Data: b.encode()}
	if _, err := s.Unseal(ctx, forged, seal.Auth{}); !errors.Is(err, seal.ErrCorrupt) {
		t.Fatalf("Unseal of a forged blob: err = %v, want ErrCorrupt", err)
	}

	// Skip the software checks and go straight to the TPM.
	s.mu.Lock()
	defer s.mu.Unlock()
	srk, err := s.createSRK()
	if err != nil {
		t.Fatal(err)
	}
	defer s.flush(srk.Handle)
	obj, err := s.load(srk, b.seedObjPub, b.seedObjPriv, "seed object")
	if err != nil {
		t.Fatal(err)
	}
	defer s.flush(obj.Handle)
	if got, err := s.unsealWithPolicy(srk, obj, b, ap, nil, true); err == nil || got != nil {
		t.Fatal("the TPM unsealed under a forged approval")
	} else {
		t.Logf("TPM refused: %v", err)
	}
}

func TestManyPCRs(t *testing.T) {
	sim := tpmtest.Start(t)
	all := make([]int, 24)
	for i := range all {
		all[i] = i
	}
	s := newTestSealer(t, sim, WithPCRs(all...))
	ctx := context.Background()
	v, err := s.PCRs(ctx)
	if err != nil || len(v) != 24 {
		t.Fatalf("PCRs: %d values, %v", len(v), err)
	}
	blob, err := s.Seal(ctx, digest("seed"), seal.Auth{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Unseal(ctx, blob, seal.Auth{}); err != nil {
		t.Fatal(err)
	}
	sim.Extend(s.tpm, 23, digest("x"))
	if _, err := s.Unseal(ctx, blob, seal.Auth{}); !errors.Is(err, seal.ErrBootState) {
		t.Fatalf("err = %v, want ErrBootState", err)
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		name    string
		pcrs    []int
		wantErr bool
	}{
		{"default", DefaultPCRs, false},
		{"secure boot only", []int{7}, false},
		{"empty", nil, true},
		{"negative", []int{-1}, true},
		{"too high", []int{24}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(nil, WithPCRs(tc.pcrs...))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
		})
	}
}
