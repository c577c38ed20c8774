package keys

import (
	"errors"
	"fmt"
	"strings"
)

// Descriptor checksum (BIP380). The polymod, character groups and generator are the ones of the
// BIP's Python reference; they are written out here because no dependency of this module has
// them.

const (
	descInputCharset    = "0123456789()[],'/*abcdefgh@:$%{}IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~ijklmnopqrstuvwxyzABCDEFGH`#\"\\ "
	descChecksumCharset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
)

var descGenerator = [5]uint64{0xf5dee51989, 0xa9fdca3312, 0x1bab10e32d, 0x3706b1677a, 0x644d626ffd}

func descPolymod(chk uint64, value uint64) uint64 {
	top := chk >> 35
	chk = (chk&0x7ffffffff)<<5 ^ value
	for i := 0; i < 5; i++ {
		if (top>>i)&1 != 0 {
			chk ^= descGenerator[i]
		}
	}
	return chk
}

// DescriptorChecksum returns the 8-character BIP380 checksum of a descriptor given without its
// "#checksum". It fails on a character outside the descriptor character set; the error gives the
// character's position, not the text.
func DescriptorChecksum(desc string) (string, error) {
	chk := uint64(1)
	var groups [3]uint64
	n := 0
	for i := 0; i < len(desc); i++ {
		v := strings.IndexByte(descInputCharset, desc[i])
		if v < 0 {
			return "", fmt.Errorf("keys: descriptor has a character outside the descriptor character set at byte %d", i)
		}
		chk = descPolymod(chk, uint64(v&31))
		groups[n] = uint64(v >> 5)
		n++
		if n == 3 {
			chk = descPolymod(chk, groups[0]*9+groups[1]*3+groups[2])
			n = 0
		}
	}
	switch n {
	case 1:
		chk = descPolymod(chk, groups[0])
	case 2:
		chk = descPolymod(chk, groups[0]*3+groups[1])
	}
	for i := 0; i < 8; i++ {
		chk = descPolymod(chk, 0)
	}
	chk ^= 1
	var out [8]byte
	for i := 0; i < 8; i++ {
		out[i] = descChecksumCharset[(chk>>(5*(7-i)))&31]
	}
	return string(out[:]), nil
}

// AddChecksum returns desc + "#" + its checksum. desc must not already have one.
func AddChecksum(desc string) (string, error) {
	if strings.Contains(desc, "#") {
		return "", errors.New("keys: descriptor already has a '#'")
	}
	sum, err := DescriptorChecksum(desc)
	if err != nil {
		return "", err
	}
	return desc + "#" + sum, nil
}

// SplitChecksum separates "body#checksum" and verifies the checksum. A descriptor without '#'
// is returned with an empty checksum (BIP380 makes the checksum optional).
func SplitChecksum(s string) (body, checksum string, err error) {
	body, checksum, has := strings.Cut(s, "#")
	if _, err := DescriptorChecksum(body); err != nil {
		return "", "", err
	}
	if !has {
		return body, "", nil
	}
	if strings.Contains(checksum, "#") {
		return "", "", errors.New("keys: descriptor has more than one '#'")
	}
	if len(checksum) != 8 {
		return "", "", fmt.Errorf("keys: descriptor checksum must be 8 characters, not %d", len(checksum))
	}
	want, _ := DescriptorChecksum(body)
	if checksum != want {
		return "", "", errors.New("keys: descriptor checksum does not match (the descriptor was altered or mistyped)")
	}
	return body, checksum, nil
}

// ScriptType is the kind of output a descriptor describes; only the ones this package emits.
type ScriptType int

// Script types.
const (
	ScriptPKH            ScriptType = iota + 1 // pkh(KEY)
	ScriptSHWPKH                               // sh(wpkh(KEY))
	ScriptWPKH                                 // wpkh(KEY)
	ScriptTR                                   // tr(KEY), key path only
	ScriptWSHSortedMulti                       // wsh(sortedmulti(k,KEY,…))
)

func (t ScriptType) String() string {
	switch t {
	case ScriptPKH:
		return "pkh"
	case ScriptSHWPKH:
		return "sh(wpkh)"
	case ScriptWPKH:
		return "wpkh"
	case ScriptTR:
		return "tr"
	case ScriptWSHSortedMulti:
		return "wsh(sortedmulti)"
	}
	return fmt.Sprintf("ScriptType(%d)", int(t))
}

// PathStep is one derivation step after an extended key: a single unhardened index, or (BIP389)
// several alternatives, one per expanded descriptor.
type PathStep []uint32

