package web

import (
	"html"
	"image"
	"image/color"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/anya-edge/anya/node/wallet"
	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
)

var (
	svgViewBox = regexp.MustCompile(`<svg class="qr" viewBox="0 0 (\d+) (\d+)"`)
	svgPath    = regexp.MustCompile(`<path fill="#000" d="([^"]*)"/>`)
	svgRun     = regexp.MustCompile(`M(\d+) (\d+)h(\d+)v1h-(\d+)z`)
)

// rasterize draws the QR code of an inline SVG made by qrCode.svg as a picture, scale
// pixels per module, the way a screen shows it to a phone's camera.
func rasterize(t *testing.T, svg string, scale int) image.Image {
	t.Helper()
	vb := svgViewBox.FindStringSubmatch(svg)
	p := svgPath.FindStringSubmatch(svg)
	if vb == nil || p == nil {
		t.Fatalf("not a QR code SVG: %.200q", svg)
	}
	n, _ := strconv.Atoi(vb[1])
	img := image.NewGray(image.Rect(0, 0, n*scale, n*scale))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	runs := svgRun.FindAllStringSubmatch(p[1], -1)
	if strings.Join(flatten(runs), "") != p[1] {
		t.Fatalf("the path has commands other than module runs: %.200q", p[1])
	}
	for _, m := range runs {
		x, _ := strconv.Atoi(m[1])
		y, _ := strconv.Atoi(m[2])
		w, _ := strconv.Atoi(m[3])
		for px := x * scale; px < (x+w)*scale; px++ {
			for py := y * scale; py < (y+1)*scale; py++ {
				img.SetGray(px, py, color.Gray{})
			}
		}
	}
	return img
}

func flatten(ms [][]string) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m[0]
	}
	return out
}

// decodeQR reads a QR code with gozxing, a port of ZXing (the decoder of many phone apps).
func decodeQR(t *testing.T, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
	if err != nil {
		t.Fatalf("decode QR code: %v", err)
	}
	return res.GetText()
}

// TestQRCode draws BIP21 URIs as the receive page does and reads them back with a QR
// decoder: the text must come back exactly, and the code grows with the text.
func TestQRCode(t *testing.T) {
	addr := "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"
	taproot := "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr"
	uris := []string{
		wallet.BIP21(addr, 0, ""),
		wallet.BIP21(addr, 150_000, ""),
		wallet.BIP21(addr, 2_100_000_000_000_000, "Rent & co: März"),
		wallet.BIP21(taproot, 1, strings.Repeat("long label ", 12)),
		wallet.BIP21("bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", 50_000_000, "regtest"),
	}
	prev := 0
	for i, uri := range uris {
		code, err := newQR(uri)
		if err != nil {
			t.Fatal(err)
		}
		v := code.version()
		if v < 1 || v > 40 || code.size != 17+4*v {
			t.Fatalf("%q: version %d, %d modules", uri, v, code.size)
		}
		if i > 0 && len(uri) > len(uris[i-1]) && v < prev {
			t.Errorf("%q is longer than the one before but has a smaller code (version %d < %d)", uri, v, prev)
		}
		prev = v
		svg := string(code.svg("QR code of " + uri))
		if got := decodeQR(t, rasterize(t, svg, 4)); got != uri {
			t.Errorf("decoded %q, want %q", got, uri)
		}
		if m := inlineCode.FindString(svg); m != "" || strings.Contains(svg, "http") {
			t.Errorf("the SVG has %q, which the Content-Security-Policy or the page rules forbid", m)
		}
	}
	// More text, bigger code.
	small, _ := newQR(uris[0])
	big, _ := newQR(uris[3])
	if big.version() <= small.version() {
		t.Errorf("versions %d and %d for %d and %d characters", small.version(), big.version(), len(uris[0]), len(uris[3]))
	}
	// The label is escaped in the element's accessible name.
	if svg := string(small.svg(`a "quoted" <label>`)); !strings.Contains(svg, `aria-label="a &#34;quoted&#34; &lt;label&gt;"`) {
		t.Errorf("label not escaped: %.300s", svg)
	}
}

// TestReceivePageQR reads the QR code the receive page shows: it is the URI the page
// prints, also after an amount and a label change it.
func TestReceivePageQR(t *testing.T) {
	h := newNodeHarness(t, nodeOpts{})
	cookie, _ := h.setup()
	versions := map[string]int{}
	for _, q := range []string{"", "?amount=0.0015", "?amount=0.0015&label=Rent+%26+co"} {
		res := h.do(req("GET", "/node/receive"+q, "", cookie, ""))
		wantStatus(t, res, http.StatusOK)
		uri := elemText(res.body, "receive-uri")
		if got := decodeQR(t, rasterize(t, res.body, 3)); got != uri {
			t.Errorf("page %q: QR code says %q, the page %q", q, got, uri)
		}
		v, _ := strconv.Atoi(regexp.MustCompile(`data-version="(\d+)"`).FindStringSubmatch(res.body)[1])
		versions[html.UnescapeString(uri)] = v
	}
	if len(versions) != 3 {
		t.Errorf("the URI did not change with the amount and label: %v", versions)
	}
}
