// Package peertest is a scripted Lightning peer for tests: it listens on loopback with
// lnd's brontide, and lets a test send and receive lnwire messages one by one, so that it can
// play a misbehaving peer (bad signatures, unknown features, no pong) that real lnd never is.
package peertest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/lightningnetwork/lnd/brontide"
	"github.com/lightningnetwork/lnd/keychain"
	"github.com/lightningnetwork/lnd/lnwire"
)

// Timeout bounds every wait of this package.
const Timeout = 10 * time.Second

// Remote is a listening test peer.
type Remote struct {
	tb  testing.TB
	Key *btcec.PrivateKey
	l   *brontide.Listener
}

// Listen starts a test peer with a fresh key on a loopback port; it stops in Cleanup.
func Listen(tb testing.TB) *Remote {
	tb.Helper()
	key, err := btcec.NewPrivateKey()
	if err != nil {
		tb.Fatal(err)
	}
	l, err := brontide.NewListener(&keychain.PrivKeyECDH{PrivKey: key}, "127.0.0.1:0", func(*btcec.PublicKey) (bool, error) { return true, nil })
	if err != nil {
		tb.Fatalf("peertest: listen: %v", err)
	}
	tb.Cleanup(func() { l.Close() })
	return &Remote{tb: tb, Key: key, l: l}
}

// PubKey is the test peer's node id.
func (r *Remote) PubKey() *btcec.PublicKey { return r.Key.PubKey() }

// Addr is the host:port it listens on.
func (r *Remote) Addr() string { return r.l.Addr().String() }

// Session is one accepted connection.
type Session struct {
	tb   testing.TB
	Conn *brontide.Conn
}

// Accept waits for the box to connect. It returns an error instead of failing so that it can
// run in a goroutine.
func (r *Remote) Accept() (*Session, error) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := r.l.Accept(); ch <- res{c, err} }()
	select {
	case x := <-ch:
		if x.err != nil {
			return nil, x.err
		}
		return &Session{tb: r.tb, Conn: x.c.(*brontide.Conn)}, nil
	case <-time.After(Timeout):
		return nil, errors.New("peertest: nobody connected")
	}
}

// Send writes msg.
func (s *Session) Send(msg lnwire.Message) error {
	var buf bytes.Buffer
	if _, err := lnwire.WriteMessage(&buf, msg, 0); err != nil {
		return err
	}
	return s.SendRaw(buf.Bytes())
}

// SendRaw writes one message's bytes as given (type prefix included).
func (s *Session) SendRaw(b []byte) error {
	_ = s.Conn.SetWriteDeadline(time.Now().Add(Timeout))
	if err := s.Conn.WriteMessage(b); err != nil {
		return err
	}
	_, err := s.Conn.Flush()
	return err
}

// Recv reads the next message within Timeout.
func (s *Session) Recv() (lnwire.Message, error) {
	_ = s.Conn.SetReadDeadline(time.Now().Add(Timeout))
	raw, err := s.Conn.ReadNextMessage()
	if err != nil {
		return nil, err
	}
	return lnwire.ReadMessage(bytes.NewReader(raw), 0)
}

// RecvType reads messages until one of type T arrives (answering pings meanwhile).
func RecvType[T lnwire.Message](s *Session) (T, error) {
	var zero T
	for {
		m, err := s.Recv()
		if err != nil {
			return zero, err
		}
		if p, ok := m.(*lnwire.Ping); ok {
			if err := s.Send(lnwire.NewPong(make([]byte, p.NumPongBytes))); err != nil {
				return zero, err
			}
			continue
		}
		if t, ok := m.(T); ok {
			return t, nil
		}
	}
}

// Init reads the box's init and answers with features.
func (s *Session) Init(features *lnwire.RawFeatureVector) error {
	m, err := s.Recv()
	if err != nil {
		return fmt.Errorf("peertest: read init: %w", err)
	}
	if _, ok := m.(*lnwire.Init); !ok {
		return fmt.Errorf("peertest: first message %v", m.MsgType())
	}
	return s.Send(lnwire.NewInitMessage(lnwire.NewRawFeatureVector(), features))
}

// Closed reports whether the box closed the connection within Timeout (reading and
// discarding what it still sends).
func (s *Session) Closed() bool {
	deadline := time.Now().Add(Timeout)
	for time.Now().Before(deadline) {
		_ = s.Conn.SetReadDeadline(deadline)
		if _, err := s.Conn.ReadNextMessage(); err != nil {
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout())
		}
	}
	return false
}

// Close ends the session.
func (s *Session) Close() { s.Conn.Close() }
