package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/anya-edge/anya/appliance/control"
)

func TestAPIStatus(t *testing.T) {
	h := newHarness(t)
	cookie, _ := h.setup()
	res := h.do(req("GET", "/api/status", "", cookie, ""))
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("got %s %s", res.Status, res.Header.Get("Content-Type"))
	}
	var got struct {
		control.Status
		Storage struct {
			Path      string `json:"path"`
			FileBytes int64  `json:"file_bytes"`
		} `json:"storage"`
		BoxName string `json:"box_name"`
	}
	if err := json.Unmarshal([]byte(res.body), &got); err != nil {
		t.Fatal(err)
	}
	if got.Version != testVersion || got.Mode != "dev" || got.Data.State != control.DataHost ||
		got.BoxName != "living-room" || got.Storage.Path != h.dbPath || got.Storage.FileBytes <= 0 {
		t.Fatalf("status: %s", res.body)
	}
}

func TestAPILog(t *testing.T) {
	h := newHarness(t)
	cookie, _ := h.setup()
	first := h.ring.Last() // the server logs elsewhere: the ring holds only these lines
	for i := 1; i <= 5; i++ {
		fmt.Fprintf(h.ring, "test line %d\n", i)
	}
	tests := []struct {
		query  string
		status int
		lines  []string // texts expected, when status is 200
		err    string
	}{
		{fmt.Sprintf("?after=%d", first), 200, []string{"test line 1", "test line 2", "test line 3", "test line 4", "test line 5"}, ""},
		{fmt.Sprintf("?after=%d&max=2", first), 200, []string{"test line 4", "test line 5"}, ""},
		{fmt.Sprintf("?after=%d", first+5), 200, []string{}, ""},
		{"?after=-1", 400, nil, "after must be a non-negative integer"},
		{"?after=x", 400, nil, "after must be"},
		{"?max=0", 400, nil, "max must be an integer from 1 to 1000"},
		{"?max=1001", 400, nil, "max must be"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			res := h.do(req("GET", "/api/log"+tt.query, "", cookie, ""))
			if res.StatusCode != tt.status {
				t.Fatalf("got %s %s", res.Status, res.body)
			}
			if tt.status != 200 {
				if !strings.Contains(res.json(t)["error"].(string), tt.err) {
					t.Fatalf("error %s, want %q", res.body, tt.err)
				}
				return
			}
			var entries []control.LogEntry
			if err := json.Unmarshal([]byte(res.body), &entries); err != nil {
				t.Fatal(err)
			}
			var texts []string
			for _, e := range entries {
				if strings.HasPrefix(e.Text, "test line") {
					texts = append(texts, e.Text)
				}
			}
			if strings.Join(texts, "|") != strings.Join(tt.lines, "|") || (entries == nil) {
				t.Fatalf("got %q (%s), want %q", texts, res.body, tt.lines)
			}
		})
	}

	t.Run("default shows the newest lines", func(t *testing.T) {
		res := h.do(req("GET", "/api/log", "", cookie, ""))
		if !strings.Contains(res.body, "test line 5") {
			t.Fatalf("got %s", res.body)
		}
	})
}

func TestAPIDecoding(t *testing.T) {
	h := newHarness(t)
	h.setup()
	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
		want        string
	}{
		{"no content type", "", `{"password":"x"}`, 415, "Content-Type must be application/json"},
		{"form content type", "application/x-www-form-urlencoded", `password=x`, 415, "Content-Type must be application/json"},
		{"json with charset", "application/json; charset=utf-8", `{"password":"x"}`, 401, "Wrong password."},
		{"empty", "application/json", ``, 400, "the body is empty"},
		{"truncated", "application/json", `{"password":"x"`, 400, "ends in the middle"},
		{"syntax", "application/json", `{"password" "x"}`, 400, "invalid JSON at byte"},
		{"array", "application/json", `["x"]`, 400, "expected an object, got array"},
		{"string", "application/json", `"x"`, 400, "expected an object, got string"},
		{"two objects", "application/json", `{"password":"x"} {}`, 400, "a single JSON object"},
		{"unknown field", "application/json", `{"passwd":"x"}`, 400, `unknown field "passwd"`},
		{"wrong type", "application/json", `{"password":["x"]}`, 400, `field "password" must be a string, got array`},
		{"too large", "application/json", `{"password":"` + strings.Repeat("x", maxBody) + `"}`, 413, "larger than 65536 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := req("POST", "/api/login", "", nil, "")
			r.Body = http.NoBody
			if tt.body != "" {
				r = req("POST", "/api/login", tt.body, nil, "")
			}
			r.Header.Set("Content-Type", tt.contentType)
			if tt.contentType == "" {
				r.Header.Del("Content-Type")
			}
			res := h.do(r)
			if res.StatusCode != tt.status {
				t.Fatalf("got %s %s, want %d", res.Status, res.body, tt.status)
			}
			if msg, _ := res.json(t)["error"].(string); !strings.Contains(msg, tt.want) {
				t.Fatalf("error %q, want it to contain %q", msg, tt.want)
			}
		})
		h.srv.limiter.succeeded(limitKey(req("GET", "/", "", nil, "")))
	}
}

func TestAPIRebootFailure(t *testing.T) {
	h := newHarness(t)
	h.host.Restart = nil // control.Host refuses to reboot without it
	cookie, csrf := h.setup()
	res := h.do(req("POST", "/api/reboot", "", cookie, csrf))
	if res.StatusCode != http.StatusInternalServerError || !strings.Contains(res.json(t)["error"].(string), "could not reboot") {
		t.Fatalf("got %s %s", res.Status, res.body)
	}
	page := h.do(req("POST", "/reboot", "csrf="+csrf, cookie, ""))
	if page.StatusCode != http.StatusInternalServerError || !strings.Contains(page.body, "Reboot failed") {
		t.Fatalf("page: got %s", page.Status)
	}
}