// DescriptorKey is a key expression: [origin]xpub/steps[/*].
type DescriptorKey struct {
	Origin   *KeyOrigin // nil when the expression has none
	XPub     *XPub
	Steps    []PathStep // unhardened steps after XPub; at most one has several alternatives
	Wildcard bool       // a final /*: one output per child index
}

// Descriptor is a parsed or built output descriptor of one of the ScriptTypes.
type Descriptor struct {
	Type      ScriptType
	Threshold int // ScriptWSHSortedMulti only
	Keys      []DescriptorKey
}

// Limits that keep parsing of untrusted input cheap.
const (
	maxDescriptorLen = 16 << 10 // bytes
	maxKeySteps      = 32       // derivation steps after an extended key
	maxMultipath     = 16       // alternatives in a <…;…> step
)

// String returns the descriptor in canonical form with its checksum: plain xpub/tpub keys, "h"
// for hardened origin steps, lower-case fingerprints.
func (d *Descriptor) String() string {
	s := d.body()
	sum, err := DescriptorChecksum(s)
	if err != nil {
		return s // unreachable: the canonical form only uses charset characters
	}
	return s + "#" + sum
}

func (d *Descriptor) body() string {
	var b strings.Builder
	keys := func() {
		for i, k := range d.Keys {
			if i > 0 {
				b.WriteByte(',')
			}
			k.write(&b)
		}
	}
	switch d.Type {
	case ScriptPKH:
		b.WriteString("pkh(")
		keys()
		b.WriteString(")")
	case ScriptSHWPKH:
		b.WriteString("sh(wpkh(")
		keys()
		b.WriteString("))")
	case ScriptWPKH:
		b.WriteString("wpkh(")
		keys()
		b.WriteString(")")
	case ScriptTR:
		b.WriteString("tr(")
		keys()
		b.WriteString(")")
	case ScriptWSHSortedMulti:
		fmt.Fprintf(&b, "wsh(sortedmulti(%d", d.Threshold)
		if len(d.Keys) > 0 {
			b.WriteByte(',')
		}
		keys()
		b.WriteString("))")
	default:
		fmt.Fprintf(&b, "unknown(%d)", int(d.Type))
	}
	return b.String()
}

func (k *DescriptorKey) write(b *strings.Builder) {
	if k.Origin != nil {
		b.WriteString(k.Origin.String())
	}
	if k.XPub != nil {
		b.WriteString(k.XPub.String())
	}
	for _, st := range k.Steps {
		b.WriteByte('/')
		if len(st) == 1 {
			writeIndex(b, st[0])
			continue
		}
		b.WriteByte('<')
		for i, v := range st {
			if i > 0 {
				b.WriteByte(';')
			}
			writeIndex(b, v)
		}
		b.WriteByte('>')
	}
	if k.Wildcard {
		b.WriteString("/*")
	}
}

// Multipath returns how many descriptors d stands for: the length of its <…> tuples (BIP389),
// or 1 when it has none.
func (d *Descriptor) Multipath() int {
	for _, k := range d.Keys {
		for _, st := range k.Steps {
			if len(st) > 1 {
				return len(st)
			}
		}
	}
	return 1
}

// Singles expands a multipath descriptor into the descriptors it stands for, in order (for
// <0;1>: receive, then change). A descriptor without <…> comes back as itself.
func (d *Descriptor) Singles() []*Descriptor {
	n := d.Multipath()
	out := make([]*Descriptor, n)
	for alt := 0; alt < n; alt++ {
		e := &Descriptor{Type: d.Type, Threshold: d.Threshold, Keys: make([]DescriptorKey, len(d.Keys))}
		for i, k := range d.Keys {
			nk := k
			nk.Steps = make([]PathStep, len(k.Steps))
			for j, st := range k.Steps {
				if len(st) > 1 {
					nk.Steps[j] = PathStep{st[alt]}
				} else {
					nk.Steps[j] = append(PathStep(nil), st...)
				}
			}
			e.Keys[i] = nk
		}
		out[alt] = e
	}
	return out
}

// IsRange reports whether the descriptor has a /* (one output per index).
func (d *Descriptor) IsRange() bool {
	for _, k := range d.Keys {
		if k.Wildcard {
			return true
		}
	}
	return false
}

