package pivcard

import (
	"bytes"
	"crypto/des"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"io"
	"net"
	"testing"
)

// These tests drive the card with raw APDUs (no pcscd needed); the full stack through pcscd
// and vpcd is tested in package hsm/piv.

func newTestCard(t *testing.T) (*Card, *CA) {
	t.Helper()
	ca, err := NewCA("test root")
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Serial: 987654, Attestation: ca})
	if err != nil {
		t.Fatal(err)
	}
	return c, ca
}

func apdu(cla, ins, p1, p2 byte, data []byte) []byte {
	b := []byte{cla, ins, p1, p2}
	if len(data) > 0 {
		b = append(b, byte(len(data)))
		b = append(b, data...)
	}
	return append(b, 0x00)
}

// send transmits a command and follows 61xx with GET RESPONSE, returning data and SW.
func send(c *Card, cmd []byte) ([]byte, uint16) {
	var out []byte
	for {
		r := c.Transmit(cmd)
		sw := binary.BigEndian.Uint16(r[len(r)-2:])
		out = append(out, r[:len(r)-2]...)
		if sw>>8 != 0x61 {
			return out, sw
		}
		cmd = []byte{0x00, 0xc0, 0x00, 0x00, 0x00}
	}
}

func must(t *testing.T, c *Card, cmd []byte, want uint16) []byte {
	t.Helper()
	data, sw := send(c, cmd)
	if sw != want {
		t.Fatalf("APDU %x: SW %04x, want %04x", cmd, sw, want)
	}
	return data
}

func pin(s string) []byte { return mustPad(s) }

func authMgm(t *testing.T, c *Card) {
	t.Helper()
	block, err := des.NewTripleDESCipher(DefaultManagementKey)
	if err != nil {
		t.Fatal(err)
	}
	resp := must(t, c, apdu(0, 0x87, alg3DES, slotMgmt, []byte{0x7c, 0x02, 0x80, 0x00}), 0x9000)
	witness := make([]byte, 8)
	block.Decrypt(witness, resp[4:12])
	challenge := []byte("chalnge!")
	data := append([]byte{0x7c, 0x14, 0x80, 0x08}, witness...)
	data = append(append(data, 0x81, 0x08), challenge...)
	resp = must(t, c, apdu(0, 0x87, alg3DES, slotMgmt, data), 0x9000)
	want := make([]byte, 8)
	block.Encrypt(want, challenge)
	if !bytes.Equal(resp[4:], want) {
		t.Fatal("card's management key response is wrong")
	}
}

func TestATRChecksum(t *testing.T) {
	c, _ := newTestCard(t)
	var x byte
	for _, b := range c.ATR()[1:] {
		x ^= b
	}
	if x != 0 {
		t.Fatalf("ATR %x: TCK does not check out", c.ATR())
	}
}

func TestSelectVersionSerial(t *testing.T) {
	c, _ := newTestCard(t)
	must(t, c, apdu(0, 0xfd, 0, 0, nil), 0x6d00) // nothing before SELECT
	must(t, c, apdu(0, 0xa4, 0x04, 0x00, []byte{0xa0, 0x00, 0x00, 0x05, 0x27, 0x47, 0x11, 0x17}), 0x6a82)
	must(t, c, apdu(0, 0xa4, 0x04, 0x00, aidPIV), 0x9000)
	if v := must(t, c, apdu(0, 0xfd, 0, 0, nil), 0x9000); !bytes.Equal(v, []byte{5, 4, 3}) {
		t.Fatalf("version %x", v)
	}
	if s := must(t, c, apdu(0, 0xf8, 0, 0, nil), 0x9000); binary.BigEndian.Uint32(s) != 987654 {
		t.Fatalf("serial %x", s)
	}
}

