package web

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSetupValidation(t *testing.T) {
	h := newHarness(t)
	long := strings.Repeat("a", 64)
	tests := []struct {
		name   string
		body   string // a body starting with '{' goes to the API, others to the form
		status int
		want   string
	}{
		{"api empty password", `{"password":""}`, 400, "Choose a password."},
		{"api short password", `{"password":"short"}`, 400, "at least 10 characters (this one has 5)"},
		{"api short in runes", `{"password":"ééééééééé"}`, 400, "this one has 9"},
		{"api long password", jsonBody(map[string]string{"password": strings.Repeat("x", 1025)}), 400, "at most 1024 bytes"},
		{"api bad name chars", `{"password":"` + testPassword + `","name":"my_box"}`, 400, "name: Use 1 to 63 characters"},
		{"api name leading hyphen", `{"password":"` + testPassword + `","name":"-box"}`, 400, "name:"},
		{"api name too long", `{"password":"` + testPassword + `","name":"` + long + `"}`, 400, "name:"},
		{"api unknown field", `{"password":"` + testPassword + `","pasword":"x"}`, 400, `unknown field "pasword"`},
		{"api wrong type", `{"password":12345678901}`, 400, `field "password" must be a string`},
		{"form short", "password=short&confirm=short", 400, "at least 10 characters"},
		{"form mismatch", "password=" + url.QueryEscape(testPassword) + "&confirm=something+else", 400, "The two passwords do not match."},
		{"form bad name", "password=" + url.QueryEscape(testPassword) + "&confirm=" + url.QueryEscape(testPassword) + "&name=Bad+Name%21", 400, "lowercase letters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/setup"
			if strings.HasPrefix(tt.body, "{") {
				path = "/api/setup"
			}
			res := h.do(req("POST", path, tt.body, nil, ""))
			msg := res.body
			if path == "/api/setup" {
				msg, _ = res.json(t)["error"].(string)
			}
			if res.StatusCode != tt.status || !strings.Contains(msg, tt.want) {
				t.Fatalf("got %s %.300q, want %d containing %q", res.Status, res.body, tt.status, tt.want)
			}
			if res.sessionCookie() != nil {
				t.Fatal("a refused setup set a session cookie")
			}
		})
	}
	if done, _ := h.srv.setupDone(); done {
		t.Fatal("refused setups completed setup")
	}

	t.Run("form keeps the name", func(t *testing.T) {
		res := h.do(req("POST", "/setup", "password=short&confirm=short&name=kitchen", nil, ""))
		if !strings.Contains(res.body, `value="kitchen"`) || strings.Contains(res.body, "value=\"short\"") {
			t.Fatalf("form does not keep the name, or echoes the password: %s", res.body)
		}
	})
}

func TestSetupOnce(t *testing.T) {
	h := newHarness(t)
	// The form completes setup and logs in.
	form := url.Values{"password": {testPassword}, "confirm": {testPassword}, "name": {" Living-Room "}}
	res := h.do(req("POST", "/setup", form.Encode(), nil, ""))
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
		t.Fatalf("setup form: got %s to %q", res.Status, res.Header.Get("Location"))
	}
	cookie := res.sessionCookie()
	if cookie == nil {
		t.Fatal("setup did not log in")
	}
	if name, _, _ := h.srv.settings.Get(keyBoxName); name != "living-room" {
		t.Fatalf("box name stored as %q", name)
	}
	status := h.do(req("GET", "/", "", cookie, ""))
	if status.StatusCode != 200 || !strings.Contains(status.body, testVersion) || !strings.Contains(status.body, "living-room") {
		t.Fatalf("status page after setup: %s %.300q", status.Status, status.body)
	}
	csrf := h.do(req("GET", "/api/session", "", cookie, "")).json(t)["csrf"].(string)

	again := jsonBody(map[string]string{"password": "another password 123"})
	tests := []struct {
		name     string
		r        *http.Request
		status   int
		location string
	}{
		{"api with session", req("POST", "/api/setup", again, cookie, csrf), 409, ""},
		{"api without session", req("POST", "/api/setup", again, nil, ""), 401, ""},
		{"form with session", req("POST", "/setup", "password=another+password+123&confirm=another+password+123&csrf="+csrf, cookie, ""), 303, "/login"},
		{"form without session", req("POST", "/setup", "password=another+password+123&confirm=another+password+123", nil, ""), 303, "/login"},
		{"page with session", req("GET", "/setup", "", cookie, ""), 303, "/login"},
		{"page without session", req("GET", "/setup", "", nil, ""), 303, "/login"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.do(tt.r)
			if res.StatusCode != tt.status || res.Header.Get("Location") != tt.location {
				t.Fatalf("got %s to %q, want %d to %q", res.Status, res.Header.Get("Location"), tt.status, tt.location)
			}
		})
	}
	// The first password still works, the second never took.
	h.login()
	bad := h.do(req("POST", "/api/login", again, nil, ""))
	if bad.StatusCode != http.StatusUnauthorized {
		t.Fatalf("second setup's password: %s", bad.Status)
	}
}

