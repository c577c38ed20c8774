package backup

import (
	"bytes"
	"testing"
	"time"

	"github.com/anya-edge/anya/hsm"
)

// BenchmarkBackup measures, in one run and on the same database, an encrypted backup, its
// Verify and its Restore, against storage.Backup (the plain, uncompressed, unencrypted copy
// of the whole database file). The box's wallet has 10,000 transactions in its history
// (with their outputs and raw transactions, in 100 blocks). Reported per operation:
// backup-ms, verify-ms, restore-ms, plain-ms, their ratios to plain-ms, backup-bytes,
// plain-bytes and size-ratio (backup over plain), and content-bytes (the export before
// compression).
func BenchmarkBackup(b *testing.B) {
	bx := openBox(b, tempPath(b, "box.db"))
	bx.setup(abandon)
	bx.fill(10_000)
	to, err := bx.c.BackupRecipient()
	if err != nil {
		b.Fatal(err)
	}
	opts := bx.options()
	key, err := hsm.BackupKeyFromMnemonic(abandon, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer key.Zero()
	target := openBox(b, tempPath(b, "target.db"))
	ropts := readOptions()

	var enc, plain bytes.Buffer
	var tBackup, tVerify, tRestore, tPlain time.Duration
	var content int64
	n := 0
	for b.Loop() {
		enc.Reset()
		plain.Reset()
		t0 := time.Now()
		m, err := Write(&enc, bx.db, to, opts)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := bx.db.Backup(&plain); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if _, err := Verify(bytes.NewReader(enc.Bytes()), key, ropts); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		if _, err := Restore(bytes.NewReader(enc.Bytes()), key, target.db, ropts); err != nil {
			b.Fatal(err)
		}
		t4 := time.Now()
		tBackup += t1.Sub(t0)
		tPlain += t2.Sub(t1)
		tVerify += t3.Sub(t2)
		tRestore += t4.Sub(t3)
		content = m.PayloadSize
		n++
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(n) }
	b.ReportMetric(ms(tBackup), "backup-ms")
	b.ReportMetric(ms(tVerify), "verify-ms")
	b.ReportMetric(ms(tRestore), "restore-ms")
	b.ReportMetric(ms(tPlain), "plain-ms")
	b.ReportMetric(float64(tBackup)/float64(tPlain), "backup/plain")
	b.ReportMetric(float64(tRestore)/float64(tPlain), "restore/plain")
	b.ReportMetric(float64(enc.Len()), "backup-bytes")
	b.ReportMetric(float64(plain.Len()), "plain-bytes")
	b.ReportMetric(float64(enc.Len())/float64(plain.Len()), "size-ratio")
	b.ReportMetric(float64(content), "content-bytes")
}
