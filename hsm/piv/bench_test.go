package piv

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"testing"

	"github.com/go-piv/piv-go/v2/pcsclite"
	pivgo "github.com/go-piv/piv-go/v2/piv"

	"github.com/anya-edge/anya/hsm/seal"
)

// The benchmarks run through the whole stack (piv-go -> pcsclite -> pcscd -> vpcd -> emulated
// card). BenchmarkUnsealPIV is the number that matters; the other two are anchors measured in
// the same run so the cost can be read as a ratio: one raw GET DATA APDU on an already open
// connection, and piv-go's PIN + ECDH on an already open YubiKey.

func BenchmarkUnsealPIV(b *testing.B) {
	r := newRig(b, 4242)
	s := r.sealer(b)
	blob, err := s.Seal(context.Background(), make([]byte, 32), goodAuth)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		got, err := s.Unseal(context.Background(), blob, goodAuth)
		if err != nil {
			b.Fatal(err)
		}
		seal.Zero(got)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
}

// BenchmarkTransmitGetData: one GET DATA command (5fc109, a 30-byte object) and its response,
// on a connection opened once.
func BenchmarkTransmitGetData(b *testing.B) {
	r := newRig(b, 4243)
	// Store a small data object to read (piv-go's PIN-protected metadata object).
	yk := openCard(b)
	mk := make([]byte, 24)
	if err := yk.SetMetadata(pivgo.DefaultManagementKey, &pivgo.Metadata{ManagementKey: &mk}); err != nil {
		b.Fatal(err)
	}
	yk.Close()

	ctx, err := pcsclite.EstablishContext()
	if err != nil {
		b.Fatal(err)
	}
	defer ctx.Release()
	h, err := ctx.Connect(r.env.Reader, pcsclite.ShareShared, pcsclite.ProtocolT1)
	if err != nil {
		b.Fatal(err)
	}
	defer h.Disconnect(pcsclite.LeaveCard)
	if err := h.BeginTransaction(); err != nil {
		b.Fatal(err)
	}
	defer h.EndTransaction(pcsclite.LeaveCard)
	if resp, err := h.Transmit([]byte{0x00, 0xa4, 0x04, 0x00, 0x05, 0xa0, 0x00, 0x00, 0x03, 0x08}); err != nil || !ok(resp) {
		b.Fatalf("SELECT: %x %v", resp, err)
	}
	getData := []byte{0x00, 0xcb, 0x3f, 0xff, 0x05, 0x5c, 0x03, 0x5f, 0xc1, 0x09, 0x00}
	for b.Loop() {
		resp, err := h.Transmit(getData)
		if err != nil || !ok(resp) || len(resp) < 20 {
			b.Fatalf("GET DATA: %x %v", resp, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
}

// BenchmarkPIVGoECDH: VERIFY PIN + GENERAL AUTHENTICATE (ECDH) through piv-go on a YubiKey
// opened once.
func BenchmarkPIVGoECDH(b *testing.B) {
	r := newRig(b, 4244)
	s := r.sealer(b)
	id, err := s.Setup(context.Background(), goodAuth)
	if err != nil {
		b.Fatal(err)
	}
	yk := openCard(b)
	defer yk.Close()
	pub, err := toECDSA(id.PublicKey)
	if err != nil {
		b.Fatal(err)
	}
	priv, err := yk.PrivateKey(pivgo.SlotKeyManagement, pub, pivgo.KeyAuth{PIN: testPIN, PINPolicy: pivgo.PINPolicyAlways})
	if err != nil {
		b.Fatal(err)
	}
	eph, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := priv.(*pivgo.ECDSAPrivateKey).ECDH(eph.PublicKey()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
}

func ok(resp []byte) bool {
	n := len(resp)
	return n >= 2 && resp[n-2] == 0x90 && resp[n-1] == 0x00
}
