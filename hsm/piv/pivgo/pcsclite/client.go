package pcsclite

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// DefaultSocket is where pcscd listens (pcsc-lite's PCSCLITE_CSOCK_NAME for ipcdir /run/pcscd).
const DefaultSocket = "/run/pcscd/pcscd.comm"

// SocketPath returns the daemon socket: $PCSCLITE_CSOCK_NAME if set (as libpcsclite honours
// it), else DefaultSocket.
func SocketPath() string {
	if p := os.Getenv("PCSCLITE_CSOCK_NAME"); p != "" {
		return p
	}
	return DefaultSocket
}

// Message commands (winscard_msg.h, enum pcsc_msg_commands).
const (
	cmdEstablishContext = 0x01
	cmdReleaseContext   = 0x02
	cmdConnect          = 0x04
	cmdDisconnect       = 0x06
	cmdBeginTransaction = 0x07
	cmdEndTransaction   = 0x08
	cmdTransmit         = 0x09
	cmdVersion          = 0x11
	cmdGetReadersState  = 0x12
)

// Protocol version this client speaks first; the daemon answers with its own and the client
// retries once with it when the major version is 4.
const (
	protocolMajor = 4
	protocolMinor = 4
)

// Sizes from pcsclite.h / winscard_msg.h.
const (
	maxReaderName         = 128
	maxATRSize            = 33
	maxReadersContexts    = 16
	readerStateSize       = maxReaderName + 4 + 4 + 4 + maxATRSize + 3 /* padding */ + 4 + 4 // 184
	maxBufferSizeExtended = 4 + 3 + (1 << 16) + 3 + 2                                        // 65548
	connectStructSize     = 4 + maxReaderName + 4*5                                          // 152
)

// Scopes, share modes, protocols and dispositions (pcsclite.h).
const (
	ScopeUser   uint32 = 0
	ScopeSystem uint32 = 2

	ShareExclusive uint32 = 1
	ShareShared    uint32 = 2
	ShareDirect    uint32 = 3

	ProtocolT0  uint32 = 1
	ProtocolT1  uint32 = 2
	ProtocolRaw uint32 = 4
	ProtocolAny        = ProtocolT0 | ProtocolT1

	LeaveCard   uint32 = 0
	ResetCard   uint32 = 1
	UnpowerCard uint32 = 2
	EjectCard   uint32 = 3
)

// Reader state bits (pcsclite.h SCARD_ABSENT...).
const (
	StateUnknown    uint32 = 0x0001
	StateAbsent     uint32 = 0x0002
	StatePresent    uint32 = 0x0004
	StateSwallowed  uint32 = 0x0008
	StatePowered    uint32 = 0x0010
	StateNegotiable uint32 = 0x0020
	StateSpecific   uint32 = 0x0040
)

// Options tune a Context. The zero value is fine.
type Options struct {
	// Socket is the daemon's socket; "" means SocketPath().
	Socket string
	// Timeout bounds each exchange with the daemon (a Transmit includes the card's work, and
	// a touch-policy key waits for the user up to 15 s). 0 means 60 s; negative means none.
	Timeout time.Duration
	// LockWait bounds how long BeginTransaction keeps retrying while another handle holds the
	// card. 0 means 30 s.
	LockWait time.Duration
}

// Context is an established PC/SC context: one connection to pcscd.
type Context struct {
	mu       sync.Mutex
	conn     net.Conn
	hContext uint32
	major    int32
	minor    int32
	timeout  time.Duration
	lockWait time.Duration
	closed   bool
	bo       binary.ByteOrder
}

// EstablishContext connects to pcscd and establishes a context in the system scope.
func EstablishContext() (*Context, error) {
	return EstablishContextOptions(Options{})
}

