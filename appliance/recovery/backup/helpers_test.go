package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"go.etcd.io/bbolt"

	"github.com/anya-edge/anya/hsm"
	"github.com/anya-edge/anya/hsm/audit"
	"github.com/anya-edge/anya/hsm/keys"
	"github.com/anya-edge/anya/hsm/seal"
	"github.com/anya-edge/anya/hsm/sign"
	"github.com/anya-edge/anya/node/backend"
	"github.com/anya-edge/anya/node/wallet"
	"github.com/anya-edge/anya/storage"
)

const (
	// The BIP84 test mnemonic: fingerprint 73c5da0a, first address bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu.
	abandon = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
	legal   = "legal winner thank year wave sausage worth useful legal winner thank yellow"
)

var (
	ctx        = context.Background()
	passphrase = []byte("correct horse battery staple")
	// testKnown is what this firmware's subsystems know: node/wallet has two migrations,
	// the others one.
	testKnown = map[string]int{"web": 1, "backend": 1, "wallet": 2, "hsm": 1, "audit": 1, "update": 1}
)

func testPolicy() Policy { return DefaultPolicy(testKnown) }

func cheapSealers(t testing.TB) map[string]seal.Sealer {
	t.Helper()
	p, err := seal.NewPassphrase(seal.WithArgon2(seal.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}))
	if err != nil {
		t.Fatal(err)
	}
	return map[string]seal.Sealer{seal.KindPassphrase: p}
}

// box is an Anya box's database with its custody.
type box struct {
	t    testing.TB
	path string
	db   *storage.DB
	c    *hsm.Custody
}

