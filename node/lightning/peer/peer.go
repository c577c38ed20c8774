package peer

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/lightningnetwork/lnd/brontide"
	"github.com/lightningnetwork/lnd/keychain"
	"github.com/lightningnetwork/lnd/lnwire"
)

// Defaults of Config.
const (
	DefaultDialTimeout  = 10 * time.Second
	DefaultPingInterval = 30 * time.Second
	// writeTimeout bounds one message write; a peer that does not read is dropped.
	writeTimeout = 10 * time.Second
	// inbox is how many decoded messages wait for Recv before the reader blocks (and so
	// stops reading the socket: back-pressure instead of unbounded memory).
	inbox = 64
)

// ErrClosed is returned by Send and Recv once the connection is closed.
var ErrClosed = errors.New("peer: connection closed")

// RemoteError is the reason a connection ended because the peer sent an error message.
type RemoteError struct{ Msg string }

func (e *RemoteError) Error() string { return "peer sent error: " + e.Msg }

// Config configures connections.
type Config struct {
	// Key is the box's node key (hsm.NodeKey).
	Key keychain.SingleKeyECDH
	// DialTimeout bounds the TCP connect and the BOLT 8 handshake (DefaultDialTimeout).
	DialTimeout time.Duration
	// PingInterval is how often a ping is sent; a peer that has not answered by the next
	// one is dropped (DefaultPingInterval).
	PingInterval time.Duration
	// Log receives connection events (slog.Default when nil).
	Log *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.PingInterval <= 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return c
}

// LocalFeatures are the features the box sends in its init.
func LocalFeatures() *lnwire.RawFeatureVector {
	return lnwire.NewRawFeatureVector(lnwire.DataLossProtectRequired, lnwire.GossipQueriesOptional)
}

// Conn is an established connection: init exchanged, keep-alive running.
type Conn struct {
	cfg    Config
	conn   net.Conn
	remote *btcec.PublicKey
	// Features are the peer's features from its init (global and local merged).
	Features *lnwire.FeatureVector
	log      *slog.Logger

	wmu sync.Mutex // serialises writes
	in  chan lnwire.Message

	done    chan struct{}
	once    sync.Once
	errMu   sync.Mutex
	err     error
	pongDue chan uint16 // expected pong length of the outstanding ping
}

// Dial connects to the peer with node id remote at addr (host:port), runs the BOLT 8
// handshake and the init exchange, and starts the connection's reader and keep-alive. The
// caller closes the connection.
func Dial(ctx context.Context, cfg Config, remote *btcec.PublicKey, addr string) (*Conn, error) {
	cfg = cfg.withDefaults()
	tcp, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("peer %s: resolve: %w", addr, err)
	}
	// Neither brontide's handshake nor the init exchange knows ctx: closing the socket when
	// ctx ends stops them.
	stop := func() bool { return false }
	dial := func(network, a string, timeout time.Duration) (net.Conn, error) {
		d := net.Dialer{Timeout: timeout}
		c, err := d.DialContext(ctx, network, a)
		if err == nil {
			stop = context.AfterFunc(ctx, func() { c.Close() })
		}
		return c, err
	}
	bc, err := brontide.Dial(cfg.Key, &lnwire.NetAddress{IdentityKey: remote, Address: tcp}, cfg.DialTimeout, dial)
	if err != nil {
		stop()
		return nil, fmt.Errorf("peer %s: brontide handshake: %w", addr, errors.Join(ctx.Err(), err))
	}
	c, err := newConn(ctx, cfg, bc, remote)
	if !stop() && err == nil { // ctx ended: the socket is closed or about to be
		c.Close()
		err = ctx.Err()
	}
	if err != nil {
		bc.Close()
		return nil, fmt.Errorf("peer %x@%s: %w", remote.SerializeCompressed(), addr, err)
	}
	return c, nil
}

