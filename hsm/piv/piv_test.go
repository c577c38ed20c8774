package piv

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	pivgo "github.com/go-piv/piv-go/v2/piv"

	"github.com/anya-edge/anya/hsm/piv/pivcard"
	"github.com/anya-edge/anya/hsm/piv/pivtest"
	"github.com/anya-edge/anya/hsm/seal"
	"github.com/anya-edge/anya/hsm/seal/sealtest"
)

const testPIN = "271828"

var (
	goodAuth  = seal.Auth{PIN: testPIN}
	wrongAuth = seal.Auth{PIN: "314159"}
)

func TestMain(m *testing.M) {
	code := m.Run()
	pivtest.Stop()
	os.Exit(code)
}

var (
	caOnce sync.Once
	testCA *pivcard.CA
	caErr  error
)

// rootCA is the test stand-in for Yubico's PIV root.
func rootCA(tb testing.TB) *pivcard.CA {
	tb.Helper()
	caOnce.Do(func() { testCA, caErr = pivcard.NewCA("Test PIV Root CA") })
	if caErr != nil {
		tb.Fatal(caErr)
	}
	return testCA
}

// newCard makes an emulated YubiKey with the test PIN, attested by the test root.
func newCard(tb testing.TB, serial uint32) *pivcard.Card {
	tb.Helper()
	c, err := pivcard.New(pivcard.Config{Serial: serial, PIN: testPIN, Attestation: rootCA(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// rig is one emulated YubiKey inserted into the vpcd reader of the shared pcscd.
type rig struct {
	env  *pivtest.Env
	card *pivcard.Card
	plug *pivcard.Plug
}

func newRig(tb testing.TB, serial uint32) *rig {
	tb.Helper()
	env := pivtest.Start(tb)
	card := newCard(tb, serial)
	return &rig{env: env, card: card, plug: env.Insert(tb, card)}
}

func (r *rig) config(tb testing.TB) Config {
	return Config{Reader: "Virtual PCD", Roots: rootCA(tb).Pool()}
}

func (r *rig) sealer(tb testing.TB) *Sealer { return New(r.config(tb)) }

func mustSeal(t *testing.T, s *Sealer, secret []byte) seal.Blob {
	t.Helper()
	b, err := s.Seal(context.Background(), secret, goodAuth)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	return b
}

func TestConformance(t *testing.T) {
	pivtest.Start(t) // skip as a whole when there is no PC/SC stack
	serial := uint32(20000000)
	sealtest.Run(t, func(t *testing.T) seal.Sealer {
		serial++
		return newRig(t, serial).sealer(t)
	}, goodAuth, wrongAuth)
}

func TestSetupRecordsAttestation(t *testing.T) {
	r := newRig(t, 31415926)
	s := r.sealer(t)
	blob := mustSeal(t, s, []byte("0123456789abcdef"))

	id := s.Identity()
	if id == nil {
		t.Fatal("no identity after Seal")
	}
	if id.Serial != 31415926 || id.Firmware != (pivgo.Version{Major: 5, Minor: 4, Patch: 3}) ||
		id.Slot != pivgo.SlotKeyManagement || id.PINPolicy != pivgo.PINPolicyAlways ||
		id.TouchPolicy != pivgo.TouchPolicyNever || id.FormFactor != pivgo.FormfactorUSBAKeychain {
		t.Fatalf("identity = %v (formfactor %v)", id, id.FormFactor)
	}
	if pub := r.card.PublicKey(0x9d); pub == nil {
		t.Fatal("no key generated in slot 9d")
	} else if epub, _ := pub.ECDH(); !epub.Equal(id.PublicKey) {
		t.Fatal("identity key is not the card's slot 9d key")
	}
	if c := r.card.Counters(); c.Generates != 1 || c.Attests != 1 {
		t.Fatalf("counters after setup: %+v", c)
	}

	// The blob carries the attestation: re-verifiable offline with the right root only.
	got, err := IdentityOf(blob, rootCA(t).Pool())
	if err != nil {
		t.Fatalf("IdentityOf: %v", err)
	}
	if got.Serial != id.Serial || !got.PublicKey.Equal(id.PublicKey) || got.PINPolicy != id.PINPolicy {
		t.Fatalf("IdentityOf = %v, want %v", got, id)
	}
	if _, err := IdentityOf(blob, nil); !errors.Is(err, ErrAttestation) {
		t.Fatalf("IdentityOf with Yubico's roots: %v, want ErrAttestation", err)
	}
	if got := id.String(); !strings.Contains(got, "31415926") || !strings.Contains(got, "PIN always") {
		t.Fatalf("Identity.String() = %q", got)
	}
}

func TestUntrustedAttestationRefused(t *testing.T) {
	r := newRig(t, 1001)
	other, err := pivcard.NewCA("Some other root")
	if err != nil {
		t.Fatal(err)
	}
	cfg := r.config(t)
	cfg.Roots = other.Pool()
	_, err = New(cfg).Seal(context.Background(), []byte("0123456789abcdef"), goodAuth)
	if !errors.Is(err, ErrAttestation) {
		t.Fatalf("Seal with an untrusted attestation: %v, want ErrAttestation", err)
	}
}

func TestWrongPINRetriesAndLock(t *testing.T) {
	r := newRig(t, 1002)
	s := r.sealer(t)
	secret := []byte("0123456789abcdef0123456789abcdef")
	blob := mustSeal(t, s, secret)
	ctx := context.Background()

	for _, want := range []string{"2 tries left", "1 try left"} {
		_, err := s.Unseal(ctx, blob, wrongAuth)
		if !errors.Is(err, seal.ErrWrongAuth) || !strings.Contains(err.Error(), want) {
			t.Fatalf("wrong PIN: %v, want ErrWrongAuth with %q", err, want)
		}
	}
	// A correct PIN resets the counter.
	if got, err := s.Unseal(ctx, blob, goodAuth); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Unseal after two wrong PINs: %v", err)
	}
	if n := r.card.PINRetries(); n != 3 {
		t.Fatalf("retries after a correct PIN = %d, want 3", n)
	}
	for i := 0; i < 2; i++ {
		if _, err := s.Unseal(ctx, blob, wrongAuth); !errors.Is(err, seal.ErrWrongAuth) {
			t.Fatalf("wrong PIN %d: %v", i, err)
		}
	}
	// The third wrong PIN blocks it; from then on even the right one is refused.
	if _, err := s.Unseal(ctx, blob, wrongAuth); !errors.Is(err, seal.ErrLocked) {
		t.Fatalf("third wrong PIN: %v, want ErrLocked", err)
	}
	if _, err := s.Unseal(ctx, blob, goodAuth); !errors.Is(err, seal.ErrLocked) {
		t.Fatalf("right PIN on a blocked YubiKey: %v, want ErrLocked", err)
	}

	// Malformed PINs are refused without costing a try.
	for _, pin := range []string{"", "123456789"} {
		if _, err := s.Unseal(ctx, blob, seal.Auth{PIN: pin}); !errors.Is(err, seal.ErrWrongAuth) {
			t.Fatalf("PIN %q: %v, want ErrWrongAuth", pin, err)
		}
	}
}

func TestDeviceMissing(t *testing.T) {
	r := newRig(t, 1003)
	s := r.sealer(t)
	secret := []byte("0123456789abcdef")
	blob := mustSeal(t, s, secret)
	ctx := context.Background()

	r.env.Remove(t, r.plug)
	if _, err := s.Unseal(ctx, blob, goodAuth); !errors.Is(err, seal.ErrDeviceMissing) {
		t.Fatalf("Unseal without the card: %v, want ErrDeviceMissing", err)
	}
	// Sealing to a known identity needs no card.
	if _, err := s.Seal(ctx, secret, seal.Auth{}); err != nil {
		t.Fatalf("Seal without the card but with an identity: %v", err)
	}
	// A fresh sealer needs the card for setup.
	if _, err := r.sealer(t).Seal(ctx, secret, goodAuth); !errors.Is(err, seal.ErrDeviceMissing) {
		t.Fatalf("setup without the card: %v, want ErrDeviceMissing", err)
	}
	// No pcscd at all.
	t.Setenv("PCSCLITE_CSOCK_NAME", t.TempDir()+"/none.comm")
	if _, err := s.Unseal(ctx, blob, goodAuth); !errors.Is(err, seal.ErrDeviceMissing) {
		t.Fatalf("Unseal without pcscd: %v, want ErrDeviceMissing", err)
	}
}

func TestOtherYubiKey(t *testing.T) {
	r := newRig(t, 1004)
	s := r.sealer(t)
	blob := mustSeal(t, s, []byte("0123456789abcdef"))
	r.env.Remove(t, r.plug)

	other := newCard(t, 1005)
	r.env.Insert(t, other)
	_, err := s.Unseal(context.Background(), blob, goodAuth)
	if !errors.Is(err, seal.ErrDeviceMissing) || !errors.Is(err, ErrWrongDevice) ||
		!strings.Contains(err.Error(), "1004") || !strings.Contains(err.Error(), "1005") {
		t.Fatalf("Unseal with another YubiKey: %v, want ErrDeviceMissing+ErrWrongDevice naming both serials", err)
	}
	if c := other.Counters(); c.Verifies != 0 {
		t.Fatalf("the other YubiKey was asked for the PIN %d times", c.Verifies)
	}
}

// openCard opens the rig's card with piv-go directly, as another tool would.
func openCard(tb testing.TB) *pivgo.YubiKey {
	tb.Helper()
	cards, err := pivgo.Cards()
	if err != nil {
		tb.Fatal(err)
	}
	for _, c := range cards {
		if strings.Contains(c, "Virtual PCD 00 00") {
			yk, err := pivgo.Open(c)
			if err != nil {
				tb.Fatal(err)
			}
			return yk
		}
	}
	tb.Fatalf("no vpcd reader in %q", cards)
	return nil
}

func TestKeyReplaced(t *testing.T) {
	r := newRig(t, 1006)
	s := r.sealer(t)
	blob := mustSeal(t, s, []byte("0123456789abcdef"))

	yk := openCard(t)
	if _, err := yk.GenerateKey(pivgo.DefaultManagementKey, pivgo.SlotKeyManagement,
		pivgo.Key{Algorithm: pivgo.AlgorithmEC256, PINPolicy: pivgo.PINPolicyAlways, TouchPolicy: pivgo.TouchPolicyNever}); err != nil {
		t.Fatal(err)
	}
	yk.Close()
	before := r.card.Counters().Verifies
	_, err := s.Unseal(context.Background(), blob, goodAuth)
	if !errors.Is(err, ErrKeyReplaced) {
		t.Fatalf("Unseal after the key was replaced: %v, want ErrKeyReplaced", err)
	}
	if n := r.card.Counters().Verifies - before; n != 0 {
		t.Fatalf("a PIN try was spent on a replaced key (%d verifies)", n)
	}
}

func TestAdoptsExistingKey(t *testing.T) {
	r := newRig(t, 1007)
	secret := []byte("0123456789abcdef")
	blob := mustSeal(t, r.sealer(t), secret)

	// A second sealer (e.g. after a reboot) adopts the key instead of replacing it, and
	// opens the first one's blobs.
	s2 := r.sealer(t)
	id, err := s2.Setup(context.Background(), goodAuth)
	if err != nil {
		t.Fatal(err)
	}
	if c := r.card.Counters(); c.Generates != 1 {
		t.Fatalf("second setup generated again (%d generates)", c.Generates)
	}
	if first, _ := IdentityOf(blob, rootCA(t).Pool()); !first.PublicKey.Equal(id.PublicKey) {
		t.Fatal("second setup uses another key")
	}
	if got, err := s2.Unseal(context.Background(), blob, goodAuth); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Unseal with the second sealer: %v", err)
	}
	// Setup checks the PIN.
	if _, err := r.sealer(t).Setup(context.Background(), wrongAuth); !errors.Is(err, seal.ErrWrongAuth) {
		t.Fatalf("Setup with a wrong PIN: %v, want ErrWrongAuth", err)
	}
}

func TestRefusesUnprotectedKey(t *testing.T) {
	r := newRig(t, 1008)
	yk := openCard(t)
	if _, err := yk.GenerateKey(pivgo.DefaultManagementKey, pivgo.SlotKeyManagement,
		pivgo.Key{Algorithm: pivgo.AlgorithmEC256, PINPolicy: pivgo.PINPolicyNever, TouchPolicy: pivgo.TouchPolicyNever}); err != nil {
		t.Fatal(err)
	}
	yk.Close()
	ctx := context.Background()
	if _, err := r.sealer(t).Setup(ctx, goodAuth); !errors.Is(err, ErrSlotUnusable) {
		t.Fatalf("Setup over a key without PIN policy: %v, want ErrSlotUnusable", err)
	}
	cfg := r.config(t)
	cfg.Overwrite = true
	cfg.PINPolicy = pivgo.PINPolicyOnce
	s := New(cfg)
	id, err := s.Setup(ctx, goodAuth)
	if err != nil {
		t.Fatalf("Setup with Overwrite: %v", err)
	}
	if id.PINPolicy != pivgo.PINPolicyOnce {
		t.Fatalf("PIN policy %v, want once", id.PINPolicy)
	}
	secret := []byte("0123456789abcdef")
	blob := mustSeal(t, s, secret)
	if got, err := s.Unseal(ctx, blob, goodAuth); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Unseal with PIN policy once: %v", err)
	}
}

func TestManagementKeyRefused(t *testing.T) {
	r := newRig(t, 1009)
	cfg := r.config(t)
	cfg.ManagementKey = bytes.Repeat([]byte{9}, 24)
	if _, err := New(cfg).Setup(context.Background(), goodAuth); !errors.Is(err, ErrManagementKey) {
		t.Fatalf("Setup with a wrong management key: %v, want ErrManagementKey", err)
	}
}

func TestTouchPolicy(t *testing.T) {
	r := newRig(t, 1010)
	cfg := r.config(t)
	cfg.TouchPolicy = pivgo.TouchPolicyAlways
	s := New(cfg)
	secret := []byte("0123456789abcdef")
	blob := mustSeal(t, s, secret)
	if s.Identity().TouchPolicy != pivgo.TouchPolicyAlways {
		t.Fatalf("touch policy not recorded: %v", s.Identity())
	}
	r.card.SetTouch(func() bool { return false })
	if _, err := s.Unseal(context.Background(), blob, goodAuth); !errors.Is(err, ErrTouch) {
		t.Fatalf("Unseal without touch: %v, want ErrTouch", err)
	}
	r.card.SetTouch(func() bool { return true })
	if got, err := s.Unseal(context.Background(), blob, goodAuth); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Unseal with touch: %v", err)
	}
	if c := r.card.Counters(); c.Touches != 2 {
		t.Fatalf("touches = %d, want 2", c.Touches)
	}
}

func TestSealWithIdentityOnly(t *testing.T) {
	r := newRig(t, 1011)
	first := mustSeal(t, r.sealer(t), []byte("first secret 16B"))
	id, err := IdentityOf(first, rootCA(t).Pool())
	if err != nil {
		t.Fatal(err)
	}
	r.env.Remove(t, r.plug)

	cfg := r.config(t)
	cfg.Identity = id
	s := New(cfg)
	secret := []byte("second secret 32 bytes long.....")
	blob := mustSeal(t, s, secret)

	r.env.Insert(t, r.card)
	if got, err := s.Unseal(context.Background(), blob, goodAuth); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Unseal of a blob sealed without the card: %v", err)
	}
}
