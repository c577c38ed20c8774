package sealtest_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/anya-edge/anya/hsm/seal"
	"github.com/anya-edge/anya/hsm/seal/sealtest"
)

// fake is a minimal provider (AES-GCM under SHA-256 of the passphrase: fine for a test, not a
// KDF for real use) with switchable defects, to check that the suite catches each of them.
type fake struct {
	defect string
	mu     sync.Mutex
	kept   map[string][]byte // "retains": blob nonce -> caller's secret slice
}

func (f *fake) Kind() string { return "fake" }

func (f *fake) aead(auth seal.Auth) cipher.AEAD {
	key := sha256.Sum256(auth.Passphrase)
	if f.defect == "ignoresAuth" {
		key = [32]byte{}
	}
	b, _ := aes.NewCipher(key[:])
	g, _ := cipher.NewGCM(b)
	return g
}

func (f *fake) Seal(_ context.Context, secret []byte, auth seal.Auth) (seal.Blob, error) {
	nonce := make([]byte, 12)
	if f.defect != "deterministic" {
		rand.Read(nonce)
	}
	if f.defect == "retains" {
		f.mu.Lock()
		f.kept[string(nonce)] = secret
		f.mu.Unlock()
	}
	return seal.Blob{Kind: "fake", Version: 1, Data: f.aead(auth).Seal(nonce, nonce, secret, nil)}, nil
}

func (f *fake) Unseal(_ context.Context, blob seal.Blob, auth seal.Auth) ([]byte, error) {
	if blob.Kind != "fake" && f.defect != "ignoresKind" {
		return nil, seal.ErrWrongKind
	}
	if blob.Version != 1 {
		return nil, seal.ErrCorrupt
	}
	if len(blob.Data) < 12 && f.defect != "panics" {
		return nil, seal.ErrCorrupt
	}
	nonce := blob.Data[:12]
	out, err := f.aead(auth).Open(nil, nonce, blob.Data[12:], nil)
	if err != nil {
		if f.defect == "corruptIsOther" {
			return nil, fmt.Errorf("open failed")
		}
		return nil, seal.ErrWrongAuth
	}
	if f.defect == "retains" {
		f.mu.Lock()
		defer f.mu.Unlock()
		if kept, ok := f.kept[string(nonce)]; ok {
			return kept, nil
		}
	}
	return out, nil
}

var (
	good  = seal.Auth{Passphrase: []byte("right")}
	wrong = seal.Auth{Passphrase: []byte("wrong")}
)

func runFake(t *testing.T, defect string) {
	sealtest.Run(t, func(t *testing.T) seal.Sealer {
		return &fake{defect: defect, kept: map[string][]byte{}}
	}, good, wrong, sealtest.CorruptMayBeWrongAuth())
}

// TestGoodProvider: a correct provider passes.
func TestGoodProvider(t *testing.T) {
	if d := os.Getenv("SEALTEST_DEFECT"); d != "" {
		runFake(t, d) // child process of TestSuiteCatchesDefects
		return
	}
	runFake(t, "")
}

// TestSuiteCatchesDefects runs the suite against each broken fake in a child test process
// (a failing subtest cannot be observed from inside the same test) and expects the named
// subtest to fail.
func TestSuiteCatchesDefects(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns test processes")
	}
	tests := []struct {
		defect   string
		wantFail string
	}{
		{"retains", "SecretNotRetained"},
		{"deterministic", "DistinctBlobs"},
		{"ignoresAuth", "WrongAuth"},
		{"ignoresKind", "WrongKind"},
		{"panics", "Corruption/Truncations"},
		{"corruptIsOther", "Corruption/BitFlips"},
	}
	for _, tc := range tests {
		t.Run(tc.defect, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestGoodProvider$", "-test.v")
			cmd.Env = append(os.Environ(), "SEALTEST_DEFECT="+tc.defect)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a provider with defect %q", tc.defect)
			}
			if !bytes.Contains(out, []byte("--- FAIL: TestGoodProvider/"+tc.wantFail)) {
				t.Fatalf("defect %q: subtest %s did not fail; output:\n%s", tc.defect, tc.wantFail, tail(out))
			}
		})
	}
}

func tail(out []byte) string {
	lines := strings.Split(string(out), "\n")
	return strings.Join(lines[max(0, len(lines)-30):], "\n")
}
