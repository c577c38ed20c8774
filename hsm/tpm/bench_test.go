package tpm

import (
	"bytes"
	"context"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/anya-edge/anya/hsm/seal"
	"github.com/anya-edge/anya/hsm/tpm/tpmtest"
)

// Benchmarks run against swtpm (go test -run X -bench . ./hsm/tpm). The anchors are the raw
// go-tpm commands in the same run, so that "provider / anchor" is a ratio that carries over to
// a real TPM, whose absolute latencies are 10-100x swtpm's.

var benchAuth = seal.Auth{PIN: "1234"}

func benchSealer(b *testing.B) *Sealer {
	b.Helper()
	sim := tpmtest.Start(b)
	s := newTestSealer(b, sim)
	boot(sim, s, "A")
	return s
}

func BenchmarkSeal(b *testing.B) {
	s := benchSealer(b)
	secret := bytes.Repeat([]byte{7}, 32)
	for b.Loop() {
		if _, err := s.Seal(context.Background(), secret, benchAuth); err != nil {
			b.Fatal(err)
		}
	}
	reportMS(b)
}

func BenchmarkUnseal(b *testing.B) {
	s := benchSealer(b)
	blob, err := s.Seal(context.Background(), bytes.Repeat([]byte{7}, 32), benchAuth)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Unseal(context.Background(), blob, benchAuth); err != nil {
			b.Fatal(err)
		}
	}
	reportMS(b)
}

func BenchmarkAuthorize(b *testing.B) {
	s := benchSealer(b)
	blob, err := s.Seal(context.Background(), bytes.Repeat([]byte{7}, 32), benchAuth)
	if err != nil {
		b.Fatal(err)
	}
	next := predict(DefaultPCRs, "B")
	for b.Loop() {
		if _, err := s.Authorize(context.Background(), blob, next); err != nil {
			b.Fatal(err)
		}
	}
	reportMS(b)
}

// rawSealed creates the SRK and a password-authorised sealed object, as the simplest possible
// go-tpm sealing, and returns them loaded.
func rawSealed(b *testing.B, s *Sealer) (*srkHandle, tpm2.TPM2BPublic, tpm2.TPM2BPrivate) {
	b.Helper()
	srk, err := s.createSRK()
	if err != nil {
		b.Fatal(err)
	}
	rsp, err := tpm2.Create{
		ParentHandle: tpm2.AuthHandle{Handle: srk.Handle, Name: srk.Name, Auth: tpm2.PasswordAuth(nil)},
		InSensitive: tpm2.TPM2BSensitiveCreate{Sensitive: &tpm2.TPMSSensitiveCreate{
			UserAuth: tpm2.TPM2BAuth{Buffer: []byte("1234")},
			Data:     tpm2.NewTPMUSensitiveCreate(&tpm2.TPM2BSensitiveData{Buffer: bytes.Repeat([]byte{7}, 32)}),
		}},
		InPublic: tpm2.New2B(tpm2.TPMTPublic{
			Type:             tpm2.TPMAlgKeyedHash,
			NameAlg:          tpm2.TPMAlgSHA256,
			ObjectAttributes: tpm2.TPMAObject{FixedTPM: true, FixedParent: true, UserWithAuth: true, NoDA: true},
		}),
	}.Execute(s.tpm)
	if err != nil {
		b.Fatal(err)
	}
	return srk, rsp.OutPublic, rsp.OutPrivate
}

// BenchmarkAnchorUnseal: the bare TPM2_Unseal command with a password, object already loaded.
func BenchmarkAnchorUnseal(b *testing.B) {
	s := benchSealer(b)
	srk, pub, priv := rawSealed(b, s)
	obj, err := tpm2.Load{
		ParentHandle: tpm2.AuthHandle{Handle: srk.Handle, Name: srk.Name, Auth: tpm2.PasswordAuth(nil)},
		InPrivate:    priv, InPublic: pub,
	}.Execute(s.tpm)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := (tpm2.Unseal{ItemHandle: tpm2.AuthHandle{Handle: obj.ObjectHandle, Name: obj.Name,
			Auth: tpm2.PasswordAuth([]byte("1234"))}}).Execute(s.tpm); err != nil {
			b.Fatal(err)
		}
	}
	reportMS(b)
}

// BenchmarkAnchorLoadUnseal: what any stateless unseal must do at least — create the SRK, load
// the object, unseal with a password, flush — without sessions, policy or verification.
func BenchmarkAnchorLoadUnseal(b *testing.B) {
	s := benchSealer(b)
	srk, pub, priv := rawSealed(b, s)
	s.flush(srk.Handle)
	for b.Loop() {
		srk, err := s.createSRK()
		if err != nil {
			b.Fatal(err)
		}
		obj, err := tpm2.Load{
			ParentHandle: tpm2.AuthHandle{Handle: srk.Handle, Name: srk.Name, Auth: tpm2.PasswordAuth(nil)},
			InPrivate:    priv, InPublic: pub,
		}.Execute(s.tpm)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := (tpm2.Unseal{ItemHandle: tpm2.AuthHandle{Handle: obj.ObjectHandle, Name: obj.Name,
			Auth: tpm2.PasswordAuth([]byte("1234"))}}).Execute(s.tpm); err != nil {
			b.Fatal(err)
		}
		s.flush(obj.ObjectHandle)
		s.flush(srk.Handle)
	}
	reportMS(b)
}

func reportMS(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
}
