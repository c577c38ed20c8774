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
