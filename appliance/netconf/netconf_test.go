package netconf

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseStatic(t *testing.T) {
	tests := []struct {
		in      string
		wantErr bool
		addr    string
		gw      string
		dns     int
	}{
		{"192.168.1.50/24,192.168.1.1,1.1.1.1,9.9.9.9", false, "192.168.1.50/24", "192.168.1.1", 2},
		{"10.0.0.2/8", false, "10.0.0.2/8", "invalid IP", 0},
		{"10.0.0.2", true, "", "", 0},
		{"fe80::1/64", true, "", "", 0},
		{"10.0.0.2/8,notanip", true, "", "", 0},
		{"10.0.0.2/8,10.0.0.1,bad", true, "", "", 0},
	}
	for _, tt := range tests {
		st, err := ParseStatic(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: err %v", tt.in, err)
			continue
		}
		if err != nil {
			continue
		}
		if st.Address.String() != tt.addr || st.Gateway.String() != tt.gw || len(st.DNS) != tt.dns {
			t.Errorf("%q: got %+v", tt.in, st)
		}
	}
}

func TestLoadStatic(t *testing.T) {
	dir := t.TempDir()
	if st, err := LoadStatic(filepath.Join(dir, "none.json")); st != nil || err != nil {
		t.Fatalf("missing file: %v %v", st, err)
	}
	p := filepath.Join(dir, "network.json")
	os.WriteFile(p, []byte(`{"static":{"address":"192.168.7.2/24","gateway":"192.168.7.1"}}`), 0o644)
	st, err := LoadStatic(p)
	if err != nil || st.Address.String() != "192.168.7.2/24" || st.Gateway.String() != "192.168.7.1" {
		t.Fatalf("got %+v %v", st, err)
	}
	os.WriteFile(p, []byte(`{"static":{"address":"garbage"}}`), 0o644)
	if _, err := LoadStatic(p); err == nil {
		t.Fatal("garbage accepted")
	}
}
