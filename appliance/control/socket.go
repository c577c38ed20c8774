package control

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// DefaultSocket is where PID 1 listens for its services.
const DefaultSocket = "/run/anya/control.sock"

// maxLog bounds one log request.
const maxLog = 5000

// Handler serves sys on the control socket.
func Handler(sys System) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		st, err := sys.Status(r.Context())
		reply(w, st, err)
	})
	mux.HandleFunc("GET /log", func(w http.ResponseWriter, r *http.Request) {
		after, err := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
		if err != nil && r.URL.Query().Get("after") != "" {
			http.Error(w, "bad after: "+err.Error(), http.StatusBadRequest)
			return
		}
		max, err := strconv.Atoi(r.URL.Query().Get("max"))
		if err != nil || max <= 0 || max > maxLog {
			max = maxLog
		}
		entries, err := sys.Log(r.Context(), after, max)
		reply(w, entries, err)
	})
	mux.HandleFunc("POST /reboot", func(w http.ResponseWriter, r *http.Request) {
		reply(w, struct{}{}, sys.Reboot(r.Context()))
	})
	mux.HandleFunc("POST /poweroff", func(w http.ResponseWriter, r *http.Request) {
		reply(w, struct{}{}, sys.PowerOff(r.Context()))
	})
	return mux
}

func reply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	json.NewEncoder(w).Encode(v)
}

// Client is a [System] reached through PID 1's control socket.
type Client struct {
	hc *http.Client
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConns: 2,
	}
	return &Client{hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

func (c *Client) call(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://pid1"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("control %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("control %s %s: read reply: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("control %s %s: %s", method, path, e.Error)
		}
		return fmt.Errorf("control %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("control %s %s: decode reply: %w", method, path, err)
	}
	return nil
}

// Status implements [System].
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.call(ctx, http.MethodGet, "/status", &st)
	return st, err
}

// Log implements [System].
func (c *Client) Log(ctx context.Context, after uint64, max int) ([]LogEntry, error) {
	var entries []LogEntry
	err := c.call(ctx, http.MethodGet, fmt.Sprintf("/log?after=%d&max=%d", after, max), &entries)
	return entries, err
}

// Reboot implements [System].
func (c *Client) Reboot(ctx context.Context) error {
	return c.call(ctx, http.MethodPost, "/reboot", &struct{}{})
}

// PowerOff implements [System].
func (c *Client) PowerOff(ctx context.Context) error {
	return c.call(ctx, http.MethodPost, "/poweroff", &struct{}{})
}
