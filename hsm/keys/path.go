package keys

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Hardened is added to a child index for hardened derivation (BIP32: i ≥ 2^31).
const Hardened uint32 = 0x80000000

// Path is a BIP32 derivation path: child indexes from the key it starts at, hardened ones with
// Hardened added.
type Path []uint32

// PathError reports a derivation path that does not parse. Paths are not secret, so the message
// quotes the path (unless it is too long to be one).
type PathError struct {
	Path    string // the whole input
	Element int    // 1-based element after the optional "m", 0 when the path as a whole is wrong
	Reason  string
}

func (e *PathError) Error() string {
	p := fmt.Sprintf("%q", e.Path)
	if len(e.Path) > 64 {
		p = "(too long to show)" // whatever was pasted there, keep it out of logs
	}
	if e.Element == 0 {
		return fmt.Sprintf("keys: derivation path %s: %s", p, e.Reason)
	}
	return fmt.Sprintf("keys: derivation path %s, element %d: %s", p, e.Element, e.Reason)
}

// ParsePath reads a derivation path such as "m/84'/0'/0'/0/5", "m/84h/0h/0h" or "84H/0H". The
// leading "m" (or "M") is optional, "m" alone is the empty path, and a hardened step is marked
// with ', h or H. Indexes are decimal, at most 2^31-1 before the hardened mark. Empty elements
// ("m//1", a trailing "/") are errors.
func ParsePath(s string) (Path, error) {
	rest := s
	if rest == "m" || rest == "M" {
		return Path{}, nil
	}
	if strings.HasPrefix(rest, "m/") || strings.HasPrefix(rest, "M/") {
		rest = rest[2:]
	}
	if rest == "" {
		return nil, &PathError{Path: s, Reason: "empty path (use \"m\" for the master key itself)"}
	}
	elems := strings.Split(rest, "/")
	if len(elems) > 255 {
		return nil, &PathError{Path: s, Reason: "more than 255 levels (BIP32 depth is one byte)"}
	}
	p := make(Path, 0, len(elems))
	for i, e := range elems {
		v, err := parsePathElement(e, true)
		if err != "" {
			return nil, &PathError{Path: s, Element: i + 1, Reason: err}
		}
		p = append(p, v)
	}
	return p, nil
}

// parsePathElement reads one "NUM" or "NUMh" step; the error is a reason, "" on success.
func parsePathElement(e string, allowHardened bool) (uint32, string) {
	if e == "" {
		return 0, "empty element"
	}
	hard := false
	switch e[len(e)-1] {
	case '\'', 'h', 'H':
		hard = true
		e = e[:len(e)-1]
	}
	if hard && !allowHardened {
		return 0, "hardened step not allowed here"
	}
	v, err := parseIndex(e)
	if err != "" {
		return 0, err
	}
	if hard {
		v += Hardened
	}
	return v, ""
}

// parseIndex reads a decimal child number below 2^31 (digits only: no sign, no spaces).
func parseIndex(e string) (uint32, string) {
	if e == "" {
		return 0, "missing number"
	}
	if len(e) > 10 {
		return 0, "index out of range (at most 2147483647, then mark it hardened)"
	}
	for i := 0; i < len(e); i++ {
		if e[i] < '0' || e[i] > '9' {
			return 0, "not a decimal index (hardened marks are ', h or H)"
		}
	}
	v, err := strconv.ParseUint(e, 10, 32)
	if err != nil || v >= uint64(Hardened) {
		return 0, "index out of range (at most 2147483647, then mark it hardened)"
	}
	return uint32(v), ""
}

// String formats the path with the leading "m/" and "h" for hardened steps ("m/84h/0h/0h"),
// the notation descriptors use; the empty path is "m".
func (p Path) String() string {
	if len(p) == 0 {
		return "m"
	}
	return "m/" + p.steps()
}

// steps formats the path without "m/": "84h/0h/0h".
func (p Path) steps() string {
	var b strings.Builder
	for i, v := range p {
		if i > 0 {
			b.WriteByte('/')
		}
		writeIndex(&b, v)
	}
	return b.String()
}

func writeIndex(b *strings.Builder, v uint32) {
	if v >= Hardened {
		b.WriteString(strconv.FormatUint(uint64(v-Hardened), 10))
		b.WriteByte('h')
		return
	}
	b.WriteString(strconv.FormatUint(uint64(v), 10))
}

// Child returns a new path with the given steps appended; p is not modified.
func (p Path) Child(steps ...uint32) Path {
	out := make(Path, 0, len(p)+len(steps))
	out = append(out, p...)
	return append(out, steps...)
}

// Equal reports whether two paths have the same steps.
func (p Path) Equal(q Path) bool {
	if len(p) != len(q) {
		return false
	}
	for i := range p {
		if p[i] != q[i] {
			return false
		}
	}
	return true
}

// Fingerprint is the first four bytes of HASH160 of a public key (BIP32), used to name the
// master key in key origins.
type Fingerprint [4]byte

// String is eight lower-case hex digits, as in descriptors: "73c5da0a".
func (f Fingerprint) String() string { return hex.EncodeToString(f[:]) }

// ParseFingerprint reads eight hex digits (either case).
func ParseFingerprint(s string) (Fingerprint, error) {
	var f Fingerprint
	if len(s) != 8 {
		return f, fmt.Errorf("keys: a fingerprint is 8 hex digits, got %d characters", len(s))
	}
	if _, err := hex.Decode(f[:], []byte(s)); err != nil {
		return f, fmt.Errorf("keys: fingerprint %q is not hex", s)
	}
	return f, nil
}

// KeyOrigin says where an extended key comes from: the fingerprint of the master key and the
// path from it (BIP380 key origin).
type KeyOrigin struct {
	Fingerprint Fingerprint
	Path        Path
}

// String formats the origin as in descriptors: "[73c5da0a/84h/0h/0h]".
func (o KeyOrigin) String() string {
	if len(o.Path) == 0 {
		return "[" + o.Fingerprint.String() + "]"
	}
	return "[" + o.Fingerprint.String() + "/" + o.Path.steps() + "]"
}
