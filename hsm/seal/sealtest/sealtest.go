package sealtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/anya-edge/anya/hsm/seal"
)

// Option adjusts the suite for what a provider can and cannot do.
type Option func(*config)

type config struct {
	noAuth          bool
	corruptWrongOK  bool
	flipStride      int
	goroutines      int
	opsPerGoroutine int
}

// NoAuth declares a provider that ignores [seal.Auth] (e.g. a TPM sealing only to the boot
// state): the WrongAuth subtest is skipped.
func NoAuth() Option { return func(c *config) { c.noAuth = true } }

// CorruptMayBeWrongAuth declares a provider that cannot always tell a damaged blob from a wrong
// passphrase (an AEAD failure looks the same for both): Corruption then also accepts
// [seal.ErrWrongAuth].
func CorruptMayBeWrongAuth() Option { return func(c *config) { c.corruptWrongOK = true } }

// FlipStride tests only every n-th bit flip and truncation (n >= 1; default 1 = all of them),
// for providers whose Unseal is too slow to try every bit within a test budget. Bits are still
// spread over the whole blob; bit 0 and the last bit are always tried.
func FlipStride(n int) Option {
	return func(c *config) {
		if n >= 1 {
			c.flipStride = n
		}
	}
}

// Concurrency sets how many goroutines the Concurrent subtest runs (default 4) and how many
// Seal/Unseal pairs each does (default 3).
func Concurrency(goroutines, opsPerGoroutine int) Option {
	return func(c *config) {
		if goroutines >= 1 {
			c.goroutines = goroutines
		}
		if opsPerGoroutine >= 1 {
			c.opsPerGoroutine = opsPerGoroutine
		}
	}
}