func TestPINCounterBlockAndUnblock(t *testing.T) {
	c, _ := newTestCard(t)
	must(t, c, apdu(0, 0xa4, 0x04, 0x00, aidPIV), 0x9000)
	must(t, c, apdu(0, 0x20, 0, 0x80, nil), 0x63c3)
	must(t, c, apdu(0, 0x20, 0, 0x80, pin("000000")), 0x63c2)
	must(t, c, apdu(0, 0x20, 0, 0x80, pin(DefaultPIN)), 0x9000)
	must(t, c, apdu(0, 0x20, 0, 0x80, nil), 0x9000) // verified, counter back to 3
	for _, want := range []uint16{0x63c2, 0x63c1, 0x63c0, 0x6983} {
		must(t, c, apdu(0, 0x20, 0, 0x80, pin("000000")), want)
	}
	must(t, c, apdu(0, 0x20, 0, 0x80, pin(DefaultPIN)), 0x6983)
	// Unblock with the PUK and set a new PIN.
	must(t, c, apdu(0, 0x2c, 0, 0x80, append(pin(DefaultPUK), pin("654321")...)), 0x9000)
	must(t, c, apdu(0, 0x20, 0, 0x80, pin("654321")), 0x9000)
	if c.PINRetries() != 3 {
		t.Fatalf("retries %d", c.PINRetries())
	}
	// A power cycle forgets the verification.
	c.Reset()
	must(t, c, apdu(0, 0xa4, 0x04, 0x00, aidPIV), 0x9000)
	must(t, c, apdu(0, 0x20, 0, 0x80, nil), 0x63c3)
}

