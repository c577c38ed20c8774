package keys

import (
	"strings"
	"testing"
)

// FuzzParseDescriptor feeds untrusted text to ParseDescriptor. It must never panic, and whatever
// it accepts must print in a canonical form that parses back to the same descriptor and derives
// addresses without panicking.
//
//	go test -run='^$' -fuzz=FuzzParseDescriptor -fuzztime=20s ./hsm/keys/
func FuzzParseDescriptor(f *testing.F) {
	k := "[deadbeef/0h/1'/2H]" + v2Deep
	seeds := []string{
		"wpkh([73c5da0a/84h/0h/0h]xpub6CatWdiZiodmUeTDp8LT5or8nmbKNcuyvz7WyksVFkKB4RHwCD3XyuvPEbvqAQY3rAPshWcMLoP2fMFMKHPJ4ZeZXYVUhLv1VMrjPC7PW6V/0/*)",
		"tr([73c5da0a/86h/0h/0h]xpub6BgBgsespWvERF3LHQu6CnqdvfEvtMcQjYrcRzx53QJjSxarj2afYWcLteoGVky7D3UKDP9QyrLprQ3VCECoY49yfdDEHGCtMMj92pReUsQ/<0;1>/*)",
		"pkh(" + k + "/0/*)",
		"sh(wpkh(" + k + "/1/*))",
		"wpkh([ffffffff/13']" + v2Child0 + "/<1;3>/2/*)",
		"pkh(" + v2Master + "/<0;1;2>)",
		"wsh(sortedmulti(2," + k + "/<0;1>/*," + v3Child0 + "/0/<2;3>/*," + v1Master + "/7))",
		"wsh(sortedmulti(1,[00000000]tpubD6NzVbkrYhZ4XgiXtGrdW5XDAPFCL9h7we1vwNCpn8tGbBcgfVYjXyhWo4E1xkh56hjod1RhGjxbaTLV3X4FyWuejifB9jusQ46QzG87VKp/0/*))",
		"wpkh([d34db33f/84h/0h/0h]xpub6DJ2dNUysrn5Vt36jH2KLBT2i1auw1tTSSomg8PhqNiUtx8QX2SvC9nrHu81fT41fvDUnhMjEzQgXnQjKEu3oaqMSzhSrHMxyyoEAmUHQbY/0/*)#cjjspncu",
		"raw(deadbeef)#89f8spxm",
		"wpkh(" + v2DeepPrv + ")",
		"tr(" + v2Master + ",pk(" + v3Child0 + "))",
		"wsh(sortedmulti(0," + k + "))",
		"wpkh(" + v2Master + "/<0;>/*)",
		"",
		"(",
		"wsh(sortedmulti(",
	}
	for _, s := range seeds {
		f.Add(s)
		if !strings.Contains(s, "#") {
			if c, err := AddChecksum(s); err == nil {
				f.Add(c)
			}
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = DescriptorChecksum(s)
		d, err := ParseDescriptor(s)
		if err != nil {
			if d != nil {
				t.Fatal("descriptor returned with an error")
			}
			return
		}
		canon := d.String()
		d2, err := ParseDescriptor(canon)
		if err != nil {
			t.Fatalf("canonical form %q does not parse: %v", canon, err)
		}
		if d2.String() != canon {
			t.Fatalf("canonical form is not stable:\n%s\n%s", canon, d2)
		}
		net := Mainnet
		if !d.Keys[0].XPub.IsMainnet() {
			net = Regtest
		}
		singles := d.Singles()
		if len(singles) != d.Multipath() {
			t.Fatalf("%d singles for multipath %d", len(singles), d.Multipath())
		}
		if _, err := singles[len(singles)-1].DeriveAddress(net, 0); err != nil {
			// Only an invalid child (probability 2^-127) may fail here.
			t.Logf("derive %s: %v", canon, err)
		}
	})
}
