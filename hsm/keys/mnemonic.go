package keys

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"strings"

	"github.com/tyler-smith/go-bip39/wordlists"
)

// BIP39 errors. Callers can tell them apart with errors.Is / errors.As; none of them carries a
// word of the mnemonic in its message (see WordError).
var (
	// ErrChecksum: every word is in the list but the last bits (the checksum) do not match the
	// rest, so a word is wrong, missing, extra, or two words are swapped.
	ErrChecksum = errors.New("keys: mnemonic checksum does not match: a word is wrong, missing or out of order")
	// ErrWordCount: a mnemonic has 12, 15, 18, 21 or 24 words (generation makes 12 or 24).
	ErrWordCount = errors.New("keys: a BIP39 mnemonic has 12, 15, 18, 21 or 24 words")
	// ErrEntropyLength: entropy is 16 to 32 bytes, a multiple of 4.
	ErrEntropyLength = errors.New("keys: BIP39 entropy must be 16, 20, 24, 28 or 32 bytes")
	// ErrPassphraseNotASCII: BIP39 normalizes the passphrase to Unicode NFKD before hashing. This
	// package has no Unicode tables (golang.org/x/text is not a dependency), and ASCII is the only
	// text whose NFKD form is itself, so other passphrases are refused rather than hashed in a
	// form another wallet would not reproduce.
	ErrPassphraseNotASCII = errors.New("keys: the BIP39 passphrase must be ASCII (non-ASCII passphrases need NFKD normalization, which this build does not do)")
)

// WordError reports a mnemonic word that is not in the BIP39 English wordlist. Its message gives
// the word's position only, never the word, because a misspelt seed word is still most of a
// seed word and error messages end up in logs. The UI can show Word back to the owner.
type WordError struct {
	Position int    // 1-based position of the word in the mnemonic
	Word     string // the word as typed (after lower-casing); do not log it
}

func (e *WordError) Error() string {
	return fmt.Sprintf("keys: word %d of the mnemonic is not in the BIP39 English wordlist", e.Position)
}

// englishWords is this package's own copy of the BIP39 English list: go-bip39 keeps its list in
// a package variable that any importer may replace (bip39.SetWordList) or modify.
var (
	englishWords [2048]string
	englishIndex = make(map[string]uint16, 2048)
)

func init() {
	if len(wordlists.English) != len(englishWords) {
		panic("keys: go-bip39's English wordlist does not have 2048 words")
	}
	for i, w := range wordlists.English {
		englishWords[i] = w
		englishIndex[w] = uint16(i)
	}
	if len(englishIndex) != len(englishWords) {
		panic("keys: go-bip39's English wordlist has duplicate words")
	}
}

// Mnemonic is a BIP39 mnemonic held as its entropy. It is secret: its String method is redacted,
// and the owner calls Zero when done. The zero value and a zeroed Mnemonic are unusable.
type Mnemonic struct {
	entropy []byte
}

// NewMnemonic generates a mnemonic of 12 or 24 words from crypto/rand. The caller zeroes it.
func NewMnemonic(words int) (*Mnemonic, error) {
	if words != 12 && words != 24 {
		return nil, fmt.Errorf("keys: generate 12 or 24 words, not %d", words)
	}
	entropy := make([]byte, words/3*4)
	if _, err := rand.Read(entropy); err != nil {
		return nil, fmt.Errorf("keys: reading random entropy: %w", err)
	}
	return &Mnemonic{entropy: entropy}, nil
}

// MnemonicFromEntropy returns the mnemonic of the given entropy (16 to 32 bytes, a multiple of
// 4). It copies entropy; the caller keeps and zeroes its own copy.
func MnemonicFromEntropy(entropy []byte) (*Mnemonic, error) {
	if len(entropy) < 16 || len(entropy) > 32 || len(entropy)%4 != 0 {
		return nil, ErrEntropyLength
	}
	return &Mnemonic{entropy: append([]byte(nil), entropy...)}, nil
}

// ParseMnemonic validates a mnemonic typed by the owner and returns it. Words may be separated
// by any run of white space and are matched case-insensitively against the English list; every
// word must be whole (no four-letter abbreviations). Errors: ErrWordCount, *WordError (the first
// unknown word), ErrChecksum. The caller zeroes the result.
func ParseMnemonic(phrase string) (*Mnemonic, error) {
	fields := strings.Fields(phrase)
	n := len(fields)
	if n < 12 || n > 24 || n%3 != 0 {
		return nil, ErrWordCount
	}
	idx := make([]uint16, n)
	defer clear(idx)
	for i, f := range fields {
		w := strings.ToLower(f)
		j, ok := englishIndex[w]
		if !ok {
			return nil, &WordError{Position: i + 1, Word: w}
		}
		idx[i] = j
	}
	// n words carry 11n bits: 32n/3 bits of entropy followed by n/3 bits of checksum.
	bits := make([]byte, (11*n+7)/8)
	defer clear(bits)
	for i, j := range idx {
		for b := 0; b < 11; b++ {
			if j&(1<<(10-b)) != 0 {
				pos := i*11 + b
				bits[pos/8] |= 0x80 >> (pos % 8)
			}
		}
	}
	entLen := n / 3 * 4
	entropy := append([]byte(nil), bits[:entLen]...)
	csBits := n / 3
	sum := sha256.Sum256(entropy)
	want := sum[0] >> (8 - csBits)
	got := bits[entLen] >> (8 - csBits)
	clear(sum[:])
	if want != got {
		clear(entropy)
		return nil, ErrChecksum
	}
	return &Mnemonic{entropy: entropy}, nil
}