func TestGenerateAttestECDH(t *testing.T) {
	c, ca := newTestCard(t)
	must(t, c, apdu(0, 0xa4, 0x04, 0x00, aidPIV), 0x9000)
	gen := apdu(0, 0x47, 0, 0x9d, []byte{0xac, 0x09, 0x80, 0x01, algP256, 0xaa, 0x01, PINPolicyAlways, 0xab, 0x01, TouchPolicyNever})
	must(t, c, gen, 0x6982) // management key needed
	must(t, c, apdu(0, 0xf9, 0x9d, 0, nil), 0x6a80)
	authMgm(t, c)
	resp := must(t, c, gen, 0x9000)
	if !bytes.HasPrefix(resp, []byte{0x7f, 0x49, 0x43, 0x86, 0x41, 0x04}) {
		t.Fatalf("generate response %x", resp)
	}
	slotPub, err := ecdh.P256().NewPublicKey(resp[5:])
	if err != nil {
		t.Fatal(err)
	}

	// Attestation: slot cert <- f9 cert (object 5fff01, read with GET RESPONSE chaining) <- CA.
	der := must(t, c, apdu(0, 0xf9, 0x9d, 0, nil), 0x9000)
	slotCert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	obj := must(t, c, apdu(0, 0xcb, 0x3f, 0xff, []byte{0x5c, 0x03, 0x5f, 0xff, 0x01}), 0x9000)
	items, ok := parseTLV(obj)
	if !ok || len(items) != 1 || items[0].tag != 0x53 {
		t.Fatalf("GET DATA 5fff01: %x", obj)
	}
	inner, ok := parseTLV(items[0].value)
	if !ok || inner[0].tag != 0x70 {
		t.Fatal("attestation object has no certificate")
	}
	f9, err := x509.ParseCertificate(inner[0].value)
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	inter.AddCert(f9)
	if _, err := slotCert.Verify(x509.VerifyOptions{Roots: ca.Pool(), Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("attestation chain: %v", err)
	}
	exts := map[string][]byte{}
	for _, e := range slotCert.Extensions {
		exts[e.Id.String()] = e.Value
	}
	if !bytes.Equal(exts["1.3.6.1.4.1.41482.3.3"], []byte{5, 4, 3}) ||
		!bytes.Equal(exts["1.3.6.1.4.1.41482.3.8"], []byte{PINPolicyAlways, TouchPolicyNever}) ||
		slotCert.Subject.CommonName != "YubiKey PIV Attestation 9d" {
		t.Fatalf("attestation extensions %x, CN %q", exts, slotCert.Subject.CommonName)
	}
	if p, _ := slotCert.PublicKey.(*ecdsa.PublicKey).ECDH(); !p.Equal(slotPub) {
		t.Fatal("attested key is not the generated key")
	}

	// ECDH: PIN policy "always" wants a VERIFY right before every use.
	eph, _ := ecdh.P256().GenerateKey(rand.Reader)
	ga := apdu(0, 0x87, algP256, 0x9d, tlv(0x7c, append([]byte{0x82, 0x00}, tlv(0x85, eph.PublicKey().Bytes())...)))
	must(t, c, ga, 0x6982)
	must(t, c, apdu(0, 0x20, 0, 0x80, pin(DefaultPIN)), 0x9000)
	resp = must(t, c, ga, 0x9000)
	want, _ := eph.ECDH(slotPub)
	if !bytes.Equal(resp, tlv(0x7c, tlv(0x82, want))) {
		t.Fatalf("ECDH response %x", resp)
	}
	must(t, c, ga, 0x6982) // consumed

	// Signing.
	must(t, c, apdu(0, 0x20, 0, 0x80, pin(DefaultPIN)), 0x9000)
	digest := sha256.Sum256([]byte("msg"))
	resp = must(t, c, apdu(0, 0x87, algP256, 0x9d, tlv(0x7c, append([]byte{0x82, 0x00}, tlv(0x81, digest[:])...))), 0x9000)
	sig := resp[4:]
	pub := slotCert.PublicKey.(*ecdsa.PublicKey)
	if !ecdsa.VerifyASN1(pub, digest[:], sig) {
		t.Fatal("signature does not verify")
	}
	if got := c.Counters(); got.ECDH != 1 || got.Signs != 1 || got.Generates != 1 || got.Attests != 1 {
		t.Fatalf("counters %+v", got)
	}
}

func TestCommandChaining(t *testing.T) {
	c, _ := newTestCard(t)
	must(t, c, apdu(0, 0xa4, 0x04, 0x00, aidPIV), 0x9000)
	authMgm(t, c)
	content := bytes.Repeat([]byte{0x42}, 600)
	data := append([]byte{0x5c, 0x03, 0x5f, 0xc1, 0x05}, tlv(0x53, content)...)
	for len(data) > 255 {
		must(t, c, apdu(0x10, 0xdb, 0x3f, 0xff, data[:255]), 0x9000)
		data = data[255:]
	}
	must(t, c, apdu(0, 0xdb, 0x3f, 0xff, data), 0x9000)
	got := must(t, c, apdu(0, 0xcb, 0x3f, 0xff, []byte{0x5c, 0x03, 0x5f, 0xc1, 0x05}), 0x9000)
	if !bytes.Equal(got, tlv(0x53, content)) {
		t.Fatalf("read back %d bytes, want %d", len(got), len(content)+4)
	}
}

func TestVPCDProtocol(t *testing.T) {
	c, _ := newTestCard(t)
	reader, card := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- Serve(card, c) }()
	msg := func(b []byte) {
		t.Helper()
		if _, err := reader.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)); err != nil {
			t.Fatal(err)
		}
	}
	recv := func() []byte {
		t.Helper()
		var hdr [2]byte
		if _, err := io.ReadFull(reader, hdr[:]); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.ReadFull(reader, b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	msg([]byte{vpcdPowerOn}) // no answer
	msg([]byte{vpcdATR})
	if got := recv(); !bytes.Equal(got, c.ATR()) {
		t.Fatalf("ATR %x", got)
	}
	msg(apdu(0, 0xa4, 0x04, 0x00, aidPIV))
	if got := recv(); !bytes.HasSuffix(got, []byte{0x90, 0x00}) {
		t.Fatalf("SELECT answer %x", got)
	}
	msg(apdu(0, 0xf8, 0, 0, nil))
	if got := recv(); !bytes.Equal(got, []byte{0x00, 0x0f, 0x12, 0x06, 0x90, 0x00}) {
		t.Fatalf("GET SERIAL answer %x", got)
	}
	msg([]byte{vpcdReset}) // session lost: PIV no longer selected
	msg(apdu(0, 0xf8, 0, 0, nil))
	if got := recv(); !bytes.Equal(got, []byte{0x6d, 0x00}) {
		t.Fatalf("GET SERIAL after reset %x", got)
	}
	reader.Close()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}