// openBox opens (creating) the database at path and migrates its subsystems as the firmware
// does at start: the custody with its audit trail, the chain backend's and the wallet's for
// real, and stand-ins with the same layout for the page (appliance/web) and the updater
// (appliance/update/agent), which this package does not import.
func openBox(t testing.TB, path string) *box {
	t.Helper()
	db, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	standIn := func(sub string, buckets ...string) {
		err := db.Migrate(sub, []storage.Migration{{Version: 1, Name: "stand-in", Up: func(tx *bbolt.Tx) error {
			for _, name := range buckets {
				if _, err := tx.Bucket([]byte(sub)).CreateBucketIfNotExists([]byte(name)); err != nil {
					return err
				}
			}
			return nil
		}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	standIn("web", "admin", "sessions")
	standIn("update", "trust", "attempts", "versions")
	c, err := hsm.New(hsm.Config{DB: db, Network: keys.Mainnet, Sealers: cheapSealers(t), Policy: sign.Policy{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := backend.Load(db); err != nil {
		t.Fatal(err)
	}
	if _, err := wallet.OpenStore(db, nil); err != nil {
		t.Fatal(err)
	}
	b := &box{t: t, path: path, db: db, c: c}
	t.Cleanup(b.close)
	return b
}

func (b *box) close() {
	if b.db == nil {
		return
	}
	b.c.Lock()
	if err := b.db.Close(); err != nil {
		b.t.Errorf("close: %v", err)
	}
	b.db = nil
}

func (b *box) setup(mnemonic string) {
	b.t.Helper()
	err := b.c.Setup(ctx, hsm.SetupRequest{Mnemonic: mnemonic, Protection: seal.KindPassphrase, Auth: seal.Auth{Passphrase: passphrase}})
	if err != nil {
		b.t.Fatal(err)
	}
}

// descriptors are the custody's single-key account descriptors, BIP84 first, as the
// appliance hands them to the wallet.
func (b *box) descriptors() []string {
	b.t.Helper()
	st, err := b.c.Status()
	if err != nil {
		b.t.Fatal(err)
	}
	var first, rest []string
	for _, a := range st.Accounts {
		switch {
		case strings.HasPrefix(a.Purpose, "BIP48"), a.Descriptor == "":
		case strings.HasPrefix(a.Purpose, "BIP84"):
			first = append(first, a.Descriptor)
		default:
			rest = append(rest, a.Descriptor)
		}
	}
	return append(first, rest...)
}

func (b *box) wallet() *wallet.Wallet {
	b.t.Helper()
	w, err := wallet.Open(wallet.Config{DB: b.db, Network: keys.Mainnet, Descriptors: b.descriptors()})
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { w.Close() })
	return w
}

func (b *box) options() Options {
	b.t.Helper()
	st, err := b.c.Status()
	if err != nil {
		b.t.Fatal(err)
	}
	return Options{Policy: testPolicy(), BoxVersion: "1.4.0-test", Network: keys.Mainnet.String(), Accounts: st.Accounts}
}

// backup writes a backup of the box to memory.
func (b *box) backup() []byte {
	b.t.Helper()
	to, err := b.c.BackupRecipient()
	if err != nil {
		b.t.Fatal(err)
	}
	var buf bytes.Buffer
	m, err := Write(&buf, b.db, to, b.options())
	if err != nil {
		b.t.Fatal(err)
	}
	if m.Size != int64(buf.Len()) {
		b.t.Fatalf("manifest size %d, wrote %d", m.Size, buf.Len())
	}
	return buf.Bytes()
}

func mustPut[V any](t testing.TB, tbl *storage.Table[V], k string, v V) {
	t.Helper()
	if err := tbl.Put(k, v); err != nil {
		t.Fatal(err)
	}
}

// fill gives a set-up box what an owner's box accumulates: a name, an admin password and a
// session, backend settings, handed-out addresses, txs wallet transactions in blocks of up
// to 100, labels, spends, updater records and audit records.
func (b *box) fill(txs int) {
	t := b.t
	t.Helper()
	db := b.db
	mustPut(t, storage.NewTable[string](db, "web"), "box_name", "satoshi-box")
	mustPut(t, storage.NewTable[map[string]string](db, "web", "admin"), "password", map[string]string{"hash": "$argon2id$v=19$ADMIN-PASSWORD-HASH"})
	mustPut(t, storage.NewTable[map[string]string](db, "web", "sessions"), "5e55104", map[string]string{"csrf": "SESSION-CSRF-TOKEN"})
	err := backend.Save(db, backend.Settings{Kind: backend.KindRPC, RPC: backend.RPCSettings{Host: "192.168.1.20:8332", User: "bitcoin", Pass: "rpc-password", NoTLS: true}})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, storage.NewTable[map[string]any](db, "update", "trust"), "state", map[string]any{"root_version": 3})
	mustPut(t, storage.NewTable[map[string]any](db, "update", "attempts"), "00000000000000000001", map[string]any{"slot": "anya-b", "result": "committed"})
	mustPut(t, storage.NewTable[sign.Spend](db, "hsm", "spends"), "spend1", sign.Spend{Time: time.Unix(1_800_000_000, 0).UTC(), Amount: 125_000})

	w := b.wallet()
	for range 3 {
		if _, err := w.NewAddress(); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	d, err := keys.ParseDescriptor(b.descriptors()[0])
	if err != nil {
		t.Fatal(err)
	}
	recv := d.Singles()[0]
	scripts := wallet.Scripts{}
	var pk [][]byte
	for i := range uint32(40) {
		a, err := recv.DeriveAddress(keys.Mainnet, i)
		if err != nil {
			t.Fatal(err)
		}
		scripts[string(a.ScriptPubKey)] = wallet.Script{Path: keys.Path{0, i}, Type: keys.ScriptWPKH}
		pk = append(pk, a.ScriptPubKey)
	}
	store, err := wallet.OpenStore(db, scripts)
	if err != nil {
		t.Fatal(err)
	}
	labels := storage.NewTable[string](db, "wallet", "labels") // a stand-in until the wallet has labels
	prev := chainhash.Hash{}
	for height, n := int32(1), 0; n < txs; height++ {
		blk := wallet.Block{Height: height, PrevHash: prev, Time: time.Unix(1_700_000_000+int64(height)*600, 0)}
		binary.BigEndian.PutUint32(blk.Hash[:], uint32(height))
		blk.Hash[31] = 0xAB
		for i := 0; i < 100 && n < txs; i, n = i+1, n+1 {
			blk.Txs = append(blk.Txs, payment(n, pk[n%len(pk)]))
		}
		if _, err := store.ConnectBlock(blk); err != nil {
			t.Fatal(err)
		}
		prev = blk.Hash
		if height <= 3 {
			mustPut(t, labels, blk.Txs[0].TxHash().String(), fmt.Sprintf("payment %d from Alice", height))
		}
	}
	// More audit records: a lock and an unlock.
	b.c.Lock()
	if err := b.c.Unlock(ctx, seal.Auth{Passphrase: passphrase}); err != nil {
		t.Fatal(err)
	}
}

// payment is a plausible transaction paying script: one P2WPKH input with its witness, the
// payment and change to someone else.
func payment(n int, script []byte) *wire.MsgTx {
	seed := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(n)))
	tx := wire.NewMsgTx(2)
	sig := append(bytes.Repeat(seed[:], 3)[:71], 1)
	pub := append([]byte{2}, seed[:]...)
	tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: chainhash.Hash(seed), Index: uint32(n % 3)}, nil, [][]byte{sig, pub}))
	tx.AddTxOut(wire.NewTxOut(10_000+int64(n), script))
	other := append([]byte{0, 20}, seed[12:]...)
	tx.AddTxOut(wire.NewTxOut(1_000_000-int64(n), other))
	return tx
}

// state is what the owner sees of a box, for comparing a box with its restored copy.
type state struct {
	Fingerprint string
	Accounts    []hsm.Account
	BoxName     string
	Backend     backend.Settings
	History     []wallet.Entry
	Balance     wallet.Balance
	Tip         wallet.Tip
	NextAddress string
	Labels      map[string]string
	Spends      map[string]sign.Spend
	Audit       []audit.Record
}

// snapshot reads the box's state; it hands out one address (the next one).
func (b *box) snapshot() state {
	t := b.t
	t.Helper()
	var s state
	st, err := b.c.Status()
	if err != nil {
		t.Fatal(err)
	}
	s.Fingerprint, s.Accounts = st.Fingerprint, st.Accounts
	s.BoxName, _, _ = storage.NewTable[string](b.db, "web").Get("box_name")
	s.Backend, _, _ = backend.Load(b.db)
	store, err := wallet.OpenStore(b.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.History, err = store.History(); err != nil {
		t.Fatal(err)
	}
	s.Balance, _ = store.Balance()
	s.Tip, _, _ = store.Tip()
	w := b.wallet()
	a, err := w.NewAddress()
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	s.NextAddress = a.Address
	s.Labels = map[string]string{}
	_ = storage.NewTable[string](b.db, "wallet", "labels").ForEach(func(k, v string) error { s.Labels[k] = v; return nil })
	s.Spends = map[string]sign.Spend{}
	_ = storage.NewTable[sign.Spend](b.db, "hsm", "spends").ForEach(func(k string, v sign.Spend) error { s.Spends[k] = v; return nil })
	if s.Audit, err = b.c.Audit().List(0, 1<<20); err != nil {
		t.Fatal(err)
	}
	return s
}

// fileHash is the SHA-256 of a closed database file.
func fileHash(t testing.TB, path string) [32]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(data)
}

// secrets are byte strings that must never be found in a backup or a restored database.
func secrets(t testing.TB, mnemonic string) map[string][]byte {
	t.Helper()
	seed, err := keys.SeedFromMnemonic(mnemonic, nil)
	if err != nil {
		t.Fatal(err)
	}
	master, err := keys.NewMasterKey(seed, keys.Mainnet)
	if err != nil {
		t.Fatal(err)
	}
	xprv, err := master.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{
		"mnemonic": []byte(mnemonic), "seed": seed, "seed hex": fmt.Appendf(nil, "%x", seed),
		"master xprv": xprv, "xprv": []byte("xprv"), "tprv": []byte("tprv"),
	}
	for _, w := range slices.Compact(slices.Sorted(slices.Values(strings.Fields(mnemonic)))) {
		out["word "+w] = []byte(w)
	}
	return out
}

func tempPath(t testing.TB, name string) string { return filepath.Join(t.TempDir(), name) }
