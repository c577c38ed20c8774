package services

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/anya-edge/anya/appliance/update/slot"
)

// benchAPI, when set at build time, serves POST /debug/bench/slotwrite for the QEMU update
// tests' throughput figure: a plain sequential write of the request body to the same disk
// the agent installs to, to compare the install with.
//
//	go build -ldflags "-X github.com/anya-edge/anya/appliance/services.benchAPI=1"
//
// Never set in a release build: the endpoint needs no session. It writes only into the
// unused tail of the inactive slot's partition (past the squashfs the slot holds), in the
// agent's 4 MiB writes, then fsyncs: the same device, the same write size, no hashing, no
// read-back, no spool.
var benchAPI string

// benchWrite is the result of POST /debug/bench/slotwrite.
type benchWrite struct {
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	Slot    string  `json:"slot"`
	Offset  int64   `json:"offset"`
	// HashSeconds is one SHA-256 pass over the same bytes in memory: the CPU cost that the
	// install pays three times (verify, stream, read back) on top of the writes.
	HashSeconds float64 `json:"hash_seconds"`
}

// benchHandler serves the bench endpoint beside next.
func (u *updates) benchHandler(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", next)
	mux.HandleFunc("POST /debug/bench/slotwrite", func(w http.ResponseWriter, r *http.Request) {
		res, err := u.benchSlotWrite(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(res)
	})
	return mux
}

func (u *updates) benchSlotWrite(body io.Reader) (benchWrite, error) {
	if u.slot == "" {
		return benchWrite{}, fmt.Errorf("bench: not running from a slot")
	}
	target := slot.Other(u.slot)
	part, ok := u.layout.Slot(target)
	if !ok || part.Size <= 0 {
		return benchWrite{}, fmt.Errorf("bench: slot %s has no partition of known size", target)
	}
	data, err := io.ReadAll(io.LimitReader(body, part.Size/2))
	if err != nil {
		return benchWrite{}, fmt.Errorf("bench: read the body: %w", err)
	}
	f, err := os.OpenFile(part.Path, os.O_RDWR, 0)
	if err != nil {
		return benchWrite{}, fmt.Errorf("bench: open slot partition: %w", err)
	}
	defer f.Close()
	var sb [48]byte
	if _, err := f.ReadAt(sb[:], part.Offset); err != nil {
		return benchWrite{}, fmt.Errorf("bench: read the slot's superblock: %w", err)
	}
	used := int64(0)
	if string(sb[:4]) == "hsqs" {
		used = int64(binary.LittleEndian.Uint64(sb[40:48]))
	}
	off := (part.Size - int64(len(data))) &^ 4095
	if off < used {
		return benchWrite{}, fmt.Errorf("bench: %d bytes do not fit past the slot's %d-byte squashfs", len(data), used)
	}
	start := time.Now()
	for p := 0; p < len(data); p += 4 << 20 {
		end := min(p+4<<20, len(data))
		if _, err := f.WriteAt(data[p:end], part.Offset+off+int64(p)); err != nil {
			return benchWrite{}, fmt.Errorf("bench: write: %w", err)
		}
	}
	if err := f.Sync(); err != nil {
		return benchWrite{}, fmt.Errorf("bench: sync: %w", err)
	}
	res := benchWrite{Bytes: int64(len(data)), Seconds: time.Since(start).Seconds(), Slot: target, Offset: off}
	start = time.Now()
	sha256.Sum256(data)
	res.HashSeconds = time.Since(start).Seconds()
	return res, nil
}
