package web

import (
	"net/http"
	"strings"
	"testing"
)

// FuzzAPIInput sends arbitrary bodies to POST /api/setup on a new box, then to
// POST /api/login. No body may panic the server or earn a 5xx.
func FuzzAPIInput(f *testing.F) {
	for _, seed := range []string{
		``,
		`{}`,
		`null`,
		`[]`,
		`{"password":"` + testPassword + `"}`,
		`{"password":"` + testPassword + `","name":"box-1"}`,
		`{"password":"` + testPassword + `","name":"Not A Name"}`,
		`{"password":"short"}`,
		`{"password":1}`,
		`{"password":"\ud800\udc00 invalid surrogate \ud800 0123456789"}`,
		`{"password":"` + strings.Repeat("p", 2000) + `"}`,
		`{"password":"a"}{"password":"b"}`,
		`{"password":"x","password":"` + testPassword + `"}`,
		`{"name":null,"password":"` + testPassword + `"}`,
		"\x00\xff{",
		`{"password":"` + testPassword + `"` + strings.Repeat(" ", 70000) + `}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		h := newHarness(t)
		for _, path := range []string{"/api/setup", "/api/login", "/api/login"} {
			r := req("POST", path, body, nil, "")
			r.Header.Set("Content-Type", "application/json")
			res := h.do(r)
			if res.StatusCode >= 500 {
				t.Fatalf("%s %q: %s %s", path, body, res.Status, res.body)
			}
			if res.StatusCode != http.StatusConflict && res.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("%s: answer is not JSON: %s", path, res.Header.Get("Content-Type"))
			}
			if res.Header.Get("Content-Type") == "application/json" {
				res.json(t)
			}
		}
	})
}

// FuzzSendForm reads arbitrary send forms: no input may panic, and an amount accepted is
// within the 21 million BTC and reads back the same when written as BTC.
func FuzzSendForm(f *testing.F) {
	for _, seed := range [][4]string{
		{"0.0015", "btc", "2.5", "850000"},
		{"150,000", "sat", "", ""},
		{"21000000.00000001", "btc", "1e309", "4294967296"},
		{".", "btc", "-0", "0"},
		{"1_000_000", "sat", "NaN", " 12 "},
		{"\u00a0১২", "sat", "0x10", "-1"},
	} {
		f.Add(seed[0], seed[1], seed[2], seed[3])
	}
	f.Fuzz(func(t *testing.T, amount, unit, fee, lock string) {
		in := sendInput{Address: "a", Amount: amount, Unit: unit, FeeRate: fee, LockTime: lock, RelativeLock: lock}
		req, errs := in.request()
		if errs["amount"] == "" {
			n := req.Payments[0].Amount
			if n <= 0 || n > maxBTC*satsPerBTC {
				t.Fatalf("amount %q %s accepted as %d sat", amount, unit, n)
			}
			if back, msg := parseAmount(formatBTC(n), "btc"); msg != "" || back != n {
				t.Fatalf("%d sat written %s reads back as %d (%s)", n, formatBTC(n), back, msg)
			}
		}
		if errs["fee_rate"] == "" && strings.TrimSpace(fee) != "" && (req.FeeRate < 1 || req.FeeRate > 10_000_000) {
			t.Fatalf("fee rate %q accepted as %d sat/kvB", fee, req.FeeRate)
		}
	})
}