// EstablishContextOptions is EstablishContext with options.
func EstablishContextOptions(o Options) (*Context, error) {
	path := o.Socket
	if path == "" {
		path = SocketPath()
	}
	c := &Context{timeout: o.Timeout, lockWait: o.LockWait, bo: binary.NativeEndian}
	if c.timeout == 0 {
		c.timeout = 60 * time.Second
	}
	if c.lockWait == 0 {
		c.lockWait = 30 * time.Second
	}
	conn, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return nil, &Error{Op: "establish context", Code: ErrNoService, Err: err}
	}
	c.conn = conn
	if err := c.negotiate(); err != nil {
		conn.Close()
		return nil, err
	}
	// struct establish_struct { uint32 dwScope; uint32 hContext; uint32 rv; }
	req := make([]byte, 12)
	c.bo.PutUint32(req[0:], ScopeSystem)
	resp, err := c.call("establish context", cmdEstablishContext, req, nil, 0)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if rv := c.bo.Uint32(resp[8:]); rv != Success {
		conn.Close()
		return nil, &Error{Op: "establish context", Code: rv}
	}
	c.hContext = c.bo.Uint32(resp[4:])
	return c, nil
}

// negotiate runs CMD_VERSION: first with our version, then (if the daemon speaks another 4.x)
// with the daemon's, since pcscd requires an exact match.
func (c *Context) negotiate() error {
	major, minor := int32(protocolMajor), int32(protocolMinor)
	for attempt := 0; attempt < 2; attempt++ {
		// struct version_struct { int32 major; int32 minor; uint32 rv; }
		req := make([]byte, 12)
		c.bo.PutUint32(req[0:], uint32(major))
		c.bo.PutUint32(req[4:], uint32(minor))
		resp, err := c.call("version", cmdVersion, req, nil, 0)
		if err != nil {
			return err
		}
		rv := c.bo.Uint32(resp[8:])
		smajor, sminor := int32(c.bo.Uint32(resp[0:])), int32(c.bo.Uint32(resp[4:]))
		if rv == Success {
			c.major, c.minor = smajor, sminor
			return nil
		}
		if smajor != protocolMajor || attempt > 0 {
			return &Error{Op: "version", Code: rv,
				Err: fmt.Errorf("daemon speaks protocol %d:%d, client %d:%d", smajor, sminor, major, minor)}
		}
		major, minor = smajor, sminor
	}
	return &Error{Op: "version", Code: ErrServiceStopped}
}

// ProtocolVersion returns the negotiated major and minor protocol version.
func (c *Context) ProtocolVersion() (major, minor int) { return int(c.major), int(c.minor) }

// call sends header+req (+extra) and reads len(req) bytes back (+ nothing: callers read
// extra payloads themselves while holding mu). It must be called with mu held, or before the
// Context is shared.
func (c *Context) call(op string, cmd uint32, req, extra []byte, respLen int) ([]byte, error) {
	if c.closed {
		return nil, &Error{Op: op, Code: ErrInvalidHandle, Err: errors.New("context released")}
	}
	msg := make([]byte, 8+len(req)+len(extra))
	c.bo.PutUint32(msg[0:], uint32(len(req)))
	c.bo.PutUint32(msg[4:], cmd)
	copy(msg[8:], req)
	copy(msg[8+len(req):], extra)
	if c.timeout > 0 {
		c.conn.SetDeadline(time.Now().Add(c.timeout))
	}
	if _, err := c.conn.Write(msg); err != nil {
		return nil, c.ioError(op, err)
	}
	if respLen == 0 {
		respLen = len(req)
	}
	resp := make([]byte, respLen)
	if _, err := io.ReadFull(c.conn, resp); err != nil {
		return nil, c.ioError(op, err)
	}
	return resp, nil
}

func (c *Context) ioError(op string, err error) error {
	// The connection is out of sync or gone: nothing more can be said on it.
	c.closed = true
	c.conn.Close()
	return &Error{Op: op, Code: ErrNoService, Err: err}
}

