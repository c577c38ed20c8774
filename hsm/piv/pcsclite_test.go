package piv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-piv/piv-go/v2/pcsclite"
)

// Tests of the pure-Go pcscd client (pivgo/pcsclite). The fake daemon checks the wire format
// without pcscd; TestPCSCTransactions runs against the real one.

var ne = binary.NativeEndian

// fakeDaemon serves one connection the way pcsc-lite 1.8 (protocol 4:3) would.
type fakeDaemon struct {
	t         *testing.T
	begins    int
	transmits [][]byte
}

func (d *fakeDaemon) serve(conn net.Conn) {
	defer conn.Close()
	read := func(n int) []byte {
		b := make([]byte, n)
		if _, err := io.ReadFull(conn, b); err != nil {
			return nil
		}
		return b
	}
	for {
		hdr := read(8)
		if hdr == nil {
			return
		}
		size, cmd := ne.Uint32(hdr), ne.Uint32(hdr[4:])
		body := read(int(size))
		if body == nil && size > 0 {
			return
		}
		switch cmd {
		case 0x11: // CMD_VERSION
			rv := uint32(0)
			if ne.Uint32(body) != 4 || ne.Uint32(body[4:]) != 3 {
				rv = pcsclite.ErrServiceStopped
			}
			ne.PutUint32(body, 4)
			ne.PutUint32(body[4:], 3)
			ne.PutUint32(body[8:], rv)
		case 0x01: // ESTABLISH_CONTEXT
			ne.PutUint32(body[4:], 0x1234)
		case 0x12: // CMD_GET_READERS_STATE
			out := make([]byte, 16*184)
			copy(out, "Fake Reader 00 00")
			ne.PutUint32(out[128:], 7)                     // event counter
			ne.PutUint32(out[132:], pcsclite.StatePresent) // state
			copy(out[140:], []byte{0x3b, 0x80, 0x80, 0x01, 0x01})
			ne.PutUint32(out[176:], 5)                   // ATR length
			ne.PutUint32(out[180:], pcsclite.ProtocolT1) // protocol
			copy(out[184:], "Empty Reader 00 00")
			ne.PutUint32(out[184+132:], pcsclite.StateAbsent)
			conn.Write(out)
			continue
		case 0x04: // CONNECT
			name := string(bytes.TrimRight(body[4:132], "\x00"))
			if ne.Uint32(body) != 0x1234 || name != "Fake Reader 00 00" {
				ne.PutUint32(body[148:], pcsclite.ErrUnknownReader)
			} else {
				ne.PutUint32(body[140:], 77)
				ne.PutUint32(body[144:], pcsclite.ProtocolT1)
			}
		case 0x07: // BEGIN_TRANSACTION: busy once, then granted
			d.begins++
			if d.begins == 1 {
				ne.PutUint32(body[4:], pcsclite.ErrSharingViolation)
			}
		case 0x09: // TRANSMIT: echo the APDU followed by 90 00
			apdu := read(int(ne.Uint32(body[12:])))
			d.transmits = append(d.transmits, apdu)
			resp := append(append([]byte(nil), apdu...), 0x90, 0x00)
			ne.PutUint32(body[24:], uint32(len(resp)))
			conn.Write(append(body, resp...))
			continue
		case 0x08, 0x06, 0x02: // END_TRANSACTION, DISCONNECT, RELEASE_CONTEXT
		default:
			d.t.Errorf("fake pcscd: unexpected command %#x", cmd)
			return
		}
		conn.Write(body)
	}
}