func TestLogin(t *testing.T) {
	h := newHarness(t)
	h.setup()
	tests := []struct {
		name     string
		path     string
		body     string
		status   int
		location string
		want     string
		session  bool
	}{
		{"api good", "/api/login", jsonBody(map[string]string{"password": testPassword}), 200, "", `"csrf":"`, true},
		{"api wrong", "/api/login", `{"password":"not the password"}`, 401, "", `"error":"Wrong password."`, false},
		{"api empty", "/api/login", `{}`, 401, "", "Wrong password.", false},
		{"api bad json", "/api/login", `{"password":`, 400, "", "invalid JSON", false},
		{"form good", "/login", "password=" + url.QueryEscape(testPassword), 303, "/", "", true},
		{"form wrong", "/login", "password=nope", 401, "", "Wrong password.", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.do(req("POST", tt.path, tt.body, nil, ""))
			if res.StatusCode != tt.status || res.Header.Get("Location") != tt.location || !strings.Contains(res.body, tt.want) {
				t.Fatalf("got %s to %q %.200q, want %d to %q containing %q",
					res.Status, res.Header.Get("Location"), res.body, tt.status, tt.location, tt.want)
			}
			c := res.sessionCookie()
			if (c != nil) != tt.session {
				t.Fatalf("session cookie: %v, want %v", c, tt.session)
			}
			if c != nil {
				if got := h.do(req("GET", "/api/session", "", c, "")); got.StatusCode != 200 {
					t.Fatalf("new session refused: %s", got.Status)
				}
			}
		})
	}

	t.Run("login page redirects a logged-in user", func(t *testing.T) {
		cookie, _ := h.login()
		res := h.do(req("GET", "/login", "", cookie, ""))
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
			t.Fatalf("got %s to %q", res.Status, res.Header.Get("Location"))
		}
	})
}

func TestSessionCookie(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := "http"
		if useTLS {
			name = "https"
		}
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			var ts *httptest.Server
			if useTLS {
				ts = httptest.NewTLSServer(h.srv.Handler())
			} else {
				ts = httptest.NewServer(h.srv.Handler())
			}
			defer ts.Close()
			cl := ts.Client()
			cl.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

			for _, step := range []struct {
				path, body string
			}{
				{"/api/setup", jsonBody(map[string]string{"password": testPassword})},
				{"/api/login", jsonBody(map[string]string{"password": testPassword})},
				{"/login", "password=" + url.QueryEscape(testPassword)},
			} {
				ct := "application/x-www-form-urlencoded"
				if strings.HasPrefix(step.body, "{") {
					ct = "application/json"
				}
				res, err := cl.Post(ts.URL+step.path, ct, strings.NewReader(step.body))
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				var c *http.Cookie
				for _, rc := range res.Cookies() {
					if rc.Name == sessionCookie {
						c = rc
					}
				}
				if c == nil {
					t.Fatalf("%s: %s and no session cookie", step.path, res.Status)
				}
				if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure != useTLS {
					t.Fatalf("%s: cookie %+v: want HttpOnly, SameSite=Strict, Path=/, Secure=%v", step.path, c, useTLS)
				}
				raw, err := base64.RawURLEncoding.DecodeString(c.Value)
				if err != nil || len(raw) != 32 {
					t.Fatalf("%s: session id %q is not 32 random bytes", step.path, c.Value)
				}
			}
		})
	}
}

