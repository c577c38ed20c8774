package rescue_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/anya-edge/anya/appliance/recovery/rescue"
)

// fakeSysfs makes sysfs's block/ for disks: name → removable, partition labels.
func fakeSysfs(t *testing.T, disks map[string][]string, removable ...string) string {
	t.Helper()
	root := t.TempDir()
	for name, labels := range disks {
		dir := filepath.Join(root, "block", name)
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "size"), []byte("409600\n"), 0o644)
		rem := "0"
		for _, r := range removable {
			if r == name {
				rem = "1"
			}
		}
		os.WriteFile(filepath.Join(dir, "removable"), []byte(rem+"\n"), 0o644)
		for i, l := range labels {
			p := filepath.Join(dir, name+string(rune('1'+i)))
			os.MkdirAll(p, 0o755)
			os.WriteFile(filepath.Join(p, "uevent"), []byte("DEVTYPE=partition\nPARTNAME="+l+"\n"), 0o644)
		}
	}
	return root
}

func TestFindInternalDisk(t *testing.T) {
	stick := []string{rescue.LabelStickESP, rescue.LabelStickSystem, rescue.LabelStickFiles}
	for _, c := range []struct {
		name      string
		disks     map[string][]string
		removable []string
		want      string
		err       bool
	}{
		{"blank disk and stick", map[string][]string{"vda": nil, "sda": stick, "loop0": nil}, []string{"sda"}, "vda", false},
		{"installed disk", map[string][]string{"nvme0n1": {"ESP", "anya-a", "anya-b", "anya-data"}, "sda": stick, "sdb": nil}, []string{"sda"}, "nvme0n1", false},
		{"two blank disks", map[string][]string{"vda": nil, "vdb": nil, "sda": stick}, nil, "", true},
		{"two installed disks", map[string][]string{"vda": {"anya-a"}, "vdb": {"anya-a"}}, nil, "", true},
		{"only the stick", map[string][]string{"sda": stick}, []string{"sda"}, "", true},
	} {
		got, err := rescue.FindInternalDisk(fakeSysfs(t, c.disks, c.removable...))
		if got != c.want || (err != nil) != c.err || (err != nil && !errors.Is(err, rescue.ErrNoDisk)) {
			t.Errorf("%s: %q, %v", c.name, got, err)
		}
	}
}
