package datapart

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestFind(t *testing.T) {
	sys := t.TempDir()
	for dev, ue := range map[string]string{
		"vda":  "MAJOR=254\nMINOR=0\nDEVNAME=vda\nDEVTYPE=disk\n",
		"vda1": "MAJOR=254\nMINOR=1\nDEVNAME=vda1\nDEVTYPE=partition\nPARTN=1\nPARTNAME=ESP\n",
		"vda4": "MAJOR=254\nMINOR=4\nDEVNAME=vda4\nDEVTYPE=partition\nPARTN=4\nPARTNAME=anya-data\n",
	} {
		os.MkdirAll(filepath.Join(sys, "class/block", dev), 0o755)
		os.WriteFile(filepath.Join(sys, "class/block", dev, "uevent"), []byte(ue), 0o644)
	}
	if dev, err := Find(sys, "anya-data"); err != nil || dev != "/dev/vda4" {
		t.Fatalf("Find = %q, %v", dev, err)
	}
	if _, err := Find(sys, "anya-b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing label: %v", err)
	}
}

func TestProbeFormat(t *testing.T) {
	dir := t.TempDir()
	blank := filepath.Join(dir, "blank")
	os.WriteFile(blank, nil, 0o600)
	os.Truncate(blank, 64<<20)

	if c, err := Probe(blank); err != nil || c != Blank {
		t.Fatalf("blank: %v %v", c, err)
	}
	if err := Format(blank, "anya-data"); err != nil {
		t.Fatal(err)
	}
	if c, err := Probe(blank); err != nil || c != Ext4 {
		t.Fatalf("after format: %v %v", c, err)
	}
	// Formatting again must refuse: the partition now holds data.
	if err := Format(blank, "anya-data"); err == nil {
		t.Fatal("formatted over an existing filesystem")
	}

	// Damaged/foreign content is never overwritten.
	foreign := filepath.Join(dir, "foreign")
	junk := bytes.Repeat([]byte("not a filesystem "), 4096)
	os.WriteFile(foreign, junk, 0o600)
	if c, _ := Probe(foreign); c != Unknown {
		t.Fatalf("foreign content probed as %v", c)
	}
	if err := Format(foreign, "anya-data"); err == nil {
		t.Fatal("formatted over foreign data")
	}
	if b, _ := os.ReadFile(foreign); !bytes.Equal(b, junk) {
		t.Fatal("foreign data changed")
	}
}
