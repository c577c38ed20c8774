package web

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/anya-edge/anya/hsm/sign"
)

// wildcard matches the wildcards of a net/http pattern: {name}, {name...} and {$}.
var wildcard = regexp.MustCompile(`\{[^}]*\}`)

// concretePath turns a route pattern into a path the pattern matches.
func concretePath(pattern string) string {
	return wildcard.ReplaceAllStringFunc(pattern, func(w string) string {
		if w == "{$}" {
			return ""
		}
		return "x"
	})
}

func routeName(rt Route) string { return rt.Method + " " + rt.Pattern }

// TestRoutesListed checks that Routes is exactly what the mux serves: every listed route
// reaches its own pattern.
func TestRoutesListed(t *testing.T) {
	h := newHarness(t)
	seen := map[string]bool{}
	for _, rt := range h.srv.Routes() {
		name := routeName(rt)
		if seen[name] {
			t.Errorf("route %s listed twice", name)
		}
		seen[name] = true
		_, pattern := h.srv.mux.Handler(req(rt.Method, concretePath(rt.Pattern), "", nil, ""))
		if pattern != name {
			t.Errorf("%s %s is served by pattern %q, want %q", rt.Method, concretePath(rt.Pattern), pattern, name)
		}
	}
	if len(seen) < 15 {
		t.Errorf("only %d routes listed", len(seen))
	}
}

// TestRoutesRefuseWithoutSession walks every route before and after setup without a
// session. A route added without a deliberate choice of its access ends up guarded, and
// this test fails if the set of public routes changes.
func TestRoutesRefuseWithoutSession(t *testing.T) {
	h := newHarness(t)
	routes := h.srv.Routes()

	t.Run("before setup", func(t *testing.T) {
		for _, rt := range routes {
			if rt.PreSetup {
				continue
			}
			t.Run(routeName(rt), func(t *testing.T) {
				res := h.do(req(rt.Method, concretePath(rt.Pattern), "", nil, ""))
				if isAPI(rt.Pattern) {
					if res.StatusCode != http.StatusConflict || res.json(t)["error"] != "setup required" {
						t.Fatalf("got %s %s, want 409 setup required", res.Status, res.body)
					}
					return
				}
				if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/setup" {
					t.Fatalf("got %s to %q, want 303 to /setup", res.Status, res.Header.Get("Location"))
				}
			})
		}
	})

	h.setup()

	t.Run("after setup", func(t *testing.T) {
		for _, rt := range routes {
			if rt.Public {
				continue
			}
			t.Run(routeName(rt), func(t *testing.T) {
				res := h.do(req(rt.Method, concretePath(rt.Pattern), "", nil, ""))
				if isAPI(rt.Pattern) {
					if res.StatusCode != http.StatusUnauthorized || res.json(t)["error"] != "login required" {
						t.Fatalf("got %s %s, want 401 login required", res.Status, res.body)
					}
					return
				}
				if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login" {
					t.Fatalf("got %s to %q, want 303 to /login", res.Status, res.Header.Get("Location"))
				}
			})
		}
	})

	t.Run("public set", func(t *testing.T) {
		var public, preSetup []string
		for _, rt := range routes {
			if rt.Public {
				public = append(public, routeName(rt))
			}
			if rt.PreSetup {
				preSetup = append(preSetup, routeName(rt))
			}
		}
		slices.Sort(public)
		slices.Sort(preSetup)
		wantPublic := []string{
			"GET /healthz",
			"GET /login",
			"GET /static/",
			"POST /api/login",
			"POST /login",
		}
		wantPreSetup := []string{
			"GET /healthz",
			"GET /setup",
			"GET /static/",
			"POST /api/setup",
			"POST /setup",
		}
		if !slices.Equal(public, wantPublic) {
			t.Errorf("public routes:\n got %s\nwant %s", strings.Join(public, ", "), strings.Join(wantPublic, ", "))
		}
		if !slices.Equal(preSetup, wantPreSetup) {
			t.Errorf("pre-setup routes:\n got %s\nwant %s", strings.Join(preSetup, ", "), strings.Join(wantPreSetup, ", "))
		}
	})
}

// TestPublicRoutes checks what the public routes serve without a session.
func TestPublicRoutes(t *testing.T) {
	h := newHarness(t)
	h.setup()
	tests := []struct {
		path     string
		status   int
		contains string
	}{
		{"/healthz", 200, "ok"},
		{"/login", 200, "Log in"},
		{"/static/style.css", 200, "--accent"},
		{"/static/app.js", 200, "use strict"},
		{"/static/favicon.svg", 200, "<svg"},
		{"/static/", 404, ""},
		{"/static/missing.css", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			res := h.do(req("GET", tt.path, "", nil, ""))
			if res.StatusCode != tt.status || !strings.Contains(res.body, tt.contains) {
				t.Fatalf("got %s %.80q, want %d containing %q", res.Status, res.body, tt.status, tt.contains)
			}
		})
	}
}

