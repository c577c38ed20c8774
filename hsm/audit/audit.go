// Package audit keeps the signer's tamper-evident audit trail: every unseal, change of
// protection and signature is appended as a record that carries the SHA-256 of the record
// before it, so editing, deleting or reordering any record breaks the chain and [Log.Verify]
// says where.
//
// Records live in the "audit" bucket of the box's database (package storage), keyed by their
// big-endian sequence number. The head (last sequence number and hash) is kept beside them, so
// cutting records off the end is detected too — unless the attacker also rewrites the head,
// which someone with write access to the database file can always do; the chain protects
// against quiet edits and partial loss, not against replacing the whole log. Anchoring the
// head in TPM NV memory would close that gap and is left for the TPM work.
//
// Details are short human-readable strings chosen by the caller; they must never contain
// secrets (the signer logs txids, amounts, providers — never keys, PINs or passphrases).
package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/anya-edge/anya/storage"
	"go.etcd.io/bbolt"
)

// Subsystem is the storage subsystem (and top-level bucket) of the audit log.
const Subsystem = "audit"

// Events.
const (
	EventSeal    = "seal"    // a seed was sealed, or its protection changed
	EventUnseal  = "unseal"  // a sealed seed was opened
	EventSign    = "sign"    // a transaction was signed
	EventRefuse  = "refuse"  // a signing request was refused by policy
	EventBackup  = "backup"  // the backup key was opened, or a backup was restored
	EventNodeKey = "nodekey" // the Lightning node key was opened (node start)
)

// Record is one entry of the trail.
type Record struct {
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Event  string    `json:"event"`
	Detail string    `json:"detail"`
	Prev   string    `json:"prev"` // hex SHA-256 of the previous record, zeros for the first
	Hash   string    `json:"hash"` // hex SHA-256 of this record
}

type head struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

var genesis = hex.EncodeToString(make([]byte, sha256.Size))

// hash commits to every field of the record but Hash.
func (r *Record) hash() string {
	h := sha256.New()
	var b [8]byte
	h.Write([]byte("anya-audit-v1\x00"))
	prev, _ := hex.DecodeString(r.Prev)
	h.Write(prev)
	binary.BigEndian.PutUint64(b[:], r.Seq)
	h.Write(b[:])
	binary.BigEndian.PutUint64(b[:], uint64(r.Time.UnixNano()))
	h.Write(b[:])
	for _, s := range []string{r.Event, r.Detail} {
		binary.BigEndian.PutUint64(b[:], uint64(len(s)))
		h.Write(b[:])
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Log is the audit trail in one database.
type Log struct {
	db      *storage.DB
	records *storage.Table[Record]
	head    *storage.Table[head]
	now     func() time.Time
	mu      sync.Mutex
}

// Open prepares the audit bucket of db. A read-only database (a backup being checked) is used
// as it is.
func Open(db *storage.DB) (*Log, error) {
	if db.ReadOnly() {
		return newLog(db), nil
	}
	err := db.Migrate(Subsystem, []storage.Migration{{
		Version: 1, Name: "audit records and head",
		Up: func(tx *bbolt.Tx) error {
			b := tx.Bucket([]byte(Subsystem))
			if _, err := b.CreateBucketIfNotExists([]byte("records")); err != nil {
				return err
			}
			_, err := b.CreateBucketIfNotExists([]byte("head"))
			return err
		},
	}})
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	return newLog(db), nil
}

func newLog(db *storage.DB) *Log {
	return &Log{
		db:      db,
		records: storage.NewTable[Record](db, Subsystem, "records"),
		head:    storage.NewTable[head](db, Subsystem, "head"),
		now:     time.Now,
	}
}

func seqKey(seq uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	return string(b[:])
}

// Append adds a record and returns it.
func (l *Log) Append(event, detail string) (Record, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var rec Record
	err := l.db.Update(func(tx *bbolt.Tx) error {
		var err error
		rec, err = l.AppendTx(tx, event, detail)
		return err
	})
	if err != nil {
		return Record{}, fmt.Errorf("append audit record: %w", err)
	}
	return rec, nil
}

// AppendTx is Append within the writable transaction tx, so that the record commits (or
// rolls back) together with the change it records, for example a restore that replaces the
// whole log.
func (l *Log) AppendTx(tx *bbolt.Tx, event, detail string) (Record, error) {
	h, ok, err := l.head.GetTx(tx, "head")
	if err != nil {
		return Record{}, err
	}
	if !ok {
		h = head{Hash: genesis}
	}
	rec := Record{Seq: h.Seq + 1, Time: l.now().UTC(), Event: event, Detail: detail, Prev: h.Hash}
	rec.Hash = rec.hash()
	if err := l.records.PutTx(tx, seqKey(rec.Seq), rec); err != nil {
		return Record{}, err
	}
	if err := l.head.PutTx(tx, "head", head{Seq: rec.Seq, Hash: rec.Hash}); err != nil {
		return Record{}, err
	}
	return rec, nil
}

// ErrBroken means the chain does not verify; the error says at which record.
var ErrBroken = errors.New("audit chain broken")

// Verify walks the whole chain and returns the number of records. An edited, deleted,
// inserted or reordered record, or records cut off the end, give an error wrapping ErrBroken.
func (l *Log) Verify() (int, error) {
	n := 0
	prev := genesis
	err := l.db.View(func(tx *bbolt.Tx) error {
		err := l.records.ForEachTx(tx, func(key string, r Record) error {
			n++
			want := uint64(n)
			switch {
			case key != seqKey(r.Seq):
				return fmt.Errorf("%w: record stored under the key of %d claims sequence %d", ErrBroken, binary.BigEndian.Uint64([]byte(key)), r.Seq)
			case r.Seq != want:
				return fmt.Errorf("%w: record %d is missing (found %d next)", ErrBroken, want, r.Seq)
			case r.Prev != prev:
				return fmt.Errorf("%w: record %d does not follow record %d", ErrBroken, r.Seq, r.Seq-1)
			case r.hash() != r.Hash:
				return fmt.Errorf("%w: record %d was modified", ErrBroken, r.Seq)
			}
			prev = r.Hash
			return nil
		})
		if err != nil {
			return err
		}
		h, ok, err := l.head.GetTx(tx, "head")
		if err != nil {
			return err
		}
		if ok && (h.Seq != uint64(n) || h.Hash != prev) {
			return fmt.Errorf("%w: the log ends at record %d but record %d was written", ErrBroken, n, h.Seq)
		}
		if !ok && n > 0 {
			return fmt.Errorf("%w: head missing", ErrBroken)
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("verify audit log: %w", err)
	}
	return n, nil
}

// List returns up to max records with a sequence number greater than after, oldest first.
func (l *Log) List(after uint64, max int) ([]Record, error) {
	var out []Record
	err := l.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(Subsystem))
		if b == nil || b.Bucket([]byte("records")) == nil {
			return nil
		}
		c := b.Bucket([]byte("records")).Cursor()
		for k, _ := c.Seek([]byte(seqKey(after + 1))); k != nil && len(out) < max; k, _ = c.Next() {
			r, ok, err := l.records.GetTx(tx, string(k))
			if err != nil {
				return err
			}
			if ok {
				out = append(out, r)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list audit records: %w", err)
	}
	return out, nil
}