// DeriveAddress returns the output at index (which must be 0 for a descriptor without /*) on
// net. A multipath descriptor must be expanded with Singles first.
func (d *Descriptor) DeriveAddress(net Network, index uint32) (*Address, error) {
	if err := net.check(); err != nil {
		return nil, err
	}
	if d.Multipath() != 1 {
		return nil, errors.New("keys: a multipath descriptor stands for several; expand it with Singles")
	}
	if index >= Hardened {
		return nil, fmt.Errorf("keys: index %d is out of range for unhardened derivation", index)
	}
	if !d.IsRange() && index != 0 {
		return nil, errors.New("keys: the descriptor has no /*, so it has only index 0")
	}
	pubkeys := make([][]byte, 0, len(d.Keys))
	for i, k := range d.Keys {
		if k.XPub == nil {
			return nil, fmt.Errorf("keys: key %d has no extended public key", i+1)
		}
		if k.XPub.IsMainnet() != net.IsMainnet() {
			return nil, fmt.Errorf("keys: key %d: %w", i+1, ErrWrongNetwork)
		}
		p := make(Path, 0, len(k.Steps)+1)
		for _, st := range k.Steps {
			if len(st) != 1 {
				return nil, errors.New("keys: malformed derivation step")
			}
			p = append(p, st[0])
		}
		if k.Wildcard {
			p = append(p, index)
		}
		child, err := k.XPub.Derive(p)
		if err != nil {
			return nil, err
		}
		pubkeys = append(pubkeys, child.PublicKey())
	}
	return buildAddress(d.Type, d.Threshold, pubkeys, net.Params())
}

// DescriptorError reports a descriptor that does not parse. It gives a byte offset and a reason
// and never quotes the input, which could hold a pasted private key.
type DescriptorError struct {
	Offset int // byte offset in the descriptor (before any '#')
	Reason string
}

func (e *DescriptorError) Error() string {
	return fmt.Sprintf("keys: descriptor, at byte %d: %s", e.Offset, e.Reason)
}

// ParseDescriptor parses the descriptors this package emits: pkh(KEY), sh(wpkh(KEY)),
// wpkh(KEY), tr(KEY) and wsh(sortedmulti(k,KEY,…)), where KEY is [fingerprint/path]xpub (or tpub)
// followed by unhardened steps, at most one BIP389 <a;b;…> step and an optional /*. The checksum
// is optional but verified when present. Hardened markers ', h and H are accepted in origins.
// Anything else (private keys, hex keys, SLIP-132 keys, script trees, other functions) is
// refused with an error. It is meant for untrusted input: it does not panic, and work is bounded
// by a 16 KiB input limit.
func ParseDescriptor(s string) (*Descriptor, error) {
	if len(s) > maxDescriptorLen {
		return nil, &DescriptorError{Reason: fmt.Sprintf("longer than %d bytes", maxDescriptorLen)}
	}
	body, _, err := SplitChecksum(s)
	if err != nil {
		return nil, err
	}
	p := &descParser{s: body}
	d, err := p.descriptor()
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.s) {
		return nil, p.errf("unexpected text after the descriptor")
	}
	if err := d.validate(); err != nil {
		return nil, err
	}
	return d, nil
}

type descParser struct {
	s   string
	pos int
}

func (p *descParser) errf(format string, args ...any) error {
	return &DescriptorError{Offset: p.pos, Reason: fmt.Sprintf(format, args...)}
}

// function reads "name(" and returns name.
func (p *descParser) function() (string, error) {
	start := p.pos
	for p.pos < len(p.s) && (p.s[p.pos] >= 'a' && p.s[p.pos] <= 'z' || p.s[p.pos] == '_') {
		p.pos++
	}
	name := p.s[start:p.pos]
	if name == "" || p.pos >= len(p.s) || p.s[p.pos] != '(' {
		p.pos = start
		return "", p.errf("expected a script function such as wpkh(")
	}
	p.pos++
	return name, nil
}

func (p *descParser) expect(c byte) error {
	if p.pos >= len(p.s) || p.s[p.pos] != c {
		return p.errf("expected %q", c)
	}
	p.pos++
	return nil
}

