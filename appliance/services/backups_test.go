package services

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/anya-edge/anya/appliance/recovery/backup"
	"github.com/anya-edge/anya/hsm"
)

// TestBackupsToStick: once the box has a wallet it backs up on request into the data
// directory; a backup stick that PID 1 mounts gets a copy by itself; the page lists both and
// serves the file, which the mnemonic opens and which holds the wallet's accounts and no
// seed; names outside the list are not served.
func TestBackupsToStick(t *testing.T) {
	bx := startBox(t)
	a := newAPIClient(t, "http://"+bx.addr)
	a.csrf = a.want("POST", "/api/setup", map[string]string{"password": testPassword, "name": "backed-up"}, 200)["csrf"].(string)
	if m := a.want("POST", "/api/backups", nil, 200); m["written"] == true || m["note"] != "no wallet yet" {
		t.Fatalf("backup without a wallet: %v", m)
	}
	a.want("POST", "/api/wallet/setup", map[string]string{"mnemonic": testMnemonic, "protection": "passphrase",
		"passphrase": testPassphrase}, 200)
	m := a.want("POST", "/api/backups", nil, 200)
	if m["written"] != true {
		t.Fatalf("backup after the wallet setup: %v", m)
	}
	local, _ := m["path"].(string)
	if filepath.Dir(local) != filepath.Join(bx.dir, BackupsDir) {
		t.Fatalf("backup written to %q", local)
	}

	// PID 1 mounts a stick labelled ANYA-BACKUP and makes its backups directory.
	stick := filepath.Join(bx.usb, "ANYA-BACKUP", "backups")
	if err := os.MkdirAll(stick, 0o700); err != nil {
		t.Fatal(err)
	}
	m = a.waitAPI("the copy on the stick", "/api/backups", func(m map[string]any) bool {
		sticks, _ := m["sticks"].([]any)
		if len(sticks) != 1 {
			return false
		}
		list, _ := sticks[0].(map[string]any)["backups"].([]any)
		return len(list) >= 1
	})
	// The wallet service's first sync may have made another backup since: the stick has the
	// newest, under the same name as on the box.
	name := m["sticks"].([]any)[0].(map[string]any)["backups"].([]any)[0].(map[string]any)["name"].(string)
	found := false
	for _, l := range m["local"].([]any) {
		f := l.(map[string]any)
		found = found || f["name"] == name && f["fingerprint"] == "73c5da0a"
	}
	if !found {
		t.Fatalf("local backups %v lack the stick's %s", m["local"], name)
	}
	onStick, err := os.ReadFile(filepath.Join(stick, name))
	if err != nil {
		t.Fatal(err)
	}

	// Download: the same bytes; only listed names are served.
	res, err := a.c.Get("http://" + bx.addr + "/backups/file/" + name)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !bytes.Equal(got, onStick) {
		t.Fatalf("download: %d, %d bytes (stick %d)", res.StatusCode, len(got), len(onStick))
	}
	for _, bad := range []string{"anya.db", "..%2Fanya.db", "nope.anyabak"} {
		res, err := a.c.Get("http://" + bx.addr + "/backups/file/" + bad)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("download %q: %d, want 404", bad, res.StatusCode)
		}
	}

	key, err := hsm.BackupKeyFromMnemonic(testMnemonic, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer key.Zero()
	known := map[string]int{}
	for _, s := range backup.Subsystems() {
		known[s] = 100
	}
	man, err := backup.Verify(bytes.NewReader(got), key, backup.ReadOptions{Policy: backup.DefaultPolicy(known), Network: "regtest"})
	if err != nil {
		t.Fatalf("verify the downloaded backup: %v", err)
	}
	if len(man.Accounts) == 0 || man.Fingerprint != "73c5da0a" {
		t.Fatalf("manifest: %+v", man.Header)
	}
	if bytes.Contains(got, []byte(testMnemonic)) {
		t.Fatal("the backup holds the mnemonic")
	}
}
