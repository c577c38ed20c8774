package slot

import "testing"

// FuzzParseName: parsing never panics, and what parses has a canonical name that parses to
// the same value.
func FuzzParseName(f *testing.F) {
	for _, s := range []string{"anya-a.conf", "anya-b+3.conf", "anya-b+2-1.conf", "anya-a+0-3.conf", "ANYA-B+1.CONF",
		"anya-a+", "anya-b+1-2-3.conf", "anya-a+9999999.conf", "anya-\x00.conf", "anya-a+٣.conf"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseName(s)
		if err != nil {
			return
		}
		if !Valid(n.Slot) || n.Left < 0 || n.Done < 0 || n.Left > maxCount || n.Done > maxCount {
			t.Fatalf("%q parsed as %+v", s, n)
		}
		m, err := ParseName(n.String())
		if err != nil || m != n {
			t.Fatalf("%q: canonical %q parses as %+v, %v; want %+v", s, n.String(), m, err, n)
		}
		if b := n.Blessed(); b.State() != Good || b.Slot != n.Slot {
			t.Fatalf("%q blessed %+v", s, b)
		}
		if b := n.Failed(); b.State() != Bad || b.Slot != n.Slot || b.Done != n.Done {
			t.Fatalf("%q failed %+v", s, b)
		}
	})
}
