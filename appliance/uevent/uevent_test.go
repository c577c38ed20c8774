package uevent

import (
	"strings"
	"testing"
)

func msg(parts ...string) []byte { return []byte(strings.Join(parts, "\x00")) }

func TestParse(t *testing.T) {
	tests := []struct {
		name      string
		in        []byte
		wantErr   bool
		smartCard bool
	}{
		{"yubikey ccid interface added", msg("add@/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.2", "ACTION=add",
			"DEVPATH=/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.2", "SUBSYSTEM=usb", "DEVTYPE=usb_interface",
			"PRODUCT=1050/407/543", "INTERFACE=11/0/0", "SEQNUM=1234"), false, true},
		{"removed", msg("remove@/devices/x/1-2:1.2", "ACTION=remove", "SUBSYSTEM=usb", "DEVTYPE=usb_interface", "INTERFACE=11/0/0"), false, true},
		{"keyboard interface", msg("add@/devices/x/1-3:1.0", "ACTION=add", "SUBSYSTEM=usb", "DEVTYPE=usb_interface", "INTERFACE=3/1/1"), false, false},
		{"usb device, not interface", msg("add@/devices/x/1-2", "ACTION=add", "SUBSYSTEM=usb", "DEVTYPE=usb_device"), false, false},
		{"bind is not add", msg("bind@/devices/x/1-2:1.2", "ACTION=bind", "SUBSYSTEM=usb", "DEVTYPE=usb_interface", "INTERFACE=11/0/0"), false, false},
		{"udev's own message", []byte("libudev\x00\xfe\xed\xca\xfe"), true, false},
		{"empty", nil, true, false},
		{"mismatched action", msg("add@/devices/x", "ACTION=remove"), true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Parse(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if e.SmartCardReader() != tt.smartCard {
				t.Fatalf("SmartCardReader = %v for %+v", !tt.smartCard, e)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add(msg("add@/devices/x/1-2:1.2", "ACTION=add", "SUBSYSTEM=usb", "INTERFACE=11/0/0"))
	f.Add([]byte("libudev\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Parse(b)
		if err == nil && (e.Action == "" || !strings.HasPrefix(e.DevPath, "/")) {
			t.Fatalf("accepted a malformed event: %+v", e)
		}
	})
}