// TestSessionStorage checks that bbolt holds only the SHA-256 of a session id, and that
// sessions survive a restart.
func TestSessionStorage(t *testing.T) {
	h := newHarness(t)
	cookie, csrf := h.setup()
	raw, _ := base64.RawURLEncoding.DecodeString(cookie.Value)
	sum := sha256.Sum256(raw)
	var keys []string
	h.srv.sessions.ForEach(func(key string, rec sessionRecord) error {
		keys = append(keys, key)
		return nil
	})
	if len(keys) != 1 || keys[0] != hex.EncodeToString(sum[:]) {
		t.Fatalf("stored session keys %q, want the SHA-256 of the id", keys)
	}

	h.reopen()
	res := h.do(req("GET", "/api/session", "", cookie, ""))
	if res.StatusCode != 200 || res.json(t)["csrf"] != csrf {
		t.Fatalf("session after restart: %s %s", res.Status, res.body)
	}
	res = h.do(req("POST", "/api/reboot", "", cookie, csrf))
	if res.StatusCode != 200 || !received(h.reboots) {
		t.Fatalf("reboot after restart: %s %s", res.Status, res.body)
	}
}

func TestSessionExpiry(t *testing.T) {
	tests := []struct {
		name  string
		steps []time.Duration // time between requests
		alive bool            // after the last step
	}{
		{"used within idle time", []time.Duration{11 * time.Hour}, true},
		{"idle too long", []time.Duration{12*time.Hour + time.Minute}, false},
		{"kept alive for six days", []time.Duration{11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour}, true},
		{"past seven days although used", []time.Duration{11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			cookie, _ := h.setup()
			var res response
			for _, d := range tt.steps {
				h.clock.Advance(d)
				res = h.do(req("GET", "/api/session", "", cookie, ""))
			}
			if alive := res.StatusCode == 200; alive != tt.alive {
				t.Fatalf("got %s, want alive=%v", res.Status, tt.alive)
			}
			if !tt.alive {
				if n, _ := h.srv.sessions.Len(); n != 0 {
					t.Fatalf("expired session still stored (%d sessions)", n)
				}
			}
		})
	}
}

func TestLogout(t *testing.T) {
	tests := []struct {
		name     string
		logout   func(h *harness, c *http.Cookie, csrf string) response
		status   int
		location string
	}{
		{"api", func(h *harness, c *http.Cookie, csrf string) response {
			return h.do(req("POST", "/api/logout", "", c, csrf))
		}, 200, ""},
		{"form", func(h *harness, c *http.Cookie, csrf string) response {
			return h.do(req("POST", "/logout", "csrf="+csrf, c, ""))
		}, 303, "/login"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.setup()
			cookie, csrf := h.login()
			other, _ := h.login()
			res := tt.logout(h, cookie, csrf)
			if res.StatusCode != tt.status || res.Header.Get("Location") != tt.location {
				t.Fatalf("logout: got %s to %q", res.Status, res.Header.Get("Location"))
			}
			if c := res.sessionCookie(); c == nil || c.MaxAge >= 0 {
				t.Fatalf("logout does not clear the cookie: %v", c)
			}
			if res := h.do(req("GET", "/api/session", "", cookie, "")); res.StatusCode != http.StatusUnauthorized {
				t.Fatalf("session after logout: %s", res.Status)
			}
			if res := h.do(req("GET", "/api/session", "", other, "")); res.StatusCode != 200 {
				t.Fatalf("logout ended another session: %s", res.Status)
			}
		})
	}
}

