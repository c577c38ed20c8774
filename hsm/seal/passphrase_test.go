package seal_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/anya-edge/anya/hsm/seal"
	"github.com/anya-edge/anya/hsm/seal/sealtest"
	"golang.org/x/crypto/argon2"
)

// testArgon2 keeps the suite fast; the format and code path are the production ones.
var testArgon2 = seal.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}

func newTestPassphrase(t testing.TB) *seal.Passphrase {
	t.Helper()
	// Limits low enough that a flipped parameter bit cannot make a test derive with gigabytes.
	p, err := seal.NewPassphrase(seal.WithArgon2(testArgon2),
		seal.WithArgon2Limits(seal.Argon2Params{Time: 4, MemoryKiB: 1024, Threads: 4}))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPassphraseConformance(t *testing.T) {
	sealtest.Run(t, func(t *testing.T) seal.Sealer { return newTestPassphrase(t) },
		seal.Auth{Passphrase: []byte("correct horse battery staple")},
		seal.Auth{Passphrase: []byte("correct horse battery stapler")})
}

func TestPassphraseEmpty(t *testing.T) {
	p := newTestPassphrase(t)
	ctx := context.Background()
	tests := []struct {
		name string
		auth seal.Auth
	}{
		{"nil", seal.Auth{}},
		{"empty", seal.Auth{Passphrase: []byte{}}},
		{"PIN only", seal.Auth{PIN: "1234"}},
	}
	blob, err := p.Seal(ctx, []byte("0123456789abcdef"), seal.Auth{Passphrase: []byte("pw")})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := p.Seal(ctx, []byte("0123456789abcdef"), tc.auth); !errors.Is(err, seal.ErrEmptyPassphrase) {
				t.Errorf("Seal: err = %v, want ErrEmptyPassphrase", err)
			}
			_, err := p.Unseal(ctx, blob, tc.auth)
			if !errors.Is(err, seal.ErrWrongAuth) || !errors.Is(err, seal.ErrEmptyPassphrase) {
				t.Errorf("Unseal: err = %v, want ErrWrongAuth and ErrEmptyPassphrase", err)
			}
		})
	}
}

func TestPassphraseParams(t *testing.T) {
	ctx := context.Background()
	auth := seal.Auth{Passphrase: []byte("pw")}
	tests := []struct {
		name    string
		params  seal.Argon2Params
		wantErr bool
	}{
		{"tiny", seal.Argon2Params{Time: 1, MemoryKiB: 8, Threads: 1}, false},
		{"two lanes", seal.Argon2Params{Time: 2, MemoryKiB: 256, Threads: 2}, false},
		{"zero time", seal.Argon2Params{Time: 0, MemoryKiB: 64, Threads: 1}, true},
		{"zero threads", seal.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 0}, true},
		{"memory below 8*p", seal.Argon2Params{Time: 1, MemoryKiB: 15, Threads: 2}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := seal.NewPassphrase(seal.WithArgon2(tc.params))
			if (err != nil) != tc.wantErr {
				t.Fatalf("NewPassphrase: err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			blob, err := p.Seal(ctx, []byte("0123456789abcdef"), auth)
			if err != nil {
				t.Fatal(err)
			}
			// Parameters travel in the blob: another instance with other defaults opens it.
			got, err := newTestPassphrase(t).Unseal(ctx, blob, auth)
			if err != nil || string(got) != "0123456789abcdef" {
				t.Fatalf("Unseal by a differently configured provider: %v", err)
			}
		})
	}
}

// TestPassphraseLimits: a blob asking for more than the limits is refused before deriving.
func TestPassphraseLimits(t *testing.T) {
	ctx := context.Background()
	auth := seal.Auth{Passphrase: []byte("pw")}
	big, err := seal.NewPassphrase(seal.WithArgon2(seal.Argon2Params{Time: 1, MemoryKiB: 4096, Threads: 1}))
	if err != nil {
		t.Fatal(err)
	}
	blob, err := big.Seal(ctx, []byte("0123456789abcdef"), auth)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newTestPassphrase(t).Unseal(ctx, blob, auth); !errors.Is(err, seal.ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt for parameters above the limits", err)
	}
}

func TestPassphraseFormat(t *testing.T) {
	p := newTestPassphrase(t)
	blob, err := p.Seal(context.Background(), make([]byte, 32), seal.Auth{Passphrase: []byte("pw")})
	if err != nil {
		t.Fatal(err)
	}
	if blob.Kind != seal.KindPassphrase || blob.Version != 1 {
		t.Fatalf("blob = %q v%d", blob.Kind, blob.Version)
	}
	if want := 51 + 32 + 16 + 32; len(blob.Data) != want {
		t.Fatalf("len(Data) = %d, want %d", len(blob.Data), want)
	}
	head := []byte{1, 1, 0, 0, 0, 1, 0, 0, 0, 64, 1}
	if !bytes.Equal(blob.Data[:11], head) {
		t.Fatalf("header = %x, want %x", blob.Data[:11], head)
	}
}

// benchPassphrase is the production configuration (DefaultArgon2).
func benchPassphrase(b *testing.B) (*seal.Passphrase, seal.Auth, []byte) {
	b.Helper()
	p, err := seal.NewPassphrase()
	if err != nil {
		b.Fatal(err)
	}
	return p, seal.Auth{Passphrase: []byte("correct horse battery staple")}, bytes.Repeat([]byte{7}, 32)
}

func BenchmarkSeal(b *testing.B) {
	p, auth, secret := benchPassphrase(b)
	for b.Loop() {
		if _, err := p.Seal(context.Background(), secret, auth); err != nil {
			b.Fatal(err)
		}
	}
	reportMS(b)
}

func BenchmarkUnseal(b *testing.B) {
	p, auth, secret := benchPassphrase(b)
	blob, err := p.Seal(context.Background(), secret, auth)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := p.Unseal(context.Background(), blob, auth); err != nil {
			b.Fatal(err)
		}
	}
	reportMS(b)
}

// BenchmarkAnchorArgon2id is the same-run anchor: the bare derivation with DefaultArgon2, which
// Seal and Unseal should cost about 1.0x of.
func BenchmarkAnchorArgon2id(b *testing.B) {
	d := seal.DefaultArgon2
	salt := make([]byte, 16)
	for b.Loop() {
		argon2.IDKey([]byte("correct horse battery staple"), salt, d.Time, d.MemoryKiB, d.Threads, 32)
	}
	reportMS(b)
}

// BenchmarkArgon2 measures the candidate cost parameters (go test -bench Argon2 -benchtime 5x).
func BenchmarkArgon2(b *testing.B) {
	salt := make([]byte, 16)
	for _, p := range []seal.Argon2Params{
		{Time: 1, MemoryKiB: 64 << 10, Threads: 2},
		{Time: 2, MemoryKiB: 64 << 10, Threads: 2},
		{Time: 3, MemoryKiB: 64 << 10, Threads: 2},
		{Time: 3, MemoryKiB: 64 << 10, Threads: 1},
		{Time: 3, MemoryKiB: 128 << 10, Threads: 2},
		{Time: 4, MemoryKiB: 32 << 10, Threads: 2},
	} {
		b.Run(fmt.Sprintf("t=%d,m=%dMiB,p=%d", p.Time, p.MemoryKiB>>10, p.Threads), func(b *testing.B) {
			for b.Loop() {
				argon2.IDKey([]byte("pw"), salt, p.Time, p.MemoryKiB, p.Threads, 32)
			}
			reportMS(b)
		})
	}
}

func reportMS(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
}
