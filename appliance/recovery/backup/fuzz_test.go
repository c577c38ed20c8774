package backup

import (
	"bytes"
	"errors"
	"testing"

	"github.com/anya-edge/anya/hsm"
)

// typed reports whether err is one of the errors Verify promises.
func typed(err error) bool {
	for _, e := range []error{ErrNotBackup, ErrCorrupted, ErrTruncated, ErrOtherWallet, ErrWrongKey, ErrNewerFormat, ErrNewerSchema} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// smallBackup is a backup of a box with a few transactions, and the key that opens it.
func smallBackup(f *testing.F) ([]byte, *hsm.BackupKey) {
	b := openBox(f, tempPath(f, "box.db"))
	b.setup(abandon)
	b.fill(3)
	data := b.backup()
	key, err := b.c.BackupKey()
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(key.Zero)
	return data, key
}

// FuzzReadHeader: any input gives a header or one of the typed errors, never a panic, and a
// header that parses encodes back to one that parses the same.
func FuzzReadHeader(f *testing.F) {
	data, _ := smallBackup(f)
	hdr, _ := ReadHeader(bytes.NewReader(data))
	hb, _, _ := encodeHeader(hdr)
	f.Add(hb)
	f.Add(data[:len(hb)-1])
	f.Add([]byte(magic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := ReadHeader(bytes.NewReader(in))
		if err != nil {
			if !typed(err) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		again, _, err := encodeHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		h2, err := ReadHeader(bytes.NewReader(again))
		if err != nil || h2.WalletID != h.WalletID || !bytes.Equal(h2.Enc, h.Enc) || !h2.Created.Equal(h.Created) {
			t.Fatalf("re-encoded header: %+v, %v", h2, err)
		}
	})
}

// FuzzOpenChunks: the chunk parser on arbitrary bytes after a header.
func FuzzOpenChunks(f *testing.F) {
	key := bytes.Repeat([]byte{7}, 32)
	prefix := bytes.Repeat([]byte{9}, noncePrefixSize)
	ad := []byte("header checksum")
	var valid bytes.Buffer
	cw, _ := newChunkWriter(&valid, key, prefix, ad)
	_, _ = cw.Write(bytes.Repeat([]byte("payload "), 2100))
	_ = cw.Close()
	f.Add(valid.Bytes())
	f.Add(valid.Bytes()[:chunkSealed])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := openChunks(bytes.NewReader(in), key, prefix, ad, 1<<20)
		switch {
		case err == nil && !bytes.Equal(in, valid.Bytes()):
			t.Fatalf("forged chunks accepted (%d payload bytes)", len(out))
		case err != nil && !errors.Is(err, ErrCorrupted) && !errors.Is(err, ErrTruncated):
			t.Fatalf("untyped error: %v", err)
		}
	})
}

// FuzzVerify: a mutated backup is refused with a typed error, never accepted and never a
// panic; only the original verifies.
func FuzzVerify(f *testing.F) {
	data, key := smallBackup(f)
	f.Add(data)
	f.Add(data[:len(data)/2])
	f.Add(append(bytes.Clone(data), 1))
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := Verify(bytes.NewReader(in), key, readOptions())
		switch {
		case err == nil && m.Size != int64(len(in)):
			t.Fatalf("verified %d of %d bytes", m.Size, len(in))
		case err == nil && bytes.Equal(m.Enc, encOf(data)) && !bytes.Equal(in, data):
			// Each fuzzing process makes its own backup; a mutation of this one must fail.
			t.Fatal("a modified backup verified")
		case err != nil && !typed(err):
			t.Fatalf("untyped error: %v", err)
		}
	})
}

func encOf(data []byte) []byte {
	h, err := ReadHeader(bytes.NewReader(data))
	if err != nil {
		return nil
	}
	return h.Enc
}