func TestCSRF(t *testing.T) {
	h := newHarness(t)
	cookie, csrf := h.setup()
	other, otherCSRF := h.login()
	tests := []struct {
		name   string
		r      func() *http.Request
		status int
		reboot bool
	}{
		{"api without token", func() *http.Request { return req("POST", "/api/reboot", "", cookie, "") }, 403, false},
		{"api with wrong token", func() *http.Request { return req("POST", "/api/reboot", "", cookie, csrf+"x") }, 403, false},
		{"api with another session's token", func() *http.Request { return req("POST", "/api/reboot", "", cookie, otherCSRF) }, 403, false},
		{"api token in form field", func() *http.Request { return req("POST", "/api/reboot", "csrf="+csrf, cookie, "") }, 403, false},
		{"api cross-site origin", func() *http.Request {
			r := req("POST", "/api/reboot", "", cookie, csrf)
			r.Header.Set("Origin", "http://evil.example")
			return r
		}, 403, false},
		{"api cross-site fetch", func() *http.Request {
			r := req("POST", "/api/reboot", "", cookie, csrf)
			r.Header.Set("Sec-Fetch-Site", "cross-site")
			return r
		}, 403, false},
		{"form without token", func() *http.Request { return req("POST", "/reboot", "x=1", cookie, "") }, 403, false},
		{"form with wrong token", func() *http.Request { return req("POST", "/reboot", "csrf=nope", cookie, "") }, 403, false},
		{"api with token", func() *http.Request { return req("POST", "/api/reboot", "", cookie, csrf) }, 200, true},
		{"api same origin", func() *http.Request {
			r := req("POST", "/api/reboot", "", other, otherCSRF)
			r.Header.Set("Origin", "http://example.com")
			r.Header.Set("Sec-Fetch-Site", "same-origin")
			return r
		}, 200, true},
		{"form with token", func() *http.Request { return req("POST", "/reboot", "csrf="+url.QueryEscape(csrf), cookie, "") }, 200, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.do(tt.r())
			if res.StatusCode != tt.status {
				t.Fatalf("got %s %.200q, want %d", res.Status, res.body, tt.status)
			}
			if tt.reboot != (res.StatusCode == 200) {
				t.Fatal("test table is inconsistent")
			}
			if tt.reboot {
				if !received(h.reboots) {
					t.Fatal("Restart was not called")
				}
			} else if len(h.reboots) != 0 {
				t.Fatal("Restart was called")
			}
		})
	}

	t.Run("login and setup refuse cross-site requests", func(t *testing.T) {
		fresh := newHarness(t)
		for _, tc := range []struct {
			h    *harness
			path string
			body string
		}{
			{fresh, "/api/setup", jsonBody(map[string]string{"password": testPassword})},
			{fresh, "/setup", "password=" + url.QueryEscape(testPassword) + "&confirm=" + url.QueryEscape(testPassword)},
			{h, "/api/login", jsonBody(map[string]string{"password": testPassword})},
			{h, "/login", "password=" + url.QueryEscape(testPassword)},
		} {
			r := req("POST", tc.path, tc.body, nil, "")
			r.Header.Set("Origin", "http://evil.example")
			res := tc.h.do(r)
			if res.StatusCode != http.StatusForbidden || res.sessionCookie() != nil {
				t.Errorf("%s: got %s, want 403 without a cookie", tc.path, res.Status)
			}
		}
		if done, _ := fresh.srv.setupDone(); done {
			t.Error("cross-site setup went through")
		}
	})

	t.Run("power off", func(t *testing.T) {
		res := h.do(req("POST", "/api/poweroff", "", cookie, csrf))
		if res.StatusCode != 200 || !received(h.poweroff) {
			t.Fatalf("got %s %s", res.Status, res.body)
		}
	})
}

func TestRateLimit(t *testing.T) {
	h := newHarness(t)
	h.setup()
	login := func(addr, password string) response {
		r := req("POST", "/api/login", jsonBody(map[string]string{"password": password}), nil, "")
		r.RemoteAddr = addr
		r.Header.Set("X-Forwarded-For", "198.51.100."+addr[len(addr)-1:]) // must be ignored
		return h.do(r)
	}
	const client, neighbour = "192.0.2.10:5000", "192.0.2.11:5000"

	for i := 1; i <= freeAttempts; i++ {
		if res := login(client, "wrong password"); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong attempt %d: %s", i, res.Status)
		}
	}
	res := login(client, testPassword)
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") != "2" || res.sessionCookie() != nil {
		t.Fatalf("right password while limited: %s Retry-After=%q", res.Status, res.Header.Get("Retry-After"))
	}
	if !strings.Contains(res.json(t)["error"].(string), "Too many wrong passwords") {
		t.Fatalf("message: %s", res.body)
	}
	if res := login(neighbour, testPassword); res.StatusCode != 200 {
		t.Fatalf("another client is limited too: %s", res.Status)
	}
	if res := login("[2001:db8::1]:1", "wrong password"); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("IPv6 client: %s", res.Status)
	}

	// Each further wrong attempt doubles the wait.
	for _, want := range []string{"4", "8", "16"} {
		h.clock.Advance(time.Hour)
		if res := login(client, "wrong password"); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong attempt after waiting: %s", res.Status)
		}
		if got := login(client, testPassword).Header.Get("Retry-After"); got != want {
			t.Fatalf("Retry-After %q, want %q", got, want)
		}
	}

	// The form is limited by the same count.
	form := req("POST", "/login", "password="+url.QueryEscape(testPassword), nil, "")
	form.RemoteAddr = client
	if res := h.do(form); res.StatusCode != http.StatusTooManyRequests || !strings.Contains(res.body, "Too many wrong passwords") {
		t.Fatalf("form while limited: %s", res.Status)
	}

	h.clock.Advance(16 * time.Second)
	if res := login(client, testPassword); res.StatusCode != 200 {
		t.Fatalf("right password after the wait: %s %s", res.Status, res.body)
	}
	// Success reset the count: the free attempts are back.
	for i := 1; i <= freeAttempts; i++ {
		if res := login(client, "wrong password"); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong attempt %d after success: %s", i, res.Status)
		}
	}
}

