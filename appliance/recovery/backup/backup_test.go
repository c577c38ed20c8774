package backup

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"maps"
	"os"
	"reflect"
	"slices"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/anya-edge/anya/hsm"
	"github.com/anya-edge/anya/hsm/audit"
	"github.com/anya-edge/anya/hsm/keys"
	"github.com/anya-edge/anya/hsm/seal"
	"github.com/anya-edge/anya/storage"
)

func readOptions() ReadOptions {
	return ReadOptions{Policy: testPolicy(), Network: keys.Mainnet.String()}
}

// TestRoundTrip: a box's backup, restored on a new box from the mnemonic alone, gives the
// same wallet (descriptors, first addresses, next address, history, balance, tip, labels),
// the same settings and a verifying audit trail, and neither the backup nor the restored
// database holds a secret in the clear.
func TestRoundTrip(t *testing.T) {
	old := openBox(t, tempPath(t, "old.db"))
	old.setup(abandon)
	old.fill(250)
	data := old.backup()
	if st, _ := old.c.Status(); st.Accounts[0].FirstAddress != "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu" {
		t.Fatalf("first address %s", st.Accounts[0].FirstAddress)
	}
	want := old.snapshot() // hands out the next address, as the restored box will
	if len(want.History) != 250 || len(want.Labels) != 3 || len(want.Audit) < 2 {
		t.Fatalf("source state: %d history entries, %d labels, %d audit records", len(want.History), len(want.Labels), len(want.Audit))
	}
	sealed := sealedBlob(t, old.db)
	old.close()

	// Nothing secret in the backup, in its decrypted content, or in the old box's sealed blob
	// form: the content leaves out the sealed seed, the password hash and the sessions.
	key, err := hsm.BackupKeyFromMnemonic(abandon, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer key.Zero()
	_, export, err := open(bytes.NewReader(data), key, readOptions())
	if err != nil {
		t.Fatal(err)
	}
	forbidden := secrets(t, abandon)
	forbidden["sealed seed blob"] = sealed
	forbidden["admin password hash"] = []byte("ADMIN-PASSWORD-HASH")
	forbidden["session"] = []byte("SESSION-CSRF-TOKEN")
	forbidden["update attempt"] = []byte("committed")
	for what, s := range forbidden {
		if bytes.Contains(data, s) || bytes.Contains(export, s) {
			t.Errorf("the backup holds the %s", what)
		}
	}
	for _, s := range []string{"rpc-password", "satoshi-box", "payment 1 from Alice", "root_version"} {
		if !bytes.Contains(export, []byte(s)) {
			t.Errorf("the backup's content lacks %q", s)
		}
		if bytes.Contains(data, []byte(s)) {
			t.Errorf("the backup holds %q in the clear", s)
		}
	}

	m, err := Verify(bytes.NewReader(data), key, readOptions())
	if err != nil {
		t.Fatal(err)
	}
	if m.Fingerprint != "73c5da0a" || m.Network != "mainnet" || m.BoxVersion != "1.4.0-test" || m.Size != int64(len(data)) ||
		!reflect.DeepEqual(m.Accounts, want.Accounts) {
		t.Fatalf("manifest %+v", m)
	}
	var names []string
	for _, c := range m.Contents {
		names = append(names, c.Subsystem)
	}
	if !slices.Equal(names, []string{"web", "backend", "wallet", "hsm", "audit", "update"}) {
		t.Fatalf("contents %v", names)
	}

	t.Run("restore, then set up", func(t *testing.T) {
		nb := openBox(t, tempPath(t, "new.db"))
		if _, err := Restore(bytes.NewReader(data), key, nb.db, readOptions()); err != nil {
			t.Fatal(err)
		}
		nb.setup(abandon)
		got := nb.snapshot()
		compare(t, got, want)
		// The new box's setup and unlock records follow the old trail.
		if !slices.Equal(got.Audit[:len(want.Audit)], want.Audit) {
			t.Fatal("the audit trail's old records differ")
		}
		if _, err := nb.c.Audit().Verify(); err != nil {
			t.Fatal(err)
		}
		notRestored(t, nb)
		path := nb.path
		nb.close()
		assertNoSecrets(t, path, secrets(t, abandon))
	})

	t.Run("set up, then restore with the custody's key", func(t *testing.T) {
		nb := openBox(t, tempPath(t, "new.db"))
		nb.setup(abandon)
		mustPut(t, storage.NewTable[map[string]string](nb.db, "web", "admin"), "password", map[string]string{"hash": "NEW-BOX-PASSWORD"})
		k, err := nb.c.BackupKey()
		if err != nil {
			t.Fatal(err)
		}
		defer k.Zero()
		opts := readOptions()
		opts.Audit = nb.c.Audit()
		if _, err := Restore(bytes.NewReader(data), k, nb.db, opts); err != nil {
			t.Fatal(err)
		}
		got := nb.snapshot()
		if st, _ := nb.c.Status(); st.State != hsm.StateUnlocked || st.Protection != "passphrase" {
			t.Fatalf("the new box's wallet record was not kept: %+v", st)
		}
		compare(t, got, want)
		// The backup's trail replaced the new box's, and the restore is its last record.
		if !slices.Equal(got.Audit[:len(want.Audit)], want.Audit) || len(got.Audit) != len(want.Audit)+1 ||
			got.Audit[len(want.Audit)].Event != audit.EventBackup {
			t.Fatalf("audit trail after restore: %+v", got.Audit[len(want.Audit)-1:])
		}
		if _, err := nb.c.Audit().Verify(); err != nil {
			t.Fatal(err)
		}
		if v, _, _ := storage.NewTable[map[string]string](nb.db, "web", "admin").Get("password"); v["hash"] != "NEW-BOX-PASSWORD" {
			t.Fatal("the new box's admin password was replaced")
		}
		// The box locks and unlocks with its own sealed seed.
		nb.c.Lock()
		if err := nb.c.Unlock(ctx, sealAuth()); err != nil {
			t.Fatal(err)
		}
	})
}

func compare(t *testing.T, got, want state) {
	t.Helper()
	g, w := got, want
	g.Audit, w.Audit = nil, nil
	if !reflect.DeepEqual(g, w) {
		gj, _ := json.MarshalIndent(g, "", " ")
		wj, _ := json.MarshalIndent(w, "", " ")
		if len(gj) > 3000 {
			gj, wj = gj[:3000], wj[:3000]
		}
		t.Fatalf("restored box differs:\n%s\nwant:\n%s", gj, wj)
	}
}

// notRestored checks that what backups never hold is not on the restored box.
func notRestored(t *testing.T, b *box) {
	t.Helper()
	if n, _ := storage.NewTable[map[string]string](b.db, "web", "sessions").Len(); n != 0 {
		t.Error("sessions were restored")
	}
	if n, _ := storage.NewTable[map[string]string](b.db, "web", "admin").Len(); n != 0 {
		t.Error("the admin password was restored")
	}
	if n, _ := storage.NewTable[map[string]any](b.db, "update", "attempts").Len(); n != 0 {
		t.Error("update attempts were restored")
	}
	if n, _ := storage.NewTable[map[string]any](b.db, "update", "trust").Len(); n != 0 {
		t.Error("the update trust state was restored (it is carried, not restored)")
	}
}

// sealedBlob returns the sealed seed's bytes from the custody's record.
func sealedBlob(t *testing.T, db *storage.DB) []byte {
	t.Helper()
	rec, ok, err := storage.NewTable[struct {
		Sealed struct{ Data []byte } `json:"sealed"`
	}](db, "hsm", "wallet").Get("current")
	if err != nil || !ok || len(rec.Sealed.Data) < 32 {
		t.Fatalf("sealed blob: %v %v", ok, err)
	}
	return []byte(base64.StdEncoding.EncodeToString(rec.Sealed.Data))[:40]
}

func assertNoSecrets(t *testing.T, path string, secrets map[string][]byte) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for what, s := range secrets {
		if bytes.Contains(raw, s) {
			t.Errorf("%s holds the %s", path, what)
		}
	}
}