func TestPCSCWireFormat(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "pcscd.comm")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d := &fakeDaemon{t: t}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go d.serve(c)
		}
	}()

	ctx, err := pcsclite.EstablishContextOptions(pcsclite.Options{Socket: sock, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if major, minor := ctx.ProtocolVersion(); major != 4 || minor != 3 {
		t.Fatalf("negotiated %d:%d, want the daemon's 4:3", major, minor)
	}
	states, err := ctx.ReaderStates()
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 2 || states[0].Name != "Fake Reader 00 00" || !states[0].CardPresent() ||
		!bytes.Equal(states[0].ATR, []byte{0x3b, 0x80, 0x80, 0x01, 0x01}) || states[0].EventCounter != 7 ||
		states[0].Protocol != pcsclite.ProtocolT1 || states[1].CardPresent() {
		t.Fatalf("reader states = %+v", states)
	}
	if _, err := ctx.Connect("No Such Reader", pcsclite.ShareExclusive, pcsclite.ProtocolT1); !errors.Is(err, &pcsclite.Error{Code: pcsclite.ErrUnknownReader}) ||
		!pcsclite.IsDeviceMissing(err) {
		t.Fatalf("Connect to an unknown reader: %v", err)
	}
	h, err := ctx.Connect("Fake Reader 00 00", pcsclite.ShareExclusive, pcsclite.ProtocolT1)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.BeginTransaction(); err != nil {
		t.Fatalf("BeginTransaction (busy once): %v", err)
	}
	if d.begins != 2 {
		t.Fatalf("BeginTransaction sent %d times, want 2 (one retry)", d.begins)
	}
	apdu := bytes.Repeat([]byte{0xab}, 300)
	resp, err := h.Transmit(apdu)
	if err != nil || !bytes.Equal(resp, append(apdu, 0x90, 0x00)) {
		t.Fatalf("Transmit = %x, %v", resp, err)
	}
	if err := h.EndTransaction(pcsclite.LeaveCard); err != nil {
		t.Fatal(err)
	}
	if err := h.Disconnect(pcsclite.LeaveCard); err != nil {
		t.Fatal(err)
	}
	if err := ctx.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := ctx.ReaderStates(); err == nil {
		t.Fatal("ReaderStates on a released context succeeded")
	}

	// No daemon.
	_, err = pcsclite.EstablishContextOptions(pcsclite.Options{Socket: filepath.Join(t.TempDir(), "none")})
	if code, _ := pcsclite.Code(err); code != pcsclite.ErrNoService || !pcsclite.IsDeviceMissing(err) {
		t.Fatalf("no daemon: %v", err)
	}
}

// TestPCSCTransactions checks against the real pcscd that BeginTransaction waits for another
// handle's transaction to end.
func TestPCSCTransactions(t *testing.T) {
	r := newRig(t, 5150)
	open := func() (*pcsclite.Context, *pcsclite.Card) {
		ctx, err := pcsclite.EstablishContext()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ctx.Release() })
		h, err := ctx.Connect(r.env.Reader, pcsclite.ShareShared, pcsclite.ProtocolT1)
		if err != nil {
			t.Fatal(err)
		}
		if h.ActiveProtocol() != pcsclite.ProtocolT1 {
			t.Fatalf("active protocol %d, want T=1", h.ActiveProtocol())
		}
		return ctx, h
	}
	_, h1 := open()
	_, h2 := open()
	if err := h1.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- h2.BeginTransaction() }()
	select {
	case err := <-got:
		t.Fatalf("second BeginTransaction returned (%v) while the first transaction is open", err)
	case <-time.After(300 * time.Millisecond):
	}
	// Within the transaction the card answers h1.
	resp, err := h1.Transmit([]byte{0x00, 0xa4, 0x04, 0x00, 0x05, 0xa0, 0x00, 0x00, 0x03, 0x08})
	if err != nil || !ok(resp) {
		t.Fatalf("SELECT: %x %v", resp, err)
	}
	if err := h1.EndTransaction(pcsclite.LeaveCard); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("second BeginTransaction: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("second BeginTransaction still waiting after the first transaction ended")
	}
	resp, err = h2.Transmit([]byte{0x00, 0xf8, 0x00, 0x00, 0x00}) // GET SERIAL
	if err != nil || !ok(resp) || binary.BigEndian.Uint32(resp) != 5150 {
		t.Fatalf("GET SERIAL: %x %v", resp, err)
	}
	if err := h2.EndTransaction(pcsclite.LeaveCard); err != nil {
		t.Fatal(err)
	}
	// An exclusive connection is refused while shared handles are open.
	ctx3, err := pcsclite.EstablishContext()
	if err != nil {
		t.Fatal(err)
	}
	defer ctx3.Release()
	if _, err := ctx3.Connect(r.env.Reader, pcsclite.ShareExclusive, pcsclite.ProtocolT1); !errors.Is(err, &pcsclite.Error{Code: pcsclite.ErrSharingViolation}) {
		t.Fatalf("exclusive Connect while shared handles are open: %v", err)
	}
}
