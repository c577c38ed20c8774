package storage

import (
	"fmt"
	"os"

	"go.etcd.io/bbolt"
)

// BucketStats describes one top-level bucket.
type BucketStats struct {
	Name string `json:"name"`

	// Keys is the number of key/value pairs in the bucket and all its
	// nested buckets.
	Keys int `json:"keys"`

	// Bytes is the sum of the key and value sizes of those pairs; it does
	// not include page overhead.
	Bytes int64 `json:"bytes"`

	// Buckets is the number of nested buckets at any depth.
	Buckets int `json:"buckets"`
}

// Stats is a summary of the database, for diagnostics.
type Stats struct {
	Path string `json:"path"`

	// FileBytes is the size of the database file, including preallocated
	// and free space.
	FileBytes int64 `json:"file_bytes"`

	// Subsystems maps each migrated subsystem to its schema version.
	Subsystems map[string]int `json:"subsystems"`

	// Buckets lists the top-level buckets sorted by name, MetaBucket
	// excluded.
	Buckets []BucketStats `json:"buckets"`

	// TxCount is the number of read transactions started since Open.
	TxCount int `json:"tx_count"`

	// TxID is the ID of the last committed write transaction; it grows by
	// one with every commit over the life of the file.
	TxID int `json:"tx_id"`

	// PageSize is the page size of the file in bytes.
	PageSize int `json:"page_size"`

	// FreePages is the number of free pages available for reuse.
	FreePages int `json:"free_pages"`
}

// Stats returns a summary of the database. It walks every bucket in one read
// transaction, so its cost grows with the size of the data.
func (db *DB) Stats() (Stats, error) {
	s := Stats{Path: db.path}
	info, err := os.Stat(db.path)
	if err != nil {
		return Stats{}, fmt.Errorf("stats of %s: %w", db.path, err)
	}
	s.FileBytes = info.Size()

	err = db.bolt.View(func(tx *bbolt.Tx) error {
		s.TxID = int(tx.ID())
		var err error
		if s.Subsystems, err = subsystemVersions(tx); err != nil {
			return err
		}
		// bbolt iterates in byte-wise order, which is Go's string order,
		// so the result is sorted by name.
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			if string(name) == MetaBucket {
				return nil
			}
			bs := BucketStats{Name: string(name)}
			walkBucket(b, &bs)
			s.Buckets = append(s.Buckets, bs)
			return nil
		})
	})
	if err != nil {
		return Stats{}, fmt.Errorf("stats of %s: %w", db.path, err)
	}

	bs := db.bolt.Stats()
	s.TxCount = bs.TxN
	s.FreePages = bs.FreePageN
	s.PageSize = db.bolt.Info().PageSize
	return s, nil
}

func walkBucket(b *bbolt.Bucket, bs *BucketStats) {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil {
			if nested := b.Bucket(k); nested != nil {
				bs.Buckets++
				walkBucket(nested, bs)
				continue
			}
		}
		bs.Keys++
		bs.Bytes += int64(len(k) + len(v))
	}
}