// restoreCase restores data into a copy of the target database file and reports the error
// and whether the file's bytes changed.
type target struct {
	t    *testing.T
	path string
}

func newTarget(t *testing.T) *target {
	nb := openBox(t, tempPath(t, "target.db"))
	nb.setup(abandon)
	mustPut(t, storage.NewTable[string](nb.db, "web"), "box_name", "target-box")
	path := nb.path
	nb.close()
	return &target{t: t, path: path}
}

// restore tries data and checks that the database file is byte for byte unchanged.
func (tg *target) restore(data []byte, key *hsm.BackupKey, opts ReadOptions) error {
	tg.t.Helper()
	before := fileHash(tg.t, tg.path)
	db, err := storage.Open(tg.path, storage.Options{})
	if err != nil {
		tg.t.Fatal(err)
	}
	_, rerr := Restore(bytes.NewReader(data), key, db, opts)
	if err := db.Close(); err != nil {
		tg.t.Fatal(err)
	}
	if rerr != nil && fileHash(tg.t, tg.path) != before {
		tg.t.Errorf("failed restore (%v) changed the database", rerr)
	}
	return rerr
}

func TestRefusals(t *testing.T) {
	old := openBox(t, tempPath(t, "old.db"))
	old.setup(abandon)
	old.fill(600) // several chunks
	data := old.backup()
	other := openBox(t, tempPath(t, "other.db"))
	other.setup(legal)
	other.fill(5)
	otherData := other.backup()

	key, _ := hsm.BackupKeyFromMnemonic(abandon, nil)
	defer key.Zero()
	withPass, _ := hsm.BackupKeyFromMnemonic(abandon, []byte("TREZOR"))
	defer withPass.Zero()
	tg := newTarget(t)

	hdr, err := ReadHeader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	hb, _, _ := encodeHeader(hdr)
	hlen := len(hb)
	nchunks := (len(data) - hlen) / chunkSealed
	if (len(data)-hlen)%chunkSealed != 0 || nchunks < 3 {
		t.Fatalf("%d bytes after a %d-byte header: not %d-byte chunks, or fewer than 3", len(data)-hlen, hlen, chunkSealed)
	}
	t.Logf("backup: %d bytes, header %d, %d chunks", len(data), hlen, nchunks)

	t.Run("corrupted byte", func(t *testing.T) {
		offsets := map[int]error{}
		for i := range 8 {
			offsets[i] = ErrNotBackup // the magic
		}
		for i := 8; i < prefixSize; i++ {
			offsets[i] = ErrCorrupted // version, length, CRC
		}
		for _, i := range []int{prefixSize, prefixSize + 1, hlen / 2, hlen - checksumSize - 1, hlen - checksumSize, hlen - 1} {
			offsets[i] = ErrCorrupted // body and checksum
		}
		for c := range nchunks {
			start := hlen + c*chunkSealed
			for _, i := range []int{start, start + 1, start + chunkSealed/2, start + chunkSealed - 17, start + chunkSealed - 1} {
				offsets[i] = ErrCorrupted // ciphertext and tag
			}
		}
		for _, off := range slices.Sorted(maps.Keys(offsets)) {
			bad := bytes.Clone(data)
			bad[off] ^= 0x01
			if err := tg.restore(bad, key, readOptions()); !errors.Is(err, offsets[off]) {
				t.Errorf("byte %d flipped: %v, want %v", off, err, offsets[off])
			}
		}
	})

	t.Run("truncated", func(t *testing.T) {
		cuts := []int{0, 1, 7, 8, prefixSize - 1, prefixSize, hlen / 2, hlen - 1, hlen}
		for c := range nchunks {
			start := hlen + c*chunkSealed
			cuts = append(cuts, start+1, start+chunkSealed/2, start+chunkSealed-1)
			if c > 0 {
				cuts = append(cuts, start) // at a chunk boundary
			}
		}
		for _, cut := range cuts {
			if err := tg.restore(data[:cut], key, readOptions()); !errors.Is(err, ErrTruncated) {
				t.Errorf("cut at %d of %d: %v", cut, len(data), err)
			}
		}
		if err := tg.restore(append(bytes.Clone(data), 0), key, readOptions()); !errors.Is(err, ErrCorrupted) {
			t.Errorf("a byte appended: %v", err)
		}
	})

	t.Run("another wallet", func(t *testing.T) {
		err := tg.restore(otherData, key, readOptions())
		var we *WalletMismatchError
		if !errors.Is(err, ErrOtherWallet) || !errors.As(err, &we) || we.BackupFingerprint == "73c5da0a" || we.KeyFingerprint != "73c5da0a" {
			t.Fatalf("%v", err)
		}
		t.Log(err)
		// The same words with a BIP39 passphrase are another wallet too.
		if err := tg.restore(data, withPass, readOptions()); !errors.Is(err, ErrOtherWallet) {
			t.Fatalf("with a passphrase: %v", err)
		}
		// A backup of another network.
		opts := readOptions()
		opts.Network = keys.Testnet.String()
		if err := tg.restore(data, key, opts); !errors.Is(err, ErrOtherWallet) {
			t.Fatalf("other network: %v", err)
		}
	})

	t.Run("wrong key", func(t *testing.T) {
		// Same wallet id, but the encapsulated key is another backup's: the key check fails.
		second := old.backup()
		h2, _ := ReadHeader(bytes.NewReader(second))
		h := *hdr
		h.Enc = h2.Enc
		if err := tg.restore(rewriteHeader(t, data, &h, FormatVersion), key, readOptions()); !errors.Is(err, ErrWrongKey) {
			t.Fatalf("%v", err)
		}
		// A well-formed key check over chunks sealed under another key.
		h.KeyCheck = h2.KeyCheck
		if err := tg.restore(rewriteHeader(t, data, &h, FormatVersion), key, readOptions()); !errors.Is(err, ErrCorrupted) {
			t.Fatalf("%v", err)
		}
	})

	t.Run("newer format", func(t *testing.T) {
		if err := tg.restore(rewriteHeader(t, data, hdr, FormatVersion+1), key, readOptions()); !errors.Is(err, ErrNewerFormat) {
			t.Fatalf("version: %v", err)
		}
		h := *hdr
		h.Cipher = "aes-256-gcm-siv"
		if err := tg.restore(rewriteHeader(t, data, &h, FormatVersion), key, readOptions()); !errors.Is(err, ErrNewerFormat) {
			t.Fatalf("cipher: %v", err)
		}
		h = *hdr
		h.KeyVersion = hsm.BackupKeyVersion + 1
		if err := tg.restore(rewriteHeader(t, data, &h, FormatVersion), key, readOptions()); !errors.Is(err, ErrNewerFormat) {
			t.Fatalf("key version: %v", err)
		}
	})

	t.Run("newer schema", func(t *testing.T) {
		// The wallet's schema had a breaking third migration on the old box.
		nw := openBox(t, tempPath(t, "newer.db"))
		nw.setup(abandon)
		nw.fill(3)
		err := nw.db.Migrate("wallet", append(walletMigrationsStub(2), storage.Migration{Version: 3, Name: "new format", Breaking: true,
			Up: func(*bbolt.Tx) error { return nil }}))
		if err != nil {
			t.Fatal(err)
		}
		if err := tg.restore(nw.backup(), key, readOptions()); !errors.Is(err, ErrNewerSchema) || !errors.Is(err, storage.ErrSchemaTooNew) {
			t.Fatalf("breaking: %v", err)
		}
		// A subsystem this firmware does not know (newer firmware backs up more).
		known := maps.Clone(testKnown)
		known["lightning"] = 1
		p := DefaultPolicy(known)
		p.Items = append(p.Items, Item{Subsystem: "lightning"})
		mustPut(t, storage.NewTable[string](nw.db, "lightning", "channels"), "c1", "channel")
		to, _ := nw.c.BackupRecipient()
		opts := nw.options()
		opts.Policy = p
		var buf bytes.Buffer
		if _, err := Write(&buf, nw.db, to, opts); err != nil {
			t.Fatal(err)
		}
		if err := tg.restore(buf.Bytes(), key, readOptions()); !errors.Is(err, ErrNewerSchema) {
			t.Fatalf("unknown subsystem: %v", err)
		}
	})

	t.Run("not a backup", func(t *testing.T) {
		for _, d := range [][]byte{[]byte("SQLite format 3\x00"), bytes.Repeat([]byte{0}, 4096)} {
			if err := tg.restore(d, key, readOptions()); !errors.Is(err, ErrNotBackup) {
				t.Fatalf("%q: %v", d[:8], err)
			}
		}
		raw, _ := os.ReadFile(tg.path)
		if err := tg.restore(raw, key, readOptions()); !errors.Is(err, ErrNotBackup) {
			t.Fatalf("a database file: %v", err)
		}
	})

	// After all that, the intact backup still restores into the same target.
	if err := tg.restore(data, key, readOptions()); err != nil {
		t.Fatal(err)
	}
}

// rewriteHeader replaces data's header by h, written with the given format version and
// valid checksums, and keeps the chunks.
func rewriteHeader(t *testing.T, data []byte, h *Header, version uint16) []byte {
	t.Helper()
	old, _, err := readHeader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	ob, _, _ := encodeHeader(old)
	nb, _, err := encodeHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	binary.BigEndian.PutUint16(nb[8:], version)
	binary.BigEndian.PutUint32(nb[14:], crc32.Checksum(nb[:14], castagnoli))
	body := nb[prefixSize : len(nb)-checksumSize]
	sum := sha256Sum(nb[:prefixSize], body)
	copy(nb[len(nb)-checksumSize:], sum[:])
	return append(nb, data[len(ob):]...)
}

func sealAuth() seal.Auth { return seal.Auth{Passphrase: passphrase} }

// walletMigrationsStub stands for node/wallet's first n migrations, already applied.
func walletMigrationsStub(n int) []storage.Migration {
	var ms []storage.Migration
	for v := 1; v <= n; v++ {
		ms = append(ms, storage.Migration{Version: v, Name: "applied", Up: func(*bbolt.Tx) error { return nil }})
	}
	return ms
}

func sha256Sum(parts ...[]byte) [32]byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}
