package peer

import (
	"bytes"
	"testing"

	"github.com/lightningnetwork/lnd/lnwire"
)

// FuzzDecode: any bytes a peer sends give a message, errIgnore or an error, never a panic,
// and an even unknown type is never ignored.
func FuzzDecode(f *testing.F) {
	for _, m := range []lnwire.Message{&lnwire.Ping{NumPongBytes: 3}, lnwire.NewPong([]byte{1}), &lnwire.Warning{Data: []byte("w")},
		lnwire.NewInitMessage(lnwire.NewRawFeatureVector(), LocalFeatures())} {
		var b bytes.Buffer
		if _, err := lnwire.WriteMessage(&b, m, 0); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes())
	}
	f.Add([]byte{0x80, 0x00})
	f.Add([]byte{0x80, 0x01, 0xff})
	f.Fuzz(func(t *testing.T, raw []byte) {
		msg, err := decode(raw)
		if err == errIgnore && len(raw) >= 2 && raw[1]%2 == 0 {
			t.Fatalf("even type %x ignored", raw[:2])
		}
		if err == nil && msg == nil {
			t.Fatal("no message and no error")
		}
	})
}