func (p *descParser) descriptor() (*Descriptor, error) {
	name, err := p.function()
	if err != nil {
		return nil, err
	}
	d := &Descriptor{}
	switch name {
	case "pkh", "wpkh", "tr":
		d.Type = map[string]ScriptType{"pkh": ScriptPKH, "wpkh": ScriptWPKH, "tr": ScriptTR}[name]
		k, err := p.key()
		if err != nil {
			return nil, err
		}
		d.Keys = []DescriptorKey{k}
		if name == "tr" && p.pos < len(p.s) && p.s[p.pos] == ',' {
			return nil, p.errf("tr() with a script tree is not supported (key path only)")
		}
	case "sh":
		inner, err := p.function()
		if err != nil {
			return nil, err
		}
		if inner != "wpkh" {
			return nil, p.errf("only sh(wpkh(…)) is supported inside sh()")
		}
		d.Type = ScriptSHWPKH
		k, err := p.key()
		if err != nil {
			return nil, err
		}
		d.Keys = []DescriptorKey{k}
		if err := p.expect(')'); err != nil {
			return nil, err
		}
	case "wsh":
		inner, err := p.function()
		if err != nil {
			return nil, err
		}
		if inner != "sortedmulti" {
			return nil, p.errf("only wsh(sortedmulti(…)) is supported inside wsh()")
		}
		d.Type = ScriptWSHSortedMulti
		start := p.pos
		for p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
			p.pos++
		}
		num := p.s[start:p.pos]
		if num == "" || len(num) > 2 || (len(num) > 1 && num[0] == '0') {
			p.pos = start
			return nil, p.errf("expected the multisig threshold (1 to %d)", MaxMultisigKeys)
		}
		d.Threshold = int(num[0] - '0')
		if len(num) == 2 {
			d.Threshold = d.Threshold*10 + int(num[1]-'0')
		}
		for p.pos < len(p.s) && p.s[p.pos] == ',' {
			p.pos++
			if len(d.Keys) == MaxMultisigKeys {
				return nil, p.errf("more than %d keys", MaxMultisigKeys)
			}
			k, err := p.key()
			if err != nil {
				return nil, err
			}
			d.Keys = append(d.Keys, k)
		}
		if err := p.expect(')'); err != nil {
			return nil, err
		}
	default:
		p.pos = 0
		if len(name) > 16 {
			name = name[:16] + "…"
		}
		return nil, p.errf("unsupported script function %q (want pkh, sh(wpkh), wpkh, tr or wsh(sortedmulti))", name)
	}
	if err := p.expect(')'); err != nil {
		return nil, err
	}
	return d, nil
}

// key reads one key expression, which ends at ',' or ')' (neither occurs inside one).
func (p *descParser) key() (DescriptorKey, error) {
	var k DescriptorKey
	start := p.pos
	end := start
	for end < len(p.s) && p.s[end] != ',' && p.s[end] != ')' {
		end++
	}
	expr := p.s[start:end]
	at := func(off int, format string, args ...any) error {
		return &DescriptorError{Offset: start + off, Reason: fmt.Sprintf(format, args...)}
	}
	if expr == "" {
		return k, at(0, "expected a key")
	}
	off := 0
	if expr[0] == '[' {
		close := strings.IndexByte(expr, ']')
		if close < 0 {
			return k, at(0, "key origin has no closing ']'")
		}
		o, err := parseOrigin(expr[1:close])
		if err != "" {
			return k, at(1, "key origin: %s", err)
		}
		k.Origin = &o
		off = close + 1
	}
	rest := expr[off:]
	if strings.ContainsAny(rest, "[]") {
		return k, at(off, "misplaced '[' or ']' (one key origin, before the key)")
	}
	keyText, steps, _ := strings.Cut(rest, "/")
	if err := checkKeyText(keyText); err != "" {
		return k, at(off, "%s", err)
	}
	x, err := ParseXPub(keyText)
	if err != nil {
		return k, at(off, "%s", strings.TrimPrefix(err.Error(), "keys: "))
	}
	k.XPub = x
	if len(rest) > len(keyText) {
		elems := strings.Split(steps, "/")
		if len(elems) > maxKeySteps+1 {
			return k, at(off, "more than %d derivation steps after the key", maxKeySteps)
		}
		for i, e := range elems {
			if e == "*" {
				if i != len(elems)-1 {
					return k, at(off, "/* must be the last step")
				}
				k.Wildcard = true
				continue
			}
			if e == "*'" || e == "*h" || e == "*H" {
				return k, at(off, "hardened /*h needs private keys, which descriptors here never hold")
			}
			st, reason := parseStep(e)
			if reason != "" {
				return k, at(off, "step %d after the key: %s", i+1, reason)
			}
			k.Steps = append(k.Steps, st)
		}
	}
	p.pos = end
	return k, nil
}

