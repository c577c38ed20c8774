package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticRoot embed.FS

// pageNames lists the pages; each is templates/<name>.html rendered inside layout.html.
func pageNames() []string {
	return []string{"setup", "login", "status", "wait", "error",
		"wallet-setup", "wallet-words", "wallet-confirm", "wallet-restore", "wallet-protect",
		"wallet-sign", "wallet-review", "wallet-signed",
		"node", "node-backend", "node-receive", "node-send", "node-review", "node-sent", "node-history", "node-speedup",
		"update", "reset", "backups", "lightning"}
}

// templateFuncs are the functions the pages may call.
var templateFuncs = template.FuncMap{
	"btc":  formatBTC,
	"sats": formatSats,
	"inc":  func(i int) int { return i + 1 },
	"fixed": func(decimals int, v float64) string {
		return strconv.FormatFloat(v, 'f', decimals, 64)
	},
}

// parsePages parses every page together with the shared layout.
func parsePages() (map[string]*template.Template, error) {
	pages := make(map[string]*template.Template)
	for _, name := range pageNames() {
		t, err := template.New(name).Funcs(templateFuncs).ParseFS(templateFiles, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse page %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// staticFiles serves the embedded assets with a content hash as ETag, so browsers
// revalidate them cheaply and never keep a stale copy after an update.
type staticFiles struct {
	files map[string]staticFile // by name under static/
}

type staticFile struct {
	data        []byte
	etag        string
	contentType string
}

func newStaticFiles() (*staticFiles, error) {
	sf := &staticFiles{files: make(map[string]staticFile)}
	err := fs.WalkDir(staticRoot, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := staticRoot.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		sf.files[strings.TrimPrefix(p, "static/")] = staticFile{
			data:        data,
			etag:        `"` + hex.EncodeToString(sum[:8]) + `"`,
			contentType: contentType(p),
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load static files: %w", err)
	}
	return sf, nil
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".css":
		return "text/css; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	}
	return "application/octet-stream"
}

func (s *Server) serveStatic(w http.ResponseWriter, r *http.Request) {
	f, ok := s.static.files[strings.TrimPrefix(r.URL.Path, "/static/")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", f.etag)
	h.Set("Content-Type", f.contentType)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.data))
}
