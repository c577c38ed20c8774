package sign

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
)

// Hardened is the offset of hardened BIP32 child indexes (i' = i + Hardened).
const Hardened = hdkeychain.HardenedKeyStart

// maxPathLen bounds the derivation paths we will follow from a PSBT. Real wallets use at most
// six levels (BIP48); anything much deeper is junk or an attempt to make us work.
const maxPathLen = 16

// Path is a BIP32 derivation path from the master key, hardened elements with [Hardened] added.
type Path []uint32

// String formats p as m/84'/0'/0'/1/7.
func (p Path) String() string {
	var b strings.Builder
	b.WriteString("m")
	for _, i := range p {
		b.WriteByte('/')
		if i >= Hardened {
			b.WriteString(strconv.FormatUint(uint64(i-Hardened), 10))
			b.WriteByte('\'')
		} else {
			b.WriteString(strconv.FormatUint(uint64(i), 10))
		}
	}
	return b.String()
}

// HasPrefix reports whether p starts with prefix.
func (p Path) HasPrefix(prefix Path) bool {
	if len(prefix) > len(p) {
		return false
	}
	for i := range prefix {
		if p[i] != prefix[i] {
			return false
		}
	}
	return true
}

// ParsePath parses "m/84'/0'/0'" (h or H also mark hardened elements; the leading m is optional).
func ParsePath(s string) (Path, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "m")
	s = strings.TrimPrefix(s, "/")
	if s == "" {
		return Path{}, nil
	}
	parts := strings.Split(s, "/")
	if len(parts) > maxPathLen {
		return nil, fmt.Errorf("derivation path %q is longer than %d elements", s, maxPathLen)
	}
	p := make(Path, 0, len(parts))
	for _, part := range parts {
		hard := false
		if n := len(part); n > 0 && (part[n-1] == '\'' || part[n-1] == 'h' || part[n-1] == 'H') {
			hard = true
			part = part[:n-1]
		}
		v, err := strconv.ParseUint(part, 10, 32)
		if err != nil || v >= uint64(Hardened) {
			return nil, fmt.Errorf("bad derivation path element %q", part)
		}
		i := uint32(v)
		if hard {
			i += Hardened
		}
		p = append(p, i)
	}
	return p, nil
}

// key returns a map key for p.
func (p Path) key() string {
	b := make([]byte, 0, 4*len(p))
	for _, i := range p {
		b = append(b, byte(i>>24), byte(i>>16), byte(i>>8), byte(i))
	}
	return string(b)
}