// Run runs the conformance suite. auth must unseal what it sealed; wrong must differ from auth
// in what the provider checks (it is unused with [NoAuth]).
func Run(t *testing.T, newSealer func(t *testing.T) seal.Sealer, auth, wrong seal.Auth, opts ...Option) {
	t.Helper()
	cfg := config{flipStride: 1, goroutines: 4, opsPerGoroutine: 3}
	for _, o := range opts {
		o(&cfg)
	}
	ctx := context.Background()

	t.Run("RoundTrip", func(t *testing.T) {
		s := newSealer(t)
		for _, size := range []int{16, 32, 64} {
			t.Run(fmt.Sprintf("%dB", size), func(t *testing.T) {
				secret := randomSecret(t, size)
				blob := mustSeal(t, s, secret, auth)
				if blob.Kind != s.Kind() {
					t.Fatalf("blob.Kind = %q, sealer Kind() = %q", blob.Kind, s.Kind())
				}
				if bytes.Contains(blob.Data, secret) {
					t.Fatal("blob.Data contains the secret in the clear")
				}
				got := mustUnseal(t, s, blob, auth)
				if !bytes.Equal(got, secret) {
					t.Fatal("Unseal returned different bytes than were sealed")
				}
			})
		}
	})

	t.Run("DistinctBlobs", func(t *testing.T) {
		s := newSealer(t)
		secret := randomSecret(t, 32)
		a := mustSeal(t, s, secret, auth)
		b := mustSeal(t, s, secret, auth)
		if bytes.Equal(a.Data, b.Data) {
			t.Fatal("two seals of the same secret gave identical blobs")
		}
	})

	t.Run("WrongAuth", func(t *testing.T) {
		if cfg.noAuth {
			t.Skip("provider declared NoAuth")
		}
		s := newSealer(t)
		secret := randomSecret(t, 32)
		blob := mustSeal(t, s, secret, auth)
		got, err := s.Unseal(ctx, blob, wrong)
		checkFailure(t, "wrong auth", secret, got, err, seal.ErrWrongAuth)
		// The right auth still works afterwards.
		if got := mustUnseal(t, s, blob, auth); !bytes.Equal(got, secret) {
			t.Fatal("Unseal with the right auth after a wrong one returned different bytes")
		}
	})

	t.Run("Corruption", func(t *testing.T) {
		s := newSealer(t)
		secret := randomSecret(t, 32)
		blob := mustSeal(t, s, secret, auth)
		want := []error{seal.ErrCorrupt}
		if cfg.corruptWrongOK {
			want = append(want, seal.ErrWrongAuth)
		}
		try := func(t *testing.T, what string, b seal.Blob) {
			t.Helper()
			got, err := unsealNoPanic(ctx, s, b, auth)
			checkFailure(t, what, secret, got, err, want...)
		}
		nbits := len(blob.Data) * 8
		t.Run("BitFlips", func(t *testing.T) {
			for _, bit := range indices(nbits, cfg.flipStride) {
				b := cloneBlob(blob)
				b.Data[bit/8] ^= 1 << (bit % 8)
				try(t, fmt.Sprintf("flip of bit %d of %d", bit, nbits), b)
				if t.Failed() {
					return // one report is enough; the rest would repeat it
				}
			}
		})
		t.Run("Truncations", func(t *testing.T) {
			for _, n := range indices(len(blob.Data), cfg.flipStride) {
				b := cloneBlob(blob)
				b.Data = b.Data[:n]
				try(t, fmt.Sprintf("truncation to %d of %d bytes", n, len(blob.Data)), b)
				if t.Failed() {
					return
				}
			}
		})
		t.Run("TrailingByte", func(t *testing.T) {
			b := cloneBlob(blob)
			b.Data = append(b.Data, 0)
			try(t, "one extra trailing byte", b)
		})
		t.Run("NilData", func(t *testing.T) {
			b := cloneBlob(blob)
			b.Data = nil
			try(t, "nil data", b)
		})
		t.Run("Version", func(t *testing.T) {
			for _, v := range []int{blob.Version - 1, blob.Version + 1, 1 << 30} {
				b := cloneBlob(blob)
				b.Version = v
				got, err := unsealNoPanic(ctx, s, b, auth)
				checkFailure(t, fmt.Sprintf("version %d", v), secret, got, err, seal.ErrCorrupt)
			}
		})
		// The untouched blob still opens: the failures above were about the damage.
		if got := mustUnseal(t, s, blob, auth); !bytes.Equal(got, secret) {
			t.Fatal("the undamaged blob no longer unseals to the secret")
		}
	})

	t.Run("WrongKind", func(t *testing.T) {
		s := newSealer(t)
		secret := randomSecret(t, 32)
		blob := mustSeal(t, s, secret, auth)
		others := []string{"", "unknown"}
		for _, k := range []string{seal.KindPassphrase, seal.KindTPM, seal.KindPIV} {
			if k != s.Kind() {
				others = append(others, k)
			}
		}
		for _, k := range others {
			b := cloneBlob(blob)
			b.Kind = k
			got, err := unsealNoPanic(ctx, s, b, auth)
			checkFailure(t, fmt.Sprintf("kind %q", k), secret, got, err, seal.ErrWrongKind)
		}
	})

	t.Run("JSON", func(t *testing.T) {
		s := newSealer(t)
		secret := randomSecret(t, 32)
		blob := mustSeal(t, s, secret, auth)
		enc, err := json.Marshal(blob)
		if err != nil {
			t.Fatalf("json.Marshal: %v", err)
		}
		var back seal.Blob
		if err := json.Unmarshal(enc, &back); err != nil {
			t.Fatalf("json.Unmarshal: %v", err)
		}
		if back.Kind != blob.Kind || back.Version != blob.Version || !bytes.Equal(back.Data, blob.Data) {
			t.Fatal("blob changed through a JSON round trip")
		}
		if got := mustUnseal(t, s, back, auth); !bytes.Equal(got, secret) {
			t.Fatal("blob decoded from JSON unsealed to different bytes")
		}
	})

	t.Run("SecretNotRetained", func(t *testing.T) {
		s := newSealer(t)
		secret := randomSecret(t, 32)
		orig := bytes.Clone(secret)
		a := cloneAuth(auth)
		blob := mustSeal(t, s, secret, a)
		// Overwrite what the caller handed over, as a caller zeroing its buffers would.
		for i := range secret {
			secret[i] ^= 0xff
		}
		seal.Zero(a.Passphrase)
		got := mustUnseal(t, s, blob, auth)
		if !bytes.Equal(got, orig) {
			t.Fatal("Unseal result changed after the caller overwrote its secret buffer")
		}
		// The returned slice belongs to the caller: zeroing it must not affect the next Unseal.
		seal.Zero(got)
		if again := mustUnseal(t, s, blob, auth); !bytes.Equal(again, orig) {
			t.Fatal("zeroing one Unseal result changed the next one")
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := newSealer(t)
		var wg sync.WaitGroup
		errs := make(chan error, cfg.goroutines*cfg.opsPerGoroutine)
		for g := range cfg.goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range cfg.opsPerGoroutine {
					secret := make([]byte, 16+16*((g+i)%3))
					if _, err := rand.Read(secret); err != nil {
						errs <- err
						return
					}
					blob, err := s.Seal(ctx, secret, auth)
					if err != nil {
						errs <- fmt.Errorf("goroutine %d: Seal: %w", g, err)
						return
					}
					got, err := s.Unseal(ctx, blob, auth)
					if err != nil {
						errs <- fmt.Errorf("goroutine %d: Unseal: %w", g, err)
						return
					}
					if !bytes.Equal(got, secret) {
						errs <- fmt.Errorf("goroutine %d: Unseal returned another secret", g)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

// checkFailure asserts that an Unseal failed with one of want, returned no data and did not
// put the secret into the error text.
func checkFailure(t *testing.T, what string, secret, got []byte, err error, want ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: Unseal succeeded (returned %d bytes), want an error", what, len(got))
	}
	if len(got) != 0 {
		t.Fatalf("%s: Unseal returned %d bytes along with error %v", what, len(got), err)
	}
	ok := false
	for _, w := range want {
		if errors.Is(err, w) {
			ok = true
		}
	}
	if !ok {
		t.Fatalf("%s: error %q is none of %v", what, err, want)
	}
	msg := err.Error()
	if bytes.Contains([]byte(msg), secret) || bytes.Contains([]byte(msg), []byte(hex.EncodeToString(secret))) {
		t.Fatalf("%s: the error text contains the secret", what)
	}
}

func unsealNoPanic(ctx context.Context, s seal.Sealer, b seal.Blob, auth seal.Auth) (got []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			got, err = nil, fmt.Errorf("sealtest: Unseal panicked: %v", r)
		}
	}()
	return s.Unseal(ctx, b, auth)
}

func mustSeal(t *testing.T, s seal.Sealer, secret []byte, auth seal.Auth) seal.Blob {
	t.Helper()
	blob, err := s.Seal(context.Background(), secret, auth)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	return blob
}

func mustUnseal(t *testing.T, s seal.Sealer, blob seal.Blob, auth seal.Auth) []byte {
	t.Helper()
	got, err := s.Unseal(context.Background(), blob, auth)
	if err != nil {
		t.Fatalf("Unseal: %v", err)
	}
	return got
}

func randomSecret(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func cloneBlob(b seal.Blob) seal.Blob {
	b.Data = bytes.Clone(b.Data)
	return b
}

func cloneAuth(a seal.Auth) seal.Auth {
	a.Passphrase = bytes.Clone(a.Passphrase)
	return a
}

// indices returns 0, stride, 2*stride, ... below n, plus n-1.
func indices(n, stride int) []int {
	var out []int
	for i := 0; i < n; i += stride {
		out = append(out, i)
	}
	if n > 0 && out[len(out)-1] != n-1 {
		out = append(out, n-1)
	}
	return out
}
