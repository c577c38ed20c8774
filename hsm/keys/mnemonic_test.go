package keys

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/tyler-smith/go-bip39"
)

// trezorVector is one entry of testdata/bip39-vectors.json: entropy, mnemonic, seed with
// passphrase "TREZOR", master xprv.
type trezorVector struct {
	entropy, mnemonic, seed, xprv string
}

func loadTrezorVectors(t *testing.T) []trezorVector {
	t.Helper()
	raw, err := os.ReadFile("testdata/bip39-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var file map[string][][]string
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	var out []trezorVector
	for _, v := range file["english"] {
		if len(v) != 4 {
			t.Fatalf("vector with %d fields", len(v))
		}
		out = append(out, trezorVector{v[0], v[1], v[2], v[3]})
	}
	if len(out) != 24 {
		t.Fatalf("expected the 24 English vectors, got %d", len(out))
	}
	return out
}

func TestBIP39TrezorVectors(t *testing.T) {
	for _, v := range loadTrezorVectors(t) {
		name := v.entropy
		t.Run(name[:8]+fmt.Sprint(len(name)/2), func(t *testing.T) {
			entropy, _ := hex.DecodeString(v.entropy)

			m, err := MnemonicFromEntropy(entropy)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(m.Phrase()); got != v.mnemonic {
				t.Errorf("phrase\n got %s\nwant %s", got, v.mnemonic)
			}

			p, err := ParseMnemonic(v.mnemonic)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(p.Entropy(), entropy) {
				t.Errorf("entropy %x, want %s", p.Entropy(), v.entropy)
			}
			seed, err := p.Seed([]byte("TREZOR"))
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(seed) != v.seed {
				t.Errorf("seed %x, want %s", seed, v.seed)
			}
			master, err := NewMasterKey(seed, Mainnet)
			if err != nil {
				t.Fatal(err)
			}
			xprv, _ := master.Serialize()
			if string(xprv) != v.xprv {
				t.Errorf("xprv %s, want %s", xprv, v.xprv)
			}

			// go-bip39 agrees on every step.
			if s, _ := bip39.NewMnemonic(entropy); s != v.mnemonic {
				t.Errorf("go-bip39 mnemonic %s", s)
			}
			if s := bip39.NewSeed(v.mnemonic, "TREZOR"); !bytes.Equal(s, seed) {
				t.Errorf("go-bip39 seed %x", s)
			}
		})
	}
}

func TestParseMnemonicErrors(t *testing.T) {
	tests := []struct {
		name, phrase string
		wantErr      error
		wantPos      int // for *WordError
	}{
		{"empty", "", ErrWordCount, 0},
		{"11 words", strings.Repeat("abandon ", 10) + "about", ErrWordCount, 0},
		{"13 words", strings.Repeat("abandon ", 12) + "about", ErrWordCount, 0},
		{"27 words", strings.Repeat("abandon ", 26) + "art", ErrWordCount, 0},
		{"unknown word", "abandon abandon abandon abandon abandn abandon abandon abandon abandon abandon abandon about", nil, 5},
		{"abbreviation", "aban abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about", nil, 1},
		{"non-ASCII word", "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abóut", nil, 12},
		{"checksum", strings.TrimSpace(strings.Repeat("abandon ", 12)), ErrChecksum, 0},
		{"swapped words", "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about abandon", ErrChecksum, 0},
		{"24-word checksum", strings.Repeat("zoo ", 23) + "wrong", ErrChecksum, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseMnemonic(tt.phrase)
			if err == nil {
				t.Fatalf("accepted: %v", m)
			}
			if ValidateMnemonic(tt.phrase) == nil {
				t.Error("ValidateMnemonic accepted it")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantPos != 0 {
				var we *WordError
				if !errors.As(err, &we) {
					t.Fatalf("err = %v, want *WordError", err)
				}
				if we.Position != tt.wantPos {
					t.Errorf("position %d, want %d", we.Position, tt.wantPos)
				}
				if we.Word == "" || strings.Contains(err.Error(), we.Word) {
					t.Errorf("message %q must name the position, not the word %q", err, we.Word)
				}
				if !strings.Contains(err.Error(), fmt.Sprintf("word %d ", tt.wantPos)) {
					t.Errorf("message %q does not name the position", err)
				}
			}
		})
	}
}

func TestParseMnemonicNormalizes(t *testing.T) {
	const want = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
	for _, in := range []string{
		want,
		"  ABANDON Abandon abandon\tabandon\nabandon abandon  abandon abandon abandon abandon abandon About\n",
	} {
		m, err := ParseMnemonic(in)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if got := string(m.Phrase()); got != want {
			t.Errorf("%q normalized to %q", in, got)
		}
	}
}

func TestNewMnemonic(t *testing.T) {
	for _, n := range []int{12, 24} {
		a, err := NewMnemonic(n)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := NewMnemonic(n)
		if a.WordCount() != n || len(strings.Fields(string(a.Phrase()))) != n {
			t.Errorf("%d words asked, got %d", n, a.WordCount())
		}
		if bytes.Equal(a.Entropy(), b.Entropy()) {
			t.Error("two generated mnemonics are equal")
		}
		if !bip39.IsMnemonicValid(string(a.Phrase())) {
			t.Error("go-bip39 rejects a generated mnemonic")
		}
		if _, err := ParseMnemonic(string(a.Phrase())); err != nil {
			t.Error(err)
		}
	}
	for _, n := range []int{0, 11, 15, 18, 21, 25} {
		if _, err := NewMnemonic(n); err == nil {
			t.Errorf("NewMnemonic(%d) accepted", n)
		}
	}
	for _, n := range []int{0, 15, 33, 64} {
		if _, err := MnemonicFromEntropy(make([]byte, n)); !errors.Is(err, ErrEntropyLength) {
			t.Errorf("MnemonicFromEntropy(%d bytes): %v", n, err)
		}
	}
}

// TestMnemonicAgainstGoBIP39 compares every word count, random entropy and random ASCII
// passphrases with go-bip39, an independent implementation.
func TestMnemonicAgainstGoBIP39(t *testing.T) {
	for i := 0; i < 40; i++ {
		size := 16 + 4*(i%5)
		entropy := make([]byte, size)
		rand.Read(entropy)
		pass := make([]byte, i%7)
		for j := range pass {
			pass[j] = byte(0x20 + (int(entropy[j]) % 95))
		}
		m, err := MnemonicFromEntropy(entropy)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := bip39.NewMnemonic(entropy)
		if got := string(m.Phrase()); got != want {
			t.Fatalf("phrase %q, go-bip39 %q", got, want)
		}
		back, err := bip39.EntropyFromMnemonic(want)
		if err != nil || !bytes.Equal(back, entropy) {
			t.Fatalf("go-bip39 entropy %x %v", back, err)
		}
		seed, err := SeedFromMnemonic(want, pass)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(seed, bip39.NewSeed(want, string(pass))) {
			t.Fatalf("seed differs from go-bip39 for passphrase %q", pass)
		}
	}
}

func TestMnemonicSecrets(t *testing.T) {
	const phrase = "legal winner thank year wave sausage worth useful legal winner thank yellow"
	m, err := ParseMnemonic(phrase)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{m.String(), fmt.Sprint(m), fmt.Sprintf("%v %+v %#v %s", m, m, m, m)} {
		for _, w := range []string{"legal", "winner", "yellow", "7f7f"} {
			if strings.Contains(s, w) {
				t.Errorf("%q shows %q", s, w)
			}
		}
	}
	if _, err := m.Seed([]byte("Passwört")); !errors.Is(err, ErrPassphraseNotASCII) {
		t.Errorf("non-ASCII passphrase: %v", err)
	}
	m.Zero()
	if _, err := m.Seed(nil); err == nil {
		t.Error("a zeroed mnemonic still gives a seed")
	}
	if m.Phrase() != nil || m.WordCount() != 0 {
		t.Error("a zeroed mnemonic still has words")
	}
	var nilM *Mnemonic
	nilM.Zero() // must not panic
	_ = nilM.String()
}

func TestEnglishWordlist(t *testing.T) {
	if englishWords[0] != "abandon" || englishWords[2047] != "zoo" {
		t.Fatalf("first/last words %q %q", englishWords[0], englishWords[2047])
	}
	prefixes := map[string]bool{}
	for i, w := range englishWords {
		if i > 0 && englishWords[i-1] >= w {
			t.Errorf("not sorted at %d", i)
		}
		p := w
		if len(p) > 4 {
			p = p[:4]
		}
		if prefixes[p] {
			t.Errorf("prefix %q is not unique", p)
		}
		prefixes[p] = true
	}
}