// Release releases the context (SCardReleaseContext) and closes the connection. The daemon
// disconnects any card handles still open on it.
func (c *Context) Release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	// struct release_struct { uint32 hContext; uint32 rv; }
	req := make([]byte, 8)
	c.bo.PutUint32(req[0:], c.hContext)
	resp, err := c.call("release context", cmdReleaseContext, req, nil, 0)
	c.closed = true
	c.conn.Close()
	if err != nil {
		return err
	}
	if rv := c.bo.Uint32(resp[4:]); rv != Success {
		return &Error{Op: "release context", Code: rv}
	}
	return nil
}

// ReaderState is one reader as the daemon sees it.
type ReaderState struct {
	Name         string
	EventCounter uint32
	State        uint32 // State* bits
	Sharing      int32  // number of shared handles, -1 when held exclusively
	ATR          []byte
	Protocol     uint32
}

// CardPresent reports whether a card is in the reader.
func (r ReaderState) CardPresent() bool { return r.State&StatePresent != 0 }

// ReaderStates returns the state of every reader (CMD_GET_READERS_STATE).
func (c *Context) ReaderStates() ([]ReaderState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	resp, err := c.call("list readers", cmdGetReadersState, nil, nil, readerStateSize*maxReadersContexts)
	if err != nil {
		return nil, err
	}
	var out []ReaderState
	for i := 0; i < maxReadersContexts; i++ {
		b := resp[i*readerStateSize : (i+1)*readerStateSize]
		name := b[:maxReaderName]
		if n := bytes.IndexByte(name, 0); n >= 0 {
			name = name[:n]
		}
		if len(name) == 0 {
			continue
		}
		o := maxReaderName
		rs := ReaderState{
			Name:         string(name),
			EventCounter: c.bo.Uint32(b[o:]),
			State:        c.bo.Uint32(b[o+4:]),
			Sharing:      int32(c.bo.Uint32(b[o+8:])),
		}
		atr := b[o+12 : o+12+maxATRSize]
		o += 12 + maxATRSize + 3
		n := c.bo.Uint32(b[o:])
		if n > maxATRSize {
			n = maxATRSize
		}
		rs.ATR = append([]byte(nil), atr[:n]...)
		rs.Protocol = c.bo.Uint32(b[o+4:])
		out = append(out, rs)
	}
	return out, nil
}

// ListReaders returns the names of the readers, nil when there are none (unlike
// SCardListReaders, which fails with SCARD_E_NO_READERS_AVAILABLE).
func (c *Context) ListReaders() ([]string, error) {
	states, err := c.ReaderStates()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range states {
		names = append(names, s.Name)
	}
	return names, nil
}

// Card is a connection to the card in a reader (an SCARDHANDLE).
type Card struct {
	ctx      *Context
	handle   int32
	protocol uint32
}