func TestHealthz(t *testing.T) {
	h := newHarness(t)
	res := h.do(req("GET", "/healthz", "", nil, ""))
	if res.StatusCode != 200 || res.body != "ok" {
		t.Fatalf("got %s %q", res.Status, res.body)
	}
	first := res.Header.Get("X-Anya-Instance")
	if first == "" {
		t.Fatal("no X-Anya-Instance header")
	}
	h.reopen()
	if again := h.do(req("GET", "/healthz", "", nil, "")).Header.Get("X-Anya-Instance"); again == first {
		t.Fatal("X-Anya-Instance did not change with a new Server")
	}
}

func TestSecurityHeaders(t *testing.T) {
	h := newHarness(t)
	cookie, _ := h.setup()
	tests := []struct {
		path  string
		cache string
	}{
		{"/", "no-store"},
		{"/login", "no-store"},
		{"/api/status", "no-store"},
		{"/api/session", "no-store"},
		{"/healthz", "no-store"},
		{"/static/app.js", "no-cache"},
		{"/nowhere", "no-store"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			res := h.do(req("GET", tt.path, "", cookie, ""))
			want := map[string]string{
				"X-Content-Type-Options": "nosniff",
				"X-Frame-Options":        "DENY",
				"Referrer-Policy":        "same-origin",
				"Cache-Control":          tt.cache,
			}
			for k, v := range want {
				if got := res.Header.Get(k); got != v {
					t.Errorf("%s: got %q, want %q", k, got, v)
				}
			}
			csp := res.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-inline") {
				t.Errorf("Content-Security-Policy: %q", csp)
			}
		})
	}

	t.Run("etag", func(t *testing.T) {
		res := h.do(req("GET", "/static/style.css", "", nil, ""))
		etag := res.Header.Get("ETag")
		if etag == "" {
			t.Fatal("no ETag on a static file")
		}
		r := req("GET", "/static/style.css", "", nil, "")
		r.Header.Set("If-None-Match", etag)
		if res := h.do(r); res.StatusCode != http.StatusNotModified {
			t.Fatalf("revalidation: got %s, want 304", res.Status)
		}
	})
}

// inlineCode finds what the Content-Security-Policy would block in a page: inline
// scripts, event handler attributes, style attributes and style elements.
var inlineCode = regexp.MustCompile(`(?i)<script(\s[^>]*)?>\s*[^<\s]|<script>|\son[a-z]+\s*=|\sstyle\s*=|<style`)

func TestPagesHaveNoInlineCode(t *testing.T) {
	h := newHarness(t)
	pages := map[string]string{}
	pages["setup"] = h.do(req("GET", "/setup", "", nil, "")).body
	pages["setup with errors"] = h.do(req("POST", "/setup", "password=short&confirm=x&name=Bad_Name", nil, "")).body
	cookie, csrf := h.setup()
	pages["status"] = h.do(req("GET", "/", "", cookie, "")).body
	pages["login"] = h.do(req("GET", "/login", "", nil, "")).body
	pages["reboot"] = h.do(req("POST", "/reboot", "csrf="+csrf, cookie, "")).body
	pages["poweroff"] = h.do(req("POST", "/poweroff", "csrf="+csrf, cookie, "")).body
	for name, body := range pages {
		if !strings.Contains(body, "Anya Edge") {
			t.Errorf("%s: page does not look rendered: %.200q", name, body)
		}
		if m := inlineCode.FindString(body); m != "" {
			t.Errorf("%s: inline code %q would be blocked by the Content-Security-Policy", name, m)
		}
		if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
			t.Errorf("%s: page refers to an external resource", name)
		}
	}
}

// TestRoutesNeedCSRF sends every state-changing route that needs a session a request with the
// session's cookie but without its CSRF token: each must refuse it before doing anything.
func TestRoutesNeedCSRF(t *testing.T) {
	h := newWalletHarness(t, sign.Policy{})
	cookie, _ := h.setup()
	n := 0
	for _, rt := range h.srv.Routes() {
		if rt.Public || rt.PreSetup || safeMethod(rt.Method) {
			continue
		}
		n++
		t.Run(routeName(rt), func(t *testing.T) {
			res := h.do(req(rt.Method, concretePath(rt.Pattern), "x=1", cookie, ""))
			if res.StatusCode != http.StatusForbidden || !strings.Contains(res.body, "CSRF token") {
				t.Fatalf("got %s %.200q, want 403", res.Status, res.body)
			}
		})
	}
	if n < 20 {
		t.Errorf("only %d state-changing routes", n)
	}
	if len(h.reboots) != 0 || len(h.poweroff) != 0 {
		t.Error("a request without a token rebooted or powered off the box")
	}
}