// newConn exchanges init over an established transport and starts the loops. conn is a
// *brontide.Conn in production; tests give any transport that frames messages the same way
// (see Framer).
func newConn(ctx context.Context, cfg Config, conn net.Conn, remote *btcec.PublicKey) (*Conn, error) {
	cfg = cfg.withDefaults()
	c := &Conn{
		cfg:     cfg,
		conn:    conn,
		remote:  remote,
		log:     cfg.Log.With("peer", fmt.Sprintf("%x", remote.SerializeCompressed())),
		in:      make(chan lnwire.Message, inbox),
		done:    make(chan struct{}),
		pongDue: make(chan uint16, 1),
	}
	if err := c.writeMessage(lnwire.NewInitMessage(lnwire.NewRawFeatureVector(), LocalFeatures())); err != nil {
		return nil, fmt.Errorf("send init: %w", err)
	}
	deadline := time.Now().Add(cfg.DialTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = conn.SetReadDeadline(deadline)
	msg, err := c.readMessage()
	if err != nil {
		return nil, fmt.Errorf("read init: %w", err)
	}
	_ = conn.SetReadDeadline(time.Time{})
	init, ok := msg.(*lnwire.Init)
	if !ok {
		return nil, fmt.Errorf("first message is %v, not init", msg.MsgType())
	}
	features, err := checkInit(init)
	if err != nil {
		return nil, err
	}
	c.Features = features
	go c.readLoop()
	go c.pingLoop()
	c.log.Debug("lightning peer connected", "addr", conn.RemoteAddr())
	return c, nil
}

// checkInit merges the peer's feature vectors and refuses unknown required features.
func checkInit(init *lnwire.Init) (*lnwire.FeatureVector, error) {
	raw := lnwire.NewRawFeatureVector()
	for _, v := range []*lnwire.RawFeatureVector{init.GlobalFeatures, init.Features} {
		if v == nil {
			continue
		}
		if err := raw.Merge(v); err != nil {
			return nil, fmt.Errorf("init features: %w", err)
		}
	}
	fv := lnwire.NewFeatureVector(raw, lnwire.Features)
	if unknown := fv.UnknownRequiredFeatures(); len(unknown) > 0 {
		return nil, fmt.Errorf("peer requires unknown features %v", unknown)
	}
	return fv, nil
}

// RemotePub is the peer's node id.
func (c *Conn) RemotePub() *btcec.PublicKey { return c.remote }

// RemoteAddr is the peer's network address.
func (c *Conn) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// Send writes msg to the peer.
func (c *Conn) Send(msg lnwire.Message) error {
	select {
	case <-c.done:
		return ErrClosed
	default:
	}
	if err := c.writeMessage(msg); err != nil {
		c.closeWith(fmt.Errorf("send %v: %w", msg.MsgType(), err))
		return err
	}
	return nil
}

// Recv returns the next message that is not init, ping, pong, warning or error. It returns
// the reason the connection ended once it has (ErrClosed after Close).
func (c *Conn) Recv(ctx context.Context) (lnwire.Message, error) {
	select {
	case m := <-c.in:
		return m, nil
	case <-c.done:
		return nil, c.Err()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Done is closed when the connection ends.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err is why the connection ended (nil while it is up).
func (c *Conn) Err() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}

// Close ends the connection.
func (c *Conn) Close() error {
	c.closeWith(ErrClosed)
	return nil
}

// Drop sends an error message with reason (best effort) and closes the connection. It is
// how the box disconnects a peer that sent invalid data.
func (c *Conn) Drop(reason error) {
	e := lnwire.NewError()
	e.Data = lnwire.ErrorData(reason.Error())
	_ = c.writeMessage(e)
	c.closeWith(fmt.Errorf("dropped: %w", reason))
}

func (c *Conn) closeWith(err error) {
	c.once.Do(func() {
		c.errMu.Lock()
		c.err = err
		c.errMu.Unlock()
		close(c.done)
		c.conn.Close()
		c.log.Debug("lightning peer disconnected", "reason", err)
	})
}

func (c *Conn) writeMessage(msg lnwire.Message) error {
	var buf bytes.Buffer
	if _, err := lnwire.WriteMessage(&buf, msg, 0); err != nil {
		return fmt.Errorf("encode %v: %w", msg.MsgType(), err)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if f, ok := c.conn.(framer); ok {
		if err := f.WriteMessage(buf.Bytes()); err != nil {
			return err
		}
		_, err := f.Flush()
		return err
	}
	_, err := c.conn.Write(buf.Bytes())
	return err
}

// framer is what brontide.Conn offers beyond net.Conn: whole messages.
type framer interface {
	WriteMessage([]byte) error
	Flush() (int, error)
	ReadNextMessage() ([]byte, error)
}

// errIgnore marks an unknown odd message, which BOLT 1 says to ignore.
var errIgnore = errors.New("unknown odd message")

func (c *Conn) readMessage() (lnwire.Message, error) {
	f, ok := c.conn.(framer)
	if !ok {
		return nil, errors.New("transport does not frame messages")
	}
	for {
		raw, err := f.ReadNextMessage()
		if err != nil {
			return nil, err
		}
		msg, err := decode(raw)
		if errors.Is(err, errIgnore) {
			continue
		}
		return msg, err
	}
}

// decode decodes one message; unknown odd types give errIgnore.
func decode(raw []byte) (lnwire.Message, error) {
	odd := len(raw) >= 2 && binary.BigEndian.Uint16(raw)%2 == 1
	msg, err := lnwire.ReadMessage(bytes.NewReader(raw), 0)
	var unknown *lnwire.UnknownMessage
	switch {
	case err == nil:
		if _, custom := msg.(*lnwire.Custom); !custom {
			return msg, nil
		}
		// lnwire decodes every type from 32768 up as Custom: none is known to the box.
		if odd {
			return nil, errIgnore
		}
		return nil, fmt.Errorf("unknown even message type %d", binary.BigEndian.Uint16(raw))
	case errors.As(err, &unknown) && odd:
		return nil, errIgnore
	default:
		return nil, fmt.Errorf("decode message: %w", err)
	}
}

func (c *Conn) readLoop() {
	for {
		msg, err := c.readMessage()
		if err != nil {
			c.closeWith(fmt.Errorf("read: %w", err))
			return
		}
		switch m := msg.(type) {
		case *lnwire.Ping:
			if m.NumPongBytes <= lnwire.MaxPongBytes {
				if err := c.Send(lnwire.NewPong(make([]byte, m.NumPongBytes))); err != nil {
					return
				}
			}
			continue
		case *lnwire.Pong:
			select {
			case want := <-c.pongDue:
				if int(want) != len(m.PongBytes) {
					c.Drop(fmt.Errorf("pong of %d bytes, asked for %d", len(m.PongBytes), want))
					return
				}
			default:
				c.Drop(errors.New("unsolicited pong"))
				return
			}
			continue
		case *lnwire.Warning:
			c.log.Warn("lightning peer warning", "msg", m.Warning())
			continue
		case *lnwire.Error:
			c.closeWith(&RemoteError{Msg: m.Error()})
			return
		case *lnwire.Init:
			c.Drop(errors.New("second init"))
			return
		}
		select {
		case c.in <- msg:
		case <-c.done:
			return
		}
	}
}

// pingLoop sends a ping every PingInterval and drops the peer when the previous one is still
// unanswered.
func (c *Conn) pingLoop() {
	t := time.NewTicker(c.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		const pongLen = 16
		select {
		case c.pongDue <- pongLen:
		default:
			c.closeWith(errors.New("no pong within the ping interval"))
			return
		}
		if c.Send(&lnwire.Ping{NumPongBytes: pongLen}) != nil {
			return
		}
	}
}