// Connect connects to the card in reader (SCardConnect).
func (c *Context) Connect(reader string, shareMode, preferredProtocols uint32) (*Card, error) {
	if len(reader) >= maxReaderName {
		return nil, &Error{Op: "connect", Code: ErrUnknownReader, Err: errors.New("reader name too long")}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// struct connect_struct { uint32 hContext; char szReader[128]; uint32 dwShareMode;
	//   uint32 dwPreferredProtocols; int32 hCard; uint32 dwActiveProtocol; uint32 rv; }
	req := make([]byte, connectStructSize)
	c.bo.PutUint32(req[0:], c.hContext)
	copy(req[4:], reader)
	o := 4 + maxReaderName
	c.bo.PutUint32(req[o:], shareMode)
	c.bo.PutUint32(req[o+4:], preferredProtocols)
	resp, err := c.call("connect", cmdConnect, req, nil, 0)
	if err != nil {
		return nil, err
	}
	if rv := c.bo.Uint32(resp[o+16:]); rv != Success {
		return nil, &Error{Op: "connect", Code: rv}
	}
	return &Card{ctx: c, handle: int32(c.bo.Uint32(resp[o+8:])), protocol: c.bo.Uint32(resp[o+12:])}, nil
}

// ActiveProtocol returns the protocol negotiated at Connect (ProtocolT0 or ProtocolT1).
func (h *Card) ActiveProtocol() uint32 { return h.protocol }

// simple sends a {int32 hCard; [uint32 disposition;] uint32 rv} request.
func (h *Card) simple(op string, cmd uint32, disposition *uint32) (uint32, error) {
	c := h.ctx
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 8
	if disposition != nil {
		n = 12
	}
	req := make([]byte, n)
	c.bo.PutUint32(req[0:], uint32(h.handle))
	if disposition != nil {
		c.bo.PutUint32(req[4:], *disposition)
	}
	resp, err := c.call(op, cmd, req, nil, 0)
	if err != nil {
		return 0, err
	}
	return c.bo.Uint32(resp[n-4:]), nil
}

// BeginTransaction takes the card's lock (SCardBeginTransaction), waiting while another
// handle holds it.
func (h *Card) BeginTransaction() error {
	deadline := time.Now().Add(h.ctx.lockWait)
	for {
		rv, err := h.simple("begin transaction", cmdBeginTransaction, nil)
		if err != nil {
			return err
		}
		if rv == Success {
			return nil
		}
		if rv != ErrSharingViolation || time.Now().After(deadline) {
			return &Error{Op: "begin transaction", Code: rv}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// EndTransaction releases the card's lock (SCardEndTransaction).
func (h *Card) EndTransaction(disposition uint32) error {
	rv, err := h.simple("end transaction", cmdEndTransaction, &disposition)
	if err != nil {
		return err
	}
	if rv != Success {
		return &Error{Op: "end transaction", Code: rv}
	}
	return nil
}

// Disconnect closes the connection to the card (SCardDisconnect).
func (h *Card) Disconnect(disposition uint32) error {
	rv, err := h.simple("disconnect", cmdDisconnect, &disposition)
	if err != nil {
		return err
	}
	if rv != Success {
		return &Error{Op: "disconnect", Code: rv}
	}
	return nil
}

// Transmit sends a command APDU and returns the response APDU, status word included
// (SCardTransmit with the PCI of the active protocol).
func (h *Card) Transmit(command []byte) ([]byte, error) {
	if len(command) == 0 || len(command) > maxBufferSizeExtended {
		return nil, &Error{Op: "transmit", Code: ErrInvalidParameter, Err: fmt.Errorf("apdu of %d bytes", len(command))}
	}
	c := h.ctx
	c.mu.Lock()
	defer c.mu.Unlock()
	// struct transmit_struct { int32 hCard; uint32 ioSendPciProtocol; uint32 ioSendPciLength;
	//   uint32 cbSendLength; uint32 ioRecvPciProtocol; uint32 ioRecvPciLength;
	//   uint32 pcbRecvLength; uint32 rv; }
	// ioSendPciLength is sizeof(SCARD_IO_REQUEST) of the C client: two unsigned longs.
	const pciLength = 16
	proto := h.protocol
	if proto == 0 {
		proto = ProtocolT1
	}
	req := make([]byte, 32)
	c.bo.PutUint32(req[0:], uint32(h.handle))
	c.bo.PutUint32(req[4:], proto)
	c.bo.PutUint32(req[8:], pciLength)
	c.bo.PutUint32(req[12:], uint32(len(command)))
	c.bo.PutUint32(req[16:], ProtocolAny)
	c.bo.PutUint32(req[20:], pciLength)
	c.bo.PutUint32(req[24:], maxBufferSizeExtended)
	resp, err := c.call("transmit", cmdTransmit, req, command, 0)
	if err != nil {
		return nil, err
	}
	if rv := c.bo.Uint32(resp[28:]); rv != Success {
		return nil, &Error{Op: "transmit", Code: rv}
	}
	n := c.bo.Uint32(resp[24:])
	if n > maxBufferSizeExtended {
		return nil, c.ioError("transmit", fmt.Errorf("daemon announced a %d-byte response", n))
	}
	out := make([]byte, n)
	if _, err := io.ReadFull(c.conn, out); err != nil {
		return nil, c.ioError("transmit", err)
	}
	return out, nil
}
