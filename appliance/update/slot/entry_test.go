package slot

import (
	"errors"
	"testing"
)

func TestParseName(t *testing.T) {
	for _, c := range []struct {
		file   string
		want   Name
		state  State
		canon  string
		failed bool
	}{
		{file: "anya-a.conf", want: Name{Slot: "a"}, state: Good, canon: "anya-a.conf"},
		{file: "anya-b+3.conf", want: Name{Slot: "b", Counting: true, Left: 3}, state: Trying, canon: "anya-b+3.conf"},
		{file: "anya-b+2-1.conf", want: Name{Slot: "b", Counting: true, Left: 2, Done: 1}, state: Trying, canon: "anya-b+2-1.conf"},
		{file: "anya-b+0-3.conf", want: Name{Slot: "b", Counting: true, Left: 0, Done: 3}, state: Bad, canon: "anya-b+0-3.conf"},
		{file: "anya-a+0.conf", want: Name{Slot: "a", Counting: true}, state: Bad, canon: "anya-a+0.conf"},
		{file: "anya-a+3-0.conf", want: Name{Slot: "a", Counting: true, Left: 3}, state: Trying, canon: "anya-a+3.conf"},
		{file: "ANYA-B+1-2.CONF", want: Name{Slot: "b", Counting: true, Left: 1, Done: 2}, state: Trying, canon: "anya-b+1-2.conf"},
		{file: "anya-c.conf", failed: true},
		{file: "anya-a", failed: true},
		{file: "anya-a.conf.tmp", failed: true},
		{file: "other-a.conf", failed: true},
		{file: "anya-a+.conf", failed: true},
		{file: "anya-a+-1.conf", failed: true},
		{file: "anya-a+1-.conf", failed: true},
		{file: "anya-a+x.conf", failed: true},
		{file: "anya-a+1-2-3.conf", failed: true},
		{file: "anya-a++1.conf", failed: true},
		{file: "anya-a+99999999.conf", failed: true},
		{file: "anya-ab.conf", failed: true},
		{file: "", failed: true},
	} {
		n, err := ParseName(c.file)
		if c.failed {
			if err == nil || !errors.Is(err, ErrNotEntry) {
				t.Errorf("%q: parsed as %+v (%v)", c.file, n, err)
			}
			continue
		}
		if err != nil || n != c.want {
			t.Errorf("%q: %+v, %v; want %+v", c.file, n, err, c.want)
			continue
		}
		if n.State() != c.state || n.String() != c.canon {
			t.Errorf("%q: state %v name %q, want %v %q", c.file, n.State(), n.String(), c.state, c.canon)
		}
	}
}

func TestBlessAndFail(t *testing.T) {
	for _, c := range []struct{ file, blessed, failed string }{
		{"anya-b+3.conf", "anya-b.conf", "anya-b+0.conf"},
		{"anya-b+2-1.conf", "anya-b.conf", "anya-b+0-1.conf"},
		{"anya-a+0-3.conf", "anya-a.conf", "anya-a+0-3.conf"},
		{"anya-a.conf", "anya-a.conf", "anya-a+0.conf"},
	} {
		n, err := ParseName(c.file)
		if err != nil {
			t.Fatal(err)
		}
		if got := n.Blessed().String(); got != c.blessed {
			t.Errorf("%s blessed: %s, want %s", c.file, got, c.blessed)
		}
		if got := n.Failed().String(); got != c.failed {
			t.Errorf("%s failed: %s, want %s", c.file, got, c.failed)
		}
	}
	if got := Trial("b", DefaultTries).String(); got != "anya-b+3.conf" {
		t.Errorf("trial name %s", got)
	}
}

func TestEntryRoundTrip(t *testing.T) {
	e := NewEntry("b", "1.2.0", 12, KernelCmdline("b", "anya.network=regtest"))
	got := ParseEntry(e.Bytes())
	if got != e {
		t.Fatalf("round trip: %+v, want %+v", got, e)
	}
	if e.Order() != 12 || e.Linux != "/anya/b/vmlinuz" || e.Initrd != "/anya/b/initrd.img" {
		t.Fatalf("entry %+v", e)
	}
	if (Entry{Version: "x"}).Order() != -1 {
		t.Fatal("non-numeric version ordered")
	}
	two := ParseEntry([]byte("# comment\ntitle  T \noptions a=1\noptions b=2\nunknown x\n"))
	if two.Title != "T" || two.Options != "a=1 b=2" {
		t.Fatalf("parsed %+v", two)
	}
}

func TestWithSlot(t *testing.T) {
	for in, want := range map[string]string{
		"console=ttyS0 anya.slot=a anya.network=regtest": "console=ttyS0 anya.slot=b anya.network=regtest",
		"console=ttyS0":                 "console=ttyS0 anya.slot=b",
		"anya.slot=a anya.slot=a quiet": "anya.slot=b quiet",
		"":                              "anya.slot=b",
	} {
		if got := WithSlot(in, "b"); got != want {
			t.Errorf("WithSlot(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOther(t *testing.T) {
	if Other(A) != B || Other(B) != A || Other("c") != "" || Valid("") {
		t.Fatal("slot helpers")
	}
}

func TestStateText(t *testing.T) {
	for _, s := range []State{Good, Trying, Bad} {
		b, _ := s.MarshalText()
		var back State
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Fatalf("%v: %s, %v", s, b, err)
		}
	}
	var s State
	if s.UnmarshalText([]byte("ugly")) == nil {
		t.Fatal("unknown state parsed")
	}
}
