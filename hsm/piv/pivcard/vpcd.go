package pivcard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// vpcd control codes (1-byte messages from the reader).
const (
	vpcdPowerOff = 0x00
	vpcdPowerOn  = 0x01
	vpcdReset    = 0x02
	vpcdATR      = 0x04
)

// DefaultVPCDAddr is where Debian's vsmartcard-vpcd driver listens for the card of its first
// reader ("Virtual PCD 00 00"; /etc/reader.conf.d/vpcd, CHANNELID 0x8C7B).
const DefaultVPCDAddr = "127.0.0.1:35963"

// Serve runs the vpcd protocol for card on conn until conn fails or is closed. It returns nil
// when the reader closed the connection.
func Serve(conn io.ReadWriter, card *Card) error {
	var hdr [2]byte
	for {
		quickACK(conn)
		if _, err := io.ReadFull(conn, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		quickACK(conn)
		msg := make([]byte, binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.ReadFull(conn, msg); err != nil {
			return err
		}
		var resp []byte
		if len(msg) == 1 {
			switch msg[0] {
			case vpcdPowerOff, vpcdPowerOn, vpcdReset:
				card.Reset()
				continue
			case vpcdATR:
				resp = card.ATR()
			default:
				continue
			}
		} else {
			resp = card.Transmit(msg)
		}
		out := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(resp)), uint16(len(resp)))
		if _, err := conn.Write(append(out, resp...)); err != nil {
			return err
		}
	}
}

// Plug is a card inserted into a vpcd reader.
type Plug struct {
	conn net.Conn
	done chan struct{}
	err  error
}

// Plug connects card to the vpcd reader listening at addr (host:port) and serves it in the
// background until Unplug. It retries the connection for up to 10 s while the reader is not
// listening yet.
func (c *Card) Plug(addr string) (*Plug, error) {
	var conn net.Conn
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err = net.DialTimeout("tcp", addr, 2*time.Second)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("pivcard: connecting to vpcd at %s: %w", addr, err)
	}
	p := &Plug{conn: conn, done: make(chan struct{})}
	go func() {
		err := Serve(conn, c)
		p.err = err
		close(p.done)
	}()
	return p, nil
}

// Unplug removes the card from the reader (closes the connection) and waits for the server
// goroutine to finish.
func (p *Plug) Unplug() error {
	p.conn.Close()
	<-p.done
	if p.err != nil && !errors.Is(p.err, net.ErrClosed) {
		return p.err
	}
	return nil
}

// Done is closed when the reader dropped the card or Unplug was called.
func (p *Plug) Done() <-chan struct{} { return p.done }
