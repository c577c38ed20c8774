package peer_test

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/anya-edge/anya/node/lightning/peer"
	"github.com/anya-edge/anya/node/lightning/peer/peertest"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/lightningnetwork/lnd/keychain"
	"github.com/lightningnetwork/lnd/lnwire"
)

func localKey(t *testing.T) keychain.SingleKeyECDH {
	k, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return &keychain.PrivKeyECDH{PrivKey: k}
}

// dial connects the box to r while script plays the remote side.
func dial(t *testing.T, cfg peer.Config, script func(*peertest.Session) error) (*peer.Conn, error, <-chan error) {
	t.Helper()
	r := peertest.Listen(t)
	done := make(chan error, 1)
	go func() {
		s, err := r.Accept()
		if err != nil {
			done <- err
			return
		}
		defer s.Close()
		done <- script(s)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), peertest.Timeout)
	defer cancel()
	c, err := peer.Dial(ctx, cfg, r.PubKey(), r.Addr())
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err, done
}

func TestInitFeatures(t *testing.T) {
	tests := []struct {
		name    string
		remote  *lnwire.RawFeatureVector
		wantErr bool
	}{
		{"lnd-like", lnwire.NewRawFeatureVector(lnwire.DataLossProtectRequired, lnwire.GossipQueriesOptional, lnwire.TLVOnionPayloadRequired, lnwire.StaticRemoteKeyRequired), false},
		{"none", lnwire.NewRawFeatureVector(), false},
		{"unknown optional", lnwire.NewRawFeatureVector(999), false},
		{"unknown required", lnwire.NewRawFeatureVector(998), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sent *lnwire.Init
			c, err, done := dial(t, peer.Config{Key: localKey(t)}, func(s *peertest.Session) error {
				m, err := s.Recv()
				if err != nil {
					return err
				}
				sent, _ = m.(*lnwire.Init)
				if err := s.Send(lnwire.NewInitMessage(lnwire.NewRawFeatureVector(), tt.remote)); err != nil {
					return err
				}
				s.Closed()
				return nil
			})
			if (err != nil) != tt.wantErr {
				t.Fatalf("Dial error %v, want error %v", err, tt.wantErr)
			}
			if c != nil {
				c.Close()
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if sent == nil || !sent.Features.IsSet(lnwire.DataLossProtectRequired) || !sent.Features.IsSet(lnwire.GossipQueriesOptional) {
				t.Fatalf("box's init %+v lacks data-loss-protect required or gossip queries", sent)
			}
		})
	}
}

// TestMessages plays a remote that sends one thing and checks what the box does.
func TestMessages(t *testing.T) {
	rawType := func(typ uint16) []byte { return binary.BigEndian.AppendUint16(nil, typ) }
	tests := []struct {
		name string
		send func(*peertest.Session) error
		// check runs on the box's side after the remote sent.
		wantClosed bool
		wantRemote bool // the box reports a RemoteError
		wantPong   bool
		wantRecv   lnwire.MessageType
	}{
		{name: "ping answered", send: func(s *peertest.Session) error { return s.Send(&lnwire.Ping{NumPongBytes: 10}) }, wantPong: true},
		{name: "warning keeps the connection", send: func(s *peertest.Session) error {
			if err := s.Send(&lnwire.Warning{Data: []byte("careful")}); err != nil {
				return err
			}
			return s.Send(&lnwire.GossipTimestampRange{})
		}, wantRecv: lnwire.MsgGossipTimestampRange},
		{name: "unknown odd ignored", send: func(s *peertest.Session) error {
			if err := s.SendRaw(rawType(32769)); err != nil {
				return err
			}
			return s.Send(&lnwire.GossipTimestampRange{})
		}, wantRecv: lnwire.MsgGossipTimestampRange},
		{name: "unknown even closes", send: func(s *peertest.Session) error { return s.SendRaw(rawType(32768)) }, wantClosed: true},
		{name: "error closes", send: func(s *peertest.Session) error { return s.Send(&lnwire.Error{Data: []byte("go away")}) }, wantClosed: true, wantRemote: true},
		{name: "second init closes", send: func(s *peertest.Session) error {
			return s.Send(lnwire.NewInitMessage(lnwire.NewRawFeatureVector(), lnwire.NewRawFeatureVector()))
		}, wantClosed: true},
		{name: "unsolicited pong closes", send: func(s *peertest.Session) error { return s.Send(lnwire.NewPong(nil)) }, wantClosed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotPong := make(chan bool, 1)
			c, err, done := dial(t, peer.Config{Key: localKey(t), PingInterval: time.Hour}, func(s *peertest.Session) error {
				if err := s.Init(peer.LocalFeatures()); err != nil {
					return err
				}
				if err := tt.send(s); err != nil {
					return err
				}
				if tt.wantPong {
					m, err := s.Recv()
					if err != nil {
						return err
					}
					p, ok := m.(*lnwire.Pong)
					gotPong <- ok && len(p.PongBytes) == 10
				}
				s.Closed()
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), peertest.Timeout)
			defer cancel()
			switch {
			case tt.wantPong:
				if !<-gotPong {
					t.Fatal("no pong of the asked length")
				}
			case tt.wantClosed:
				_, err := c.Recv(ctx)
				if err == nil || errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("connection not closed: %v", err)
				}
				var re *peer.RemoteError
				if errors.As(err, &re) != tt.wantRemote {
					t.Fatalf("error %v, want remote error %v", err, tt.wantRemote)
				}
			default:
				m, err := c.Recv(ctx)
				if err != nil || m.MsgType() != tt.wantRecv {
					t.Fatalf("Recv %v, %v; want %v", m, err, tt.wantRecv)
				}
			}
			c.Close()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestNoPongDrops(t *testing.T) {
	c, err, done := dial(t, peer.Config{Key: localKey(t), PingInterval: 100 * time.Millisecond}, func(s *peertest.Session) error {
		if err := s.Init(peer.LocalFeatures()); err != nil {
			return err
		}
		s.Closed() // reads the pings and never answers
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
		t.Logf("dropped: %v", c.Err())
	case <-time.After(peertest.Timeout):
		t.Fatal("a peer that never answers pings was not dropped")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestWrongKeyFailsHandshake(t *testing.T) {
	r := peertest.Listen(t)
	other, _ := btcec.NewPrivateKey()
	go func() {
		if s, err := r.Accept(); err == nil {
			s.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), peertest.Timeout)
	defer cancel()
	if c, err := peer.Dial(ctx, peer.Config{Key: localKey(t), DialTimeout: 2 * time.Second}, other.PubKey(), r.Addr()); err == nil {
		c.Close()
		t.Fatal("handshake with the wrong node id succeeded")
	}
}

// TestDialHonoursContext: a peer that completes the handshake but never sends init does not
// hold Dial past its context.
func TestDialHonoursContext(t *testing.T) {
	r := peertest.Listen(t)
	go func() {
		if s, err := r.Accept(); err == nil {
			s.Closed()
			s.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	c, err := peer.Dial(ctx, peer.Config{Key: localKey(t), DialTimeout: time.Minute}, r.PubKey(), r.Addr())
	if err == nil {
		c.Close()
		t.Fatal("Dial succeeded without an init from the peer")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Dial returned after %v, its context ended after 200ms", took)
	}
}
