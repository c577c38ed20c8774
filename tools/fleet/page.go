package fleet

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"
)

//go:embed templates/*.html static/*
var assets embed.FS

// pageTemplates parses the embedded templates (a pure function of the embedded files).
func pageTemplates() *template.Template {
	return template.Must(template.New("").Funcs(template.FuncMap{
		"pct":    formatPercent,
		"mul100": func(f float64) float64 { return 100 * f },
		"healthClass": func(h string) string {
			switch h {
			case "ok":
				return "ok"
			case "failed":
				return "bad"
			}
			return "warn"
		},
		"ago": func(t time.Time) string { return time.Since(t).Round(time.Second).String() + " ago" },
	}).ParseFS(assets, "templates/*.html"))
}

const (
	sessionCookie = "anya_fleet"
	sessionTTL    = 12 * time.Hour
)

// The admin page's session is a cookie holding its expiry and an HMAC of it under a key
// derived from the admin token: nothing to store, and changing the token ends every session.
// Forms carry a CSRF token, an HMAC of the cookie, on top of SameSite=Strict.
func (s *Server) mac(parts ...[]byte) []byte {
	m := hmac.New(sha256.New, s.session)
	for _, p := range parts {
		m.Write(p)
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

func (s *Server) newSession() string {
	var exp [8]byte
	binary.BigEndian.PutUint64(exp[:], uint64(s.now().Add(sessionTTL).Unix()))
	return base64.RawURLEncoding.EncodeToString(append(exp[:], s.mac([]byte("session"), exp[:])...))
}

// session returns the valid session cookie of r, or "".
func (s *Server) sessionOf(r *http.Request) string {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(b) != 8+sha256.Size {
		return ""
	}
	if !hmac.Equal(b[8:], s.mac([]byte("session"), b[:8])) {
		return ""
	}
	if s.now().Unix() > int64(binary.BigEndian.Uint64(b[:8])) {
		return ""
	}
	return c.Value
}

func (s *Server) csrf(session string) string {
	return base64.RawURLEncoding.EncodeToString(s.mac([]byte("csrf"), []byte(session))[:18])
}

func (s *Server) setCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: value, Path: "/admin/", MaxAge: maxAge,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

type flash struct {
	Class, Text, Secret string
}

func (s *Server) pageRoutes(mux *http.ServeMux) {
	tmpl := pageTemplates()
	static, _ := fs.Sub(assets, "static")
	mux.Handle("GET /admin/static/", http.StripPrefix("/admin/static/", http.FileServerFS(static)))
	render := func(w http.ResponseWriter, name string, status int, data any) {
		var buf bytes.Buffer
		if err := tmpl.ExecuteTemplate(&buf, name, data); err != nil {
			s.log.Error("fleet: render page", "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(status)
		w.Write(buf.Bytes())
	}
	page := func(w http.ResponseWriter, r *http.Request, session string, f *flash) {
		ctx := r.Context()
		sum, err := s.Summarize(ctx)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		devices, err := s.Devices(ctx)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		tokens, err := s.Tokens(ctx)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		status := http.StatusOK
		if f != nil && f.Class == "bad" {
			status = http.StatusBadRequest
		}
		render(w, "page", status, map[string]any{"Summary": sum, "Devices": devices, "Tokens": tokens,
			"CSRF": s.csrf(session), "Flash": f, "Now": s.now()})
	}
	mux.HandleFunc("GET /admin/{$}", func(w http.ResponseWriter, r *http.Request) {
		sess := s.sessionOf(r)
		if sess == "" {
			render(w, "login", http.StatusOK, map[string]any{})
			return
		}
		page(w, r, sess, nil)
	})
	mux.HandleFunc("POST /admin/login", func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
		sum := sha256.Sum256([]byte(r.PostFormValue("token")))
		if !hmac.Equal(sum[:], s.adminSum[:]) {
			s.log.Warn("fleet: admin page: wrong token", "remote", r.RemoteAddr)
			render(w, "login", http.StatusUnauthorized, map[string]any{"Error": "Wrong token."})
			return
		}
		s.setCookie(w, r, s.newSession(), int(sessionTTL/time.Second))
		http.Redirect(w, r, "/admin/", http.StatusSeeOther)
	})
	mux.HandleFunc("POST /admin/logout", func(w http.ResponseWriter, r *http.Request) {
		s.setCookie(w, r, "", -1)
		http.Redirect(w, r, "/admin/", http.StatusSeeOther)
	})
	mux.HandleFunc("POST /admin/action", func(w http.ResponseWriter, r *http.Request) {
		sess := s.sessionOf(r)
		if sess == "" {
			http.Redirect(w, r, "/admin/", http.StatusSeeOther)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		if !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(s.csrf(sess))) {
			http.Error(w, "stale form: reload the page", http.StatusForbidden)
			return
		}
		f := s.pageAction(r)
		if f.Secret == "" && f.Class != "bad" {
			http.Redirect(w, r, "/admin/", http.StatusSeeOther)
			return
		}
		page(w, r, sess, &f)
	})
}

// pageAction performs a form's operation.
func (s *Server) pageAction(r *http.Request) flash {
	ctx := r.Context()
	id := r.PostFormValue("id")
	var err error
	switch op := r.PostFormValue("op"); op {
	case "pause":
		_, err = s.Pause(ctx, id, "")
	case "resume":
		_, err = s.Resume(ctx, id)
	case "widen":
		var p *float64
		if v := strings.TrimSpace(r.PostFormValue("percent")); v != "" {
			f, perr := strconv.ParseFloat(v, 64)
			if perr != nil {
				return flash{Class: "bad", Text: "percent: " + perr.Error()}
			}
			p = &f
		}
		_, err = s.Widen(ctx, id, p)
	case "revoke":
		err = s.RevokeToken(ctx, id)
	case "token":
		req := TokenRequest{Label: r.PostFormValue("label"), Channel: r.PostFormValue("channel"),
			Uses: atoi(r.PostFormValue("uses"), 1)}
		if v := r.PostFormValue("ttl"); v != "" {
			if err := req.TTL.UnmarshalText([]byte(v)); err != nil {
				return flash{Class: "bad", Text: "valid for: " + err.Error()}
			}
		}
		t, err := s.CreateToken(ctx, req)
		if err != nil {
			return flash{Class: "bad", Text: err.Error()}
		}
		return flash{Class: "ok", Text: fmt.Sprintf("Token %s for channel %s, %d use(s), valid until %s:", t.Token.ID,
			t.Token.Channel, t.Token.Uses, t.Token.Expires.Format(time.RFC3339)), Secret: t.Secret}
	default:
		return flash{Class: "bad", Text: "unknown operation " + strconv.Quote(op)}
	}
	if err != nil {
		return flash{Class: "bad", Text: err.Error()}
	}
	return flash{Class: "ok"}
}

// atoi parses a non-negative decimal or returns def.
func atoi(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return def
	}
	return n
}