// ValidateMnemonic reports whether phrase is a valid mnemonic, with the error ParseMnemonic
// would give. It keeps nothing.
func ValidateMnemonic(phrase string) error {
	m, err := ParseMnemonic(phrase)
	if err != nil {
		return err
	}
	m.Zero()
	return nil
}

// WordCount returns the number of words (0 once zeroed).
func (m *Mnemonic) WordCount() int { return len(m.entropy) * 3 / 4 }

// Entropy returns a copy of the mnemonic's entropy. The caller zeroes it.
func (m *Mnemonic) Entropy() []byte { return append([]byte(nil), m.entropy...) }

// Phrase returns the words separated by single spaces, lower case: the form BIP39 hashes and the
// form to show the owner for writing down. The caller zeroes it.
func (m *Mnemonic) Phrase() []byte {
	if !m.usable() {
		return nil
	}
	n := m.WordCount()
	cs := sha256.Sum256(m.entropy)
	defer clear(cs[:])
	// Entropy followed by its checksum byte; only the first n/3 bits of that byte are read.
	data := make([]byte, len(m.entropy)+1)
	defer clear(data)
	copy(data, m.entropy)
	data[len(m.entropy)] = cs[0]
	out := make([]byte, 0, n*9)
	for i := 0; i < n; i++ {
		var j uint16
		for b := 0; b < 11; b++ {
			pos := i*11 + b
			j <<= 1
			if data[pos/8]&(0x80>>(pos%8)) != 0 {
				j |= 1
			}
		}
		if i > 0 {
			out = append(out, ' ')
		}
		out = append(out, englishWords[j]...)
	}
	return out
}

// Seed derives the 64-byte BIP39 seed with PBKDF2-HMAC-SHA512 (2048 rounds, salt "mnemonic" +
// passphrase). An empty or nil passphrase is the usual "no passphrase". The passphrase must be
// ASCII (see ErrPassphraseNotASCII); the caller keeps and zeroes it. The caller zeroes the seed.
func (m *Mnemonic) Seed(passphrase []byte) ([]byte, error) {
	if !m.usable() {
		return nil, errors.New("keys: the mnemonic is empty or was zeroed")
	}
	for _, c := range passphrase {
		if c >= 0x80 {
			return nil, ErrPassphraseNotASCII
		}
	}
	phrase := m.Phrase()
	defer clear(phrase)
	salt := make([]byte, 0, len("mnemonic")+len(passphrase))
	salt = append(salt, "mnemonic"...)
	salt = append(salt, passphrase...)
	defer clear(salt)
	return pbkdf2SHA512(phrase, salt, 2048), nil
}

// Zero overwrites the entropy; the Mnemonic is unusable afterwards.
func (m *Mnemonic) Zero() {
	if m == nil {
		return
	}
	clear(m.entropy)
	m.entropy = nil
}

// String never shows the words.
func (m *Mnemonic) String() string {
	if m == nil || !m.usable() {
		return "keys.Mnemonic(empty)"
	}
	return fmt.Sprintf("keys.Mnemonic(%d words, redacted)", m.WordCount())
}

// GoString keeps %#v from printing the entropy.
func (m *Mnemonic) GoString() string { return m.String() }

func (m *Mnemonic) usable() bool {
	return m != nil && len(m.entropy) >= 16 && len(m.entropy) <= 32 && len(m.entropy)%4 == 0
}

// SeedFromMnemonic validates phrase and derives its seed with passphrase: ParseMnemonic followed
// by Seed, zeroing the intermediate entropy. The caller zeroes the seed.
func SeedFromMnemonic(phrase string, passphrase []byte) ([]byte, error) {
	m, err := ParseMnemonic(phrase)
	if err != nil {
		return nil, err
	}
	defer m.Zero()
	return m.Seed(passphrase)
}

// pbkdf2SHA512 is PBKDF2 (RFC 8018) with HMAC-SHA512 for a 64-byte key, which is exactly one
// block. It is written out here rather than taken from crypto/pbkdf2 because that function takes
// the password as a string, an immutable copy of the mnemonic that could never be cleared.
func pbkdf2SHA512(password, salt []byte, iter int) []byte {
	mac := hmac.New(sha512.New, password)
	mac.Write(salt)
	mac.Write([]byte{0, 0, 0, 1})
	u := mac.Sum(make([]byte, 0, sha512.Size))
	t := append([]byte(nil), u...)
	for i := 1; i < iter; i++ {
		mac.Reset()
		mac.Write(u)
		u = mac.Sum(u[:0])
		for k := range t {
			t[k] ^= u[k]
		}
	}
	clear(u)
	return t
}