// checkKeyText refuses key kinds this parser does not take, before base58 decoding, with a
// reason that does not repeat the key.
func checkKeyText(s string) string {
	switch {
	case s == "":
		return "expected an extended public key (xpub or tpub)"
	case strings.HasPrefix(s, "xprv") || strings.HasPrefix(s, "tprv") || len(s) >= 4 && s[1:4] == "prv":
		return "private keys are not accepted in descriptors here"
	case len(s) >= 4 && s[1:4] == "pub" && s[0] != 'x' && s[0] != 't':
		return "descriptors use xpub/tpub, not SLIP-132 forms such as zpub (convert the key first)"
	case len(s) == 66 || len(s) == 64 || len(s) == 130:
		return "plain hex public keys are not supported here, only extended keys"
	case len(s) < 100:
		return "expected an extended public key (xpub or tpub)"
	}
	return ""
}

// parseOrigin reads "fingerprint/path…" (without brackets).
func parseOrigin(s string) (KeyOrigin, string) {
	var o KeyOrigin
	fp, path, hasPath := strings.Cut(s, "/")
	f, err := ParseFingerprint(fp)
	if err != nil {
		return o, "the fingerprint must be 8 hex digits"
	}
	o.Fingerprint = f
	if !hasPath {
		return o, ""
	}
	elems := strings.Split(path, "/")
	if len(elems) > 255 {
		return o, "path longer than 255 steps"
	}
	o.Path = make(Path, 0, len(elems))
	for i, e := range elems {
		v, reason := parsePathElement(e, true)
		if reason != "" {
			return o, fmt.Sprintf("path step %d: %s", i+1, reason)
		}
		o.Path = append(o.Path, v)
	}
	return o, ""
}

// parseStep reads an unhardened "NUM" or a "<NUM;NUM;…>" multipath step.
func parseStep(e string) (PathStep, string) {
	if strings.HasPrefix(e, "<") {
		if !strings.HasSuffix(e, ">") || len(e) < 2 {
			return nil, "multipath step has no closing '>'"
		}
		alts := strings.Split(e[1:len(e)-1], ";")
		if len(alts) < 2 {
			return nil, "multipath step needs at least two values"
		}
		if len(alts) > maxMultipath {
			return nil, fmt.Sprintf("multipath step has more than %d values", maxMultipath)
		}
		st := make(PathStep, 0, len(alts))
		seen := make(map[uint32]bool, len(alts))
		for _, a := range alts {
			v, reason := parsePathElement(a, true)
			if reason != "" {
				return nil, reason
			}
			if v >= Hardened {
				return nil, "hardened step after an extended public key cannot be derived"
			}
			if seen[v] {
				return nil, "multipath step repeats a value"
			}
			seen[v] = true
			st = append(st, v)
		}
		return st, ""
	}
	if strings.ContainsAny(e, "<>;") {
		return nil, "malformed multipath step"
	}
	v, reason := parsePathElement(e, true)
	if reason != "" {
		return nil, reason
	}
	if v >= Hardened {
		return nil, "hardened step after an extended public key cannot be derived"
	}
	return PathStep{v}, ""
}

// validate checks what spans keys: one network, multisig threshold and count, BIP389 tuples of
// one length with at most one per key.
func (d *Descriptor) validate() error {
	if len(d.Keys) == 0 {
		return &DescriptorError{Reason: "no keys"}
	}
	if d.Type == ScriptWSHSortedMulti {
		if d.Threshold < 1 || d.Threshold > len(d.Keys) {
			return &DescriptorError{Reason: fmt.Sprintf("threshold %d is not between 1 and the number of keys (%d)", d.Threshold, len(d.Keys))}
		}
		if len(d.Keys) > MaxMultisigKeys {
			return &DescriptorError{Reason: fmt.Sprintf("more than %d keys", MaxMultisigKeys)}
		}
	} else if len(d.Keys) != 1 {
		return &DescriptorError{Reason: "a single-key descriptor has exactly one key"}
	}
	mainnet := d.Keys[0].XPub.IsMainnet()
	tuple := 0
	for i, k := range d.Keys {
		if k.XPub.IsMainnet() != mainnet {
			return &DescriptorError{Reason: fmt.Sprintf("key %d is for another network than key 1 (xpub and tpub mixed)", i+1)}
		}
		n := 0
		for _, st := range k.Steps {
			if len(st) > 1 {
				n++
				if tuple == 0 {
					tuple = len(st)
				} else if len(st) != tuple {
					return &DescriptorError{Reason: "multipath steps of different lengths"}
				}
			}
		}
		if n > 1 {
			return &DescriptorError{Reason: fmt.Sprintf("key %d has more than one multipath step", i+1)}
		}
	}
	return nil
}
