package image_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anya-edge/anya/appliance/recovery/backup"
	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/hsm"
	"github.com/anya-edge/anya/hsm/keys"
	"github.com/anya-edge/anya/image"
	"github.com/anya-edge/anya/image/publish"
	"github.com/anya-edge/anya/image/qemu"
	"github.com/anya-edge/anya/storage"
	"go.etcd.io/bbolt"
)

// signImage signs slot a of a built image into a bundle directory with new keys, as
// anyactl release sign does, and returns the bundle and the trusted root file.
func signImage(t *testing.T, img string, version string, counter uint64) (string, string) {
	t.Helper()
	dir := t.TempDir()
	sf, err := image.ReadSlot(img, "a")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys, err := publish.Keygen(filepath.Join(dir, "keys"), publish.KeygenOptions{Now: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "bundle")
	if _, err := keys.Sign(bundle, []publish.Release{{Arch: "amd64", Version: version, Counter: counter,
		Payloads: map[release.Kind]io.Reader{release.KindRelease: bytes.NewReader(sf.Release), release.KindKernel: bytes.NewReader(sf.Kernel),
			release.KindInitrd: bytes.NewReader(sf.Initrd), release.KindSystem: io.NewSectionReader(f, sf.SystemOffset, sf.SystemSize)}}},
		publish.SignOptions{Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root.json")
	if err := os.WriteFile(root, keys.Root(), 0o644); err != nil {
		t.Fatal(err)
	}
	return bundle, root
}

// hostBackup writes a backup on the host, as another box would have: a wallet label in a
// database, encrypted to the wallet of mnemonic, on the network the test box runs.
func hostBackup(t *testing.T, mnemonic, label string) []byte {
	t.Helper()
	db, err := storage.Open(filepath.Join(t.TempDir(), "other.db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Migrate("wallet", []storage.Migration{{Version: 1, Name: "labels", Up: func(tx *bbolt.Tx) error {
		b, err := tx.Bucket([]byte("wallet")).CreateBucketIfNotExists([]byte("labels"))
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte(label))
	}}})
	if err != nil {
		t.Fatal(err)
	}
	key, err := hsm.BackupKeyFromMnemonic(mnemonic, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer key.Zero()
	known := map[string]int{}
	for _, s := range backup.Subsystems() {
		known[s] = 1
	}
	var buf bytes.Buffer
	if _, err := backup.Write(&buf, db, key.Recipient(), backup.Options{Policy: backup.DefaultPolicy(known),
		Network: keys.Mainnet.String(), BoxVersion: "other-box"}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rekey returns data, a backup, with its header's HPKE encapsulated key replaced by the one
// of other and the header's CRC and checksum made right again: what someone who swapped the
// key by hand would leave (format version 1, see package backup).
func rekey(t *testing.T, data, other []byte) []byte {
	t.Helper()
	h2, err := backup.ReadHeader(bytes.NewReader(other))
	if err != nil {
		t.Fatal(err)
	}
	n := int(binary.BigEndian.Uint32(data[10:14]))
	var body map[string]any
	if err := json.Unmarshal(data[18:18+n], &body); err != nil {
		t.Fatal(err)
	}
	body["enc"] = h2.Enc
	nb, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	out := append(bytes.Clone(data[:18]), nb...)
	binary.BigEndian.PutUint32(out[10:14], uint32(len(nb)))
	binary.BigEndian.PutUint32(out[14:18], crc32.Checksum(out[:14], crc32.MakeTable(crc32.Castagnoli)))
	sum := sha256.Sum256(out)
	out = append(out, sum[:]...)
	return append(out, data[18+n+32:]...)
}

// form posts a form to the recovery page and returns the status and the page.
func form(t *testing.T, hc *http.Client, u string, v url.Values) (int, string) {
	t.Helper()
	resp, err := hc.PostForm(u, v)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(page)
}

// TestRecoveryBackupRestoreReset is issue 8's scenario on the real image, with a virtual USB
// stick (qemu-xhci + usb-storage):
//
//  1. The box boots from its disk with the recovery stick plugged in; it is set up
//     (password, name, a wallet, two labelled receive addresses) and backs up onto the stick.
//  2. The internal disk is replaced by a blank one; the stick boots the recovery page; the
//     firmware is reinstalled; a truncated, a damaged, another wallet's and a re-keyed
//     backup, and the right backup with the wrong words, are refused with clear reasons and
//     change nothing; the box's own backup is restored with the mnemonic.
//  3. The internal disk boots alone: after a new admin password and the same words it shows
//     the same wallet (descriptors, first addresses), the restored box name, and hands out
//     the next receive address, not one of those handed out before.
//  4. A factory reset from the page: back at the wizard, and no byte of the disk holds the
//     box's name, its reset token's hash, the wallet's xpub or a label.
func TestRecoveryBackupRestoreReset(t *testing.T) {
	longTest(t)
	requireTool(t, "qemu-system-x86_64")
	dir := t.TempDir()
	res := buildImage(t, filepath.Join(dir, "anya.img"))
	bundle, root := signImage(t, res.Path, res.Release.Version, uint64(res.Release.Counter))
	const (
		password    = "correct horse battery staple"
		newPassword = "another horse battery staple"
		name        = "zq7-marker-box"
		passphrase  = "wallet passphrase of the test"
		words       = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
		otherWords  = "legal winner thank year wave sausage worth useful legal winner thank yellow"
		labelRent   = "zq7 rent money"
	)
	// Bad backups, as an owner might find them on a stick.
	mine, mine2 := hostBackup(t, words, "mine"), hostBackup(t, words, "mine again")
	corrupted := bytes.Clone(mine)
	corrupted[len(corrupted)-200] ^= 0x40
	bad := map[string][]byte{
		"cut.anyabak":     mine[:len(mine)-100],
		"damaged.anyabak": corrupted,
		"other.anyabak":   hostBackup(t, otherWords, "someone else's"),
		"rekeyed.anyabak": rekey(t, mine, mine2),
	}
	stick, err := image.BuildRecovery(context.Background(), image.RecoveryConfig{Bundle: bundle, TrustedRoot: root,
		CacheDir: cacheDir(), Output: filepath.Join(dir, "stick.img"), BackupSpace: 32 << 20, Backups: bad})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("recovery stick: %d MiB, bundle %.1f MiB", stick.Size>>20, float64(stick.BundleBytes)/(1<<20))
	usb := func(bootindex string) []string {
		return []string{"-device", "qemu-xhci,id=xhci", "-drive", "if=none,id=stick,format=raw,file=" + stick.Path,
			"-device", "usb-storage,bus=xhci.0,drive=stick,removable=on" + bootindex}
	}

	// 1. Set up the box and back it up onto the stick.
	b := newBox(t, 20*time.Minute)
	b.start(qemu.Config{Image: res.Path, MemoryMB: 768, DiskFirst: true, Extra: usb(",bootindex=1")})
	b.waitFor(qemu.ReadyLine, 0)
	c := b.client()
	code, out := c.do("POST", "/api/setup", map[string]string{"password": password, "name": name})
	if code != 200 || out["reset_token"] == nil {
		t.Fatalf("setup: %d %v (want a reset token)", code, out)
	}
	if code, out := c.do("POST", "/api/wallet/setup", map[string]string{"mnemonic": words, "protection": "passphrase", "passphrase": passphrase}); code != 200 {
		t.Fatalf("wallet setup: %d %v", code, out)
	}
	_, wallet := c.do("GET", "/api/wallet", nil)
	accounts, _ := json.Marshal(wallet["accounts"])
	if len(accounts) < 100 {
		t.Fatalf("wallet: %v", wallet)
	}
	var handed []string
	for _, label := range []string{labelRent, "zq7 coffee"} {
		deadline := time.Now().Add(2 * time.Minute)
		for {
			code, out := c.do("POST", "/api/node/address", map[string]any{"label": label})
			if code == 200 {
				handed = append(handed, out["address"].(string))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("receive address: %d %v", code, out)
			}
			time.Sleep(time.Second)
		}
	}
	var backupName string
	var took time.Duration
	deadline := time.Now().Add(2 * time.Minute)
	for backupName == "" {
		start := time.Now()
		code, out := c.do("POST", "/api/backups", nil)
		if code != 200 {
			t.Fatalf("backup now: %d %v", code, out)
		}
		copies, _ := out["copies"].([]any)
		if out["written"] == true || len(copies) == 1 && copies[0].(map[string]any)["written"] == true {
			took = time.Since(start)
			t.Logf("backup: %v", out)
		}
		// The stick's copy is the newest backup's, whether this request or the scheduler made it.
		_, list := c.do("GET", "/api/backups", nil)
		sticks, _ := list["sticks"].([]any)
		local, _ := list["local"].([]any)
		if len(sticks) == 1 && len(local) > 0 {
			if on, _ := sticks[0].(map[string]any)["backups"].([]any); len(on) > 0 {
				newest := local[0].(map[string]any)
				if on[0].(map[string]any)["name"] == newest["name"] {
					backupName = newest["name"].(string)
					t.Logf("backup on the stick: %s, %v bytes (the request took %.1f s under TCG)", backupName, newest["size"], took.Seconds())
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no backup reached the stick: %v", list)
		}
		time.Sleep(2 * time.Second)
	}
	if code, _ := c.do("POST", "/api/poweroff", nil); code != 200 {
		t.Fatalf("power off: %d", code)
	}
	b.waitFor(regexp.MustCompile(`reboot: Power down`), 0) // after the unmounts and the sync
	b.stop()

	// 2. A blank internal disk; the stick boots the recovery page.
	internal := filepath.Join(dir, "internal.img")
	if err := os.WriteFile(internal, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(internal, 1<<30); err != nil {
		t.Fatal(err)
	}
	b.start(qemu.Config{Image: internal, MemoryMB: 768, Extra: usb(",bootindex=1")})
	line, _ := b.waitFor(qemu.ReadyLine, 0)
	t.Logf("recovery stick: page ready after %.1f s of QEMU", line.At.Seconds())
	if !strings.Contains(b.console(), "ANYA EDGE RECOVERY MODE") {
		t.Fatal("no recovery code banner on the console")
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", b.port)
	hc := &http.Client{Timeout: 8 * time.Minute}
	status := func() string {
		resp, err := hc.Get(base + "/api/recovery")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		st, _ := io.ReadAll(resp.Body)
		return string(st)
	}
	st := status()
	if !strings.Contains(st, `"disk":"/dev/vda"`) || !strings.Contains(st, `"bundle":"`+res.Release.Version+`"`) || !strings.Contains(st, backupName) {
		t.Fatalf("recovery status: %s", st)
	}
	start := time.Now()
	code, page := form(t, hc, base+"/reinstall", url.Values{"data": {"wipe"}, "confirm": {"erase this box"}})
	if code != http.StatusOK || !strings.Contains(page, "installed on both slots") {
		t.Fatalf("reinstall: %d\n%s", code, page)
	}
	t.Logf("reinstall through the page (TCG): %.1f s", time.Since(start).Seconds())

	before := fileSHA(t, internal)
	for _, c := range []struct{ file, words, want string }{
		{"cut.anyabak", words, "incomplete"},
		{"damaged.anyabak", words, "damaged"},
		{"other.anyabak", words, "another wallet"},
		{"rekeyed.anyabak", words, "its key was replaced"},
		{backupName, otherWords, "another wallet"},
	} {
		code, page := form(t, hc, base+"/restore", url.Values{"file": {c.file}, "mnemonic": {c.words}, "passphrase": {""}})
		if code != http.StatusUnprocessableEntity || !strings.Contains(page, c.want) || !strings.Contains(page, "Nothing was changed") {
			t.Fatalf("restore %s: %d, want a refusal saying %q:\n%s", c.file, code, c.want, page)
		}
	}
	// The VM's disk cache is written through (cache=writeback flushes on our fsyncs; the
	// refusals write nothing): the disk image is byte-identical.
	if after := fileSHA(t, internal); after != before {
		t.Fatal("a refused restore changed the internal disk")
	}
	start = time.Now()
	code, page = form(t, hc, base+"/restore", url.Values{"file": {backupName}, "mnemonic": {words}, "passphrase": {""}})
	if code != http.StatusOK || !strings.Contains(page, "restored") {
		t.Fatalf("restore: %d\n%s", code, page)
	}
	t.Logf("restore through the page (TCG): %.1f s", time.Since(start).Seconds())
	b.stop()

	// 3. The restored box: a new admin password, the same words, the same wallet.
	b.start(qemu.Config{Image: internal})
	line, idx := b.waitFor(qemu.ReadyLine, 0)
	t.Logf("restored disk: ready after %.1f s of QEMU", line.At.Seconds())
	c = b.client()
	if code, out := c.do("GET", "/api/status", nil); code != http.StatusConflict {
		t.Fatalf("restored box: /api/status = %d %v, want 409 (the admin password is not in backups)", code, out)
	}
	code, out = c.do("POST", "/api/setup", map[string]string{"password": newPassword})
	if code != 200 {
		t.Fatalf("setup: %d %v", code, out)
	}
	token, _ := out["reset_token"].(string)
	if code, out := c.do("POST", "/api/wallet/setup", map[string]string{"mnemonic": words, "protection": "passphrase", "passphrase": passphrase}); code != 200 {
		t.Fatalf("wallet setup: %d %v", code, out)
	}
	_, out = c.do("GET", "/api/status", nil)
	if out["box_name"] != name {
		t.Errorf("restored box name %v, want %s", out["box_name"], name)
	}
	_, wallet = c.do("GET", "/api/wallet", nil)
	if again, _ := json.Marshal(wallet["accounts"]); !bytes.Equal(again, accounts) {
		t.Errorf("restored wallet accounts differ:\n%s\nwant\n%s", again, accounts)
	}
	var next string
	deadline = time.Now().Add(2 * time.Minute)
	for next == "" {
		code, out := c.do("POST", "/api/node/address", map[string]any{})
		if code == 200 {
			next = out["address"].(string)
		} else if time.Now().After(deadline) {
			t.Fatalf("receive address: %d %v", code, out)
		}
		time.Sleep(time.Second)
	}
	if slices.Contains(handed, next) {
		t.Errorf("the restored box handed out %s again: the address index was not restored", next)
	}
	var acc []hsm.Account
	json.Unmarshal(accounts, &acc)
	d, err := keys.ParseDescriptor(acc[0].Receive)
	if err != nil {
		t.Fatal(err)
	}
	want, err := d.DeriveAddress(keys.Mainnet, uint32(len(handed)))
	if err != nil {
		t.Fatal(err)
	}
	if next != want.String() {
		t.Errorf("next receive address %s, want index %d: %s", next, len(handed), want)
	}

	// 4. Factory reset from the page, then look for the old secrets on the disk.
	sum := sha256.Sum256([]byte(strings.ToUpper(strings.ReplaceAll(token, "-", ""))))
	tokenHash := hex.EncodeToString(sum[:])
	if code, out := c.do("POST", "/api/reset", map[string]string{"password": newPassword, "confirm": "erase this box"}); code != 200 {
		t.Fatalf("factory reset: %d %v", code, out)
	}
	start = time.Now()
	b.waitFor(goodbye, idx+1)
	b.waitFor(regexp.MustCompile(`factory reset done`), idx+1)
	b.waitFor(qemu.ReadyLine, idx+1)
	t.Logf("factory reset: back at the wizard %.1f s after the request (TCG)", time.Since(start).Seconds())
	c = b.client()
	if code, out := c.do("GET", "/api/status", nil); code != http.StatusConflict {
		t.Fatalf("after the factory reset: /api/status = %d %v, want 409 (setup required)", code, out)
	}
	b.stop()
	disk, err := os.ReadFile(internal)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{name, tokenHash, acc[0].XPub, labelRent} {
		if i := bytes.Index(disk, []byte(secret)); i >= 0 {
			t.Errorf("the disk still holds %q at byte %d after the factory reset", secret, i)
		}
	}
	if sf, err := image.ReadSlot(internal, "a"); err != nil || sf.SystemSize == 0 {
		t.Errorf("the firmware did not survive the factory reset: %v", err)
	}
}
