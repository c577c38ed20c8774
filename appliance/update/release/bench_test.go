package release_test

import (
	"context"
	"crypto/sha256"
	"io"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/image/publish"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

type onlyWriter struct{ io.Writer }

// BenchmarkPayload100MB streams a 100 MB payload from a bundle directory through
// Release.Open (hash, length and overrun checks) and, alternating in the same run, hashes the
// same file with plain SHA-256, both with the same 256 KiB copy buffer. It reports both rates
// and their ratio (verify time / plain time), overall and as the median of the per-iteration
// pairs.
func BenchmarkPayload100MB(b *testing.B) {
	const size = 100_000_000
	fx := newFixture(b, publish.KeygenOptions{})
	bundle := fx.sign("", publish.SignOptions{}, rel{counter: 1, system: randomBytes(b, size)})
	file := payloadPath(b, bundle, "system.squashfs")
	v, err := release.NewVerifier(release.Config{Store: release.NewMemStore(fx.state()), Arch: "amd64",
		Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		b.Fatal(err)
	}
	src, err := release.OpenDir(bundle.Dir)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	r, err := v.Update(context.Background(), src, release.Installed{})
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 256<<10)
	var plain, verify time.Duration
	var ratios []float64
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		p0 := plain
		f, err := os.Open(file)
		if err != nil {
			b.Fatal(err)
		}
		h := sha256.New()
		if _, err := io.CopyBuffer(onlyWriter{h}, onlyReader{f}, buf); err != nil {
			b.Fatal(err)
		}
		h.Sum(nil)
		f.Close()
		plain += time.Since(start)

		start = time.Now()
		pr, err := r.Open(context.Background(), release.KindSystem)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(onlyWriter{io.Discard}, pr, buf); err != nil {
			b.Fatal(err)
		}
		pr.Close()
		d := time.Since(start)
		verify += d
		ratios = append(ratios, d.Seconds()/(plain-p0).Seconds())
	}
	b.StopTimer()
	mb := float64(size) * float64(b.N) / 1e6
	b.ReportMetric(mb/plain.Seconds(), "sha256-MB/s")
	b.ReportMetric(mb/verify.Seconds(), "verify-MB/s")
	b.ReportMetric(verify.Seconds()/plain.Seconds(), "verify/sha256")
	// The median of the paired ratios resists the load of other processes better.
	slices.Sort(ratios)
	b.ReportMetric(ratios[len(ratios)/2], "median-pair-ratio")
}

// TestBundleOverhead reports the metadata bytes a bundle carries besides its payloads.
func TestBundleOverhead(t *testing.T) {
	for _, c := range []struct {
		name string
		o    publish.KeygenOptions
	}{
		{"1-of-1 keys", publish.KeygenOptions{}},
		{"root 2-of-3", publish.KeygenOptions{Root: publish.RoleKeys{Keys: 3, Threshold: 2}}},
	} {
		fx := newFixture(t, c.o)
		b := fx.sign("", publish.SignOptions{}, rel{counter: 1})
		tarSize := int64(len(tarBytes(t, b)))
		t.Logf("%s: metadata %d bytes (root chain %d), payloads %d, tar %d (tar framing %d)",
			c.name, b.MetadataBytes, len(fx.repo.Root()), b.PayloadBytes, tarSize, tarSize-b.MetadataBytes-b.PayloadBytes)
		if b.MetadataBytes > 16<<10 {
			t.Fatalf("metadata grew to %d bytes", b.MetadataBytes)
		}
		// After a root rotation the bundle carries both roots.
		if err := fx.repo.Rotate(publish.RotateOptions{Now: t0, Roles: map[string]publish.RoleKeys{metadata.TIMESTAMP: {}}}); err != nil {
			t.Fatal(err)
		}
		b = fx.sign("", publish.SignOptions{Now: t0.Add(time.Minute)}, rel{counter: 2})
		t.Logf("%s, after one rotation: metadata %d bytes", c.name, b.MetadataBytes)
	}
}
