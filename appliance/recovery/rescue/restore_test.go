package rescue_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anya-edge/anya/appliance/recovery/backup"
	"github.com/anya-edge/anya/appliance/recovery/rescue"
	"github.com/anya-edge/anya/hsm"
	"github.com/anya-edge/anya/storage"
	"go.etcd.io/bbolt"
)

const (
	abandon = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
	legal   = "legal winner thank year wave sausage worth useful legal winner thank yellow"
)

// sourceDB is an old box's database: a wallet subsystem with a label, the page's settings.
func sourceDB(t *testing.T, path string) *storage.DB {
	t.Helper()
	db, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for sub, kv := range map[string][2]string{"wallet": {"labels", "coffee fund"}, "web": {"settings", "box name: kitchen"}} {
		err := db.Migrate(sub, []storage.Migration{{Version: 1, Name: "stand-in", Up: func(tx *bbolt.Tx) error {
			b, err := tx.Bucket([]byte(sub)).CreateBucketIfNotExists([]byte(kv[0]))
			if err != nil {
				return err
			}
			return b.Put([]byte("k"), []byte(kv[1]))
		}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	return db
}

func writeBackup(t *testing.T, dir, mnemonic string) string {
	t.Helper()
	db := sourceDB(t, filepath.Join(t.TempDir(), "old.db"))
	defer db.Close()
	key, err := hsm.BackupKeyFromMnemonic(mnemonic, nil)
	if err != nil {
		t.Fatal(err)
	}
	known, _ := backup.KnownSchemas(db, "wallet", "web", "backend", "hsm", "audit", "update")
	for _, s := range []string{"backend", "hsm", "audit", "update"} {
		known[s] = 1
	}
	var buf bytes.Buffer
	start := time.Now()
	m, err := backup.Write(&buf, db, key.Recipient(), backup.Options{Policy: backup.DefaultPolicy(known), Network: "regtest", BoxVersion: "1.2.0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("backup: %d bytes in %s", m.Size, time.Since(start))
	name := filepath.Join(dir, "anya-"+key.Fingerprint()+"-"+strings.ReplaceAll(mnemonic[:5], " ", "")+backup.FileSuffix)
	if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

func label(t *testing.T, dbPath string) string {
	t.Helper()
	db, err := storage.Open(dbPath, storage.Options{ReadOnly: true})
	if err != nil {
		return ""
	}
	defer db.Close()
	var v string
	db.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket([]byte("wallet")); b != nil {
			if l := b.Bucket([]byte("labels")); l != nil {
				v = string(l.Get([]byte("k")))
			}
		}
		return nil
	})
	return v
}

func TestRestoreFromStick(t *testing.T) {
	stick := t.TempDir()
	good := writeBackup(t, stick, abandon)
	other := writeBackup(t, stick, legal)
	b, _ := os.ReadFile(good)
	truncated := filepath.Join(stick, "cut"+backup.FileSuffix)
	os.WriteFile(truncated, b[:len(b)-100], 0o644)
	corrupted := filepath.Join(stick, "bad"+backup.FileSuffix)
	c := bytes.Clone(b)
	c[len(c)-200] ^= 0x40
	os.WriteFile(corrupted, c, 0o644)
	os.WriteFile(filepath.Join(stick, "notes.txt"), []byte("not a backup"), 0o644)

	list, err := rescue.ListBackups(stick)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 4 {
		t.Fatalf("listed %+v", list)
	}
	target := filepath.Join(t.TempDir(), "data", "anya.db")
	for _, c := range []struct {
		file, words string
		want        error
	}{
		{other, abandon, backup.ErrOtherWallet},
		{good, legal, backup.ErrOtherWallet},
		{truncated, abandon, backup.ErrTruncated},
		{corrupted, abandon, backup.ErrCorrupted},
	} {
		if _, err := rescue.CheckBackup(c.file, c.words, nil, "regtest"); !errors.Is(err, c.want) {
			t.Fatalf("check %s: %v, want %v", filepath.Base(c.file), err, c.want)
		}
		_, err := rescue.RestoreBackup(rescue.RestoreOptions{File: c.file, DBPath: target, Mnemonic: c.words, Network: "regtest"})
		if !errors.Is(err, c.want) {
			t.Fatalf("%s: %v, want %v", filepath.Base(c.file), err, c.want)
		}
		if !strings.Contains(rescue.Explain(err), "Nothing was changed") {
			t.Fatalf("explain: %s", rescue.Explain(err))
		}
		if l := label(t, target); l != "" {
			t.Fatalf("a refused restore wrote %q", l)
		}
	}
	if _, err := rescue.RestoreBackup(rescue.RestoreOptions{File: good, DBPath: target, Mnemonic: "abandon abandon", Network: "regtest"}); err == nil {
		t.Fatal("a bad mnemonic restored")
	}
	if m, err := rescue.CheckBackup(good, abandon, nil, "regtest"); err != nil || m.Fingerprint != "73c5da0a" {
		t.Fatalf("check the good backup: %v", err)
	}
	if _, err := rescue.CheckBackup(good, abandon, nil, "mainnet"); !errors.Is(err, backup.ErrOtherWallet) {
		t.Fatalf("check on another network: %v", err)
	}
	start := time.Now()
	m, err := rescue.RestoreBackup(rescue.RestoreOptions{File: good, DBPath: target, Mnemonic: abandon, Network: "regtest"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("restore took %s", time.Since(start))
	if m.Fingerprint != "73c5da0a" {
		t.Fatalf("fingerprint %s", m.Fingerprint)
	}
	if l := label(t, target); l != "coffee fund" {
		t.Fatalf("restored label %q", l)
	}
	rep := rescue.CheckData("", filepath.Dir(target), checker)
	if !rep.OK() || !rep.DBOpens || rep.Subsystems["wallet"] != 1 {
		t.Fatalf("check after restore: %+v", rep)
	}
	// Damage the database: the check says so.
	f, _ := os.OpenFile(target, os.O_RDWR, 0)
	fi, _ := f.Stat()
	f.WriteAt(bytes.Repeat([]byte{0xAA}, int(fi.Size())-2*4096), 2*4096)
	f.Close()
	if rep = rescue.CheckData("", filepath.Dir(target), checker); rep.OK() {
		t.Fatalf("check of a damaged database: %+v", rep)
	}
	t.Logf("damaged database: %s", rep.DBProblem)
	logs, err := rescue.ExportLogs(filepath.Join(stick, "logs"), time.Now(), []string{"line one", "line two"}, rep)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(logs); !bytes.Contains(b, []byte("line two")) || !bytes.Contains(b, []byte("db_problem")) {
		t.Fatalf("log export:\n%s", b)
	}
}

// checker checks a database in a child process: this test binary, through TestMain.
var checker = rescue.ProcessChecker(func(path string) *exec.Cmd {
	c := exec.Command(os.Args[0])
	c.Env = append(os.Environ(), "RESCUE_TEST_CHECK_DB="+path)
	return c
})

func TestMain(m *testing.M) {
	if p := os.Getenv("RESCUE_TEST_CHECK_DB"); p != "" {
		if err := rescue.ServeCheckDB(os.Stdout, p); err != nil {
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
