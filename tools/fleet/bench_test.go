package fleet

import (
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/json"
	"sync/atomic"
	"testing"

	dev "github.com/anya-edge/anya/appliance/update/fleet"
)

// BenchmarkCheckInParts splits the server's cost of one check-in: the signature check, and
// the transaction (replay check, outcomes, offer, commit) with parallel callers sharing
// group commits.
func BenchmarkCheckInParts(b *testing.B) {
	h := newHarness(b, 2)
	h.addRelease("stable", 2, 20, nil)
	tok := h.token(TokenRequest{Uses: 256})
	var devices []*simDevice
	for range 256 {
		devices = append(devices, h.enrolled(tok, nil))
	}
	body, _ := json.Marshal(devices[0].report)
	d := devices[0]
	a, _ := dev.SignRequest(d.key, rand.Reader, "POST", dev.CheckInPath, d.id, h.clock.Now(), body)
	pub := d.key.Public().(*ecdsa.PublicKey)
	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			if err := a.Verify(pub, "POST", dev.CheckInPath, body); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Timestamps keep increasing across the benchmark's runs (the replay floor remembers).
	var next, ts atomic.Int64
	ts.Store(h.clock.Now().UnixMilli())
	b.Run("transaction", func(b *testing.B) {
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				d := devices[next.Add(1)%int64(len(devices))]
				a := dev.Auth{ID: d.id, Timestamp: ts.Add(1), Nonce: make([]byte, dev.NonceSize)}
				rand.Read(a.Nonce)
				if _, err := h.srv.checkIn(h.ctx(), a, d.report); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
