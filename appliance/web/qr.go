package web

import (
	"fmt"
	"html/template"
	"strings"

	"rsc.io/qr"
)

// qrQuietZone is the white border around a QR code, in modules (the standard asks for 4).
const qrQuietZone = 4

// qrCode is a QR code of some text, as a matrix of modules.
type qrCode struct {
	size int // modules on a side, without the quiet zone
	code *qr.Code
}

// newQR encodes text at error correction level M, which survives a smudged phone screen
// and keeps a BIP21 URI with an amount and a label at a size a phone camera reads easily.
func newQR(text string) (*qrCode, error) {
	c, err := qr.Encode(text, qr.M)
	if err != nil {
		return nil, fmt.Errorf("encode QR code: %w", err)
	}
	return &qrCode{size: c.Size, code: c}, nil
}

// black reports whether the module at x, y (without the quiet zone) is dark.
func (q *qrCode) black(x, y int) bool { return q.code.Black(x, y) }

// version is the QR version (1 to 40) of the code: its size is 17 + 4 × version modules.
func (q *qrCode) version() int { return (q.size - 17) / 4 }

// svg draws the code as an inline SVG element: one path of the dark modules, row by row,
// on a white square with the quiet zone. It has no script and no style attribute, so the
// Content-Security-Policy lets it be part of the page.
func (q *qrCode) svg(label string) template.HTML {
	n := q.size + 2*qrQuietZone
	var path strings.Builder
	for y := 0; y < q.size; y++ {
		for x := 0; x < q.size; {
			if !q.black(x, y) {
				x++
				continue
			}
			run := 1
			for x+run < q.size && q.black(x+run, y) {
				run++
			}
			fmt.Fprintf(&path, "M%d %dh%dv1h-%dz", x+qrQuietZone, y+qrQuietZone, run, run)
			x += run
		}
	}
	return template.HTML(fmt.Sprintf(`<svg class="qr" viewBox="0 0 %d %d" `+
		`shape-rendering="crispEdges" role="img" aria-label="%s"><rect width="%d" height="%d" fill="#fff"/>`+
		`<path fill="#000" d="%s"/></svg>`, n, n, template.HTMLEscapeString(label), n, n, path.String()))
}