func TestLimiter(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	t.Run("bounded", func(t *testing.T) {
		l := newLimiter()
		for i := range maxLimitedKeys * 3 {
			l.attempt("client-"+strconv.Itoa(i), t0.Add(time.Duration(i)*time.Millisecond))
		}
		if n := len(l.clients); n > maxLimitedKeys {
			t.Fatalf("%d clients tracked, limit %d", n, maxLimitedKeys)
		}
	})

	t.Run("forgets idle clients", func(t *testing.T) {
		l := newLimiter()
		for range freeAttempts {
			l.attempt("c", t0)
		}
		if _, ok := l.attempt("c", t0.Add(time.Second)); ok {
			t.Fatal("not limited")
		}
		if _, ok := l.attempt("c", t0.Add(forgetAfter+time.Minute)); !ok {
			t.Fatal("still limited a day later")
		}
		if n := l.count("c"); n != 1 {
			t.Fatalf("count after a day: %d, want 1", n)
		}
	})

	t.Run("delay is capped", func(t *testing.T) {
		l := newLimiter()
		now := t0
		for range 100 {
			if wait, ok := l.attempt("c", now); !ok {
				now = now.Add(wait)
			}
		}
		wait, _ := l.attempt("c", now)
		if wait > maxDelay {
			t.Fatalf("wait %v beyond %v", wait, maxDelay)
		}
	})
}

func TestLimitKey(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"192.0.2.1:1234", "192.0.2.1"},
		{"[::ffff:192.0.2.1]:1234", "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[fe80::1%eth0]:80", "fe80::/64"},
		{"pipe", "pipe"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.addr
		r.Header.Set("X-Forwarded-For", "203.0.113.9")
		if got := limitKey(r); got != tt.want {
			t.Errorf("limitKey(%q) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

// TestPasswordNotLogged runs setup, failed and successful logins and a logout with the
// log at debug level, and looks for the passwords in it.
func TestPasswordNotLogged(t *testing.T) {
	const secret = "Sentinel-Passw0rd-4f9c2e"
	const wrong = "Wrong-Sentinel-7d1a3b"
	h := newHarness(t)
	form := url.Values{"password": {secret}, "confirm": {secret}, "name": {"logbox"}}
	if res := h.do(req("POST", "/setup", form.Encode(), nil, "")); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("setup: %s", res.Status)
	}
	h.do(req("POST", "/api/login", jsonBody(map[string]string{"password": wrong}), nil, ""))
	h.do(req("POST", "/login", url.Values{"password": {wrong}}.Encode(), nil, ""))
	h.do(req("POST", "/api/login", `{"password":"`+wrong+`"`, nil, "")) // malformed
	res := h.do(req("POST", "/api/login", jsonBody(map[string]string{"password": secret}), nil, ""))
	if res.StatusCode != 200 {
		t.Fatalf("login: %s", res.Status)
	}
	c, csrf := res.sessionCookie(), res.json(t)["csrf"].(string)
	h.do(req("POST", "/login", url.Values{"password": {secret}}.Encode(), nil, ""))
	h.do(req("POST", "/api/logout", "", c, csrf))

	logs := h.logs.String()
	for _, want := range []string{"setup complete", "login failed", "logged in", "logged out", "level=DEBUG"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q; is the logger wired up?\n%s", want, logs)
		}
	}
	for _, pw := range []string{secret, wrong} {
		if strings.Contains(logs, pw) {
			t.Errorf("password %q appears in the log:\n%s", pw, logs)
		}
	}
}
