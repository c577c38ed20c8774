package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	dev "github.com/anya-edge/anya/appliance/update/fleet"
)

// AdminClient calls a fleet server's admin API (what anyactl fleet uses).
type AdminClient struct {
	URL   string       // server base URL
	Token string       // admin bearer token
	HTTP  *http.Client // http.DefaultClient when nil
}

// APIError is an error answer of the admin API.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("fleet server: %s (%d %s)", e.Message, e.Status, e.Code)
}

func (c *AdminClient) do(ctx context.Context, method, path string, in, out any) error {
	u, err := url.JoinPath(c.URL, path)
	if err != nil {
		return fmt.Errorf("fleet admin: %w", err)
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("fleet admin: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("fleet admin: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("fleet admin: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("fleet admin: %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var er dev.ErrorResponse
		if json.Unmarshal(b, &er) != nil || er.Code == "" {
			return &APIError{Status: resp.StatusCode, Code: "http", Message: strings.TrimSpace(string(b))}
		}
		return &APIError{Status: resp.StatusCode, Code: er.Code, Message: er.Message}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("fleet admin: %s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// CreateToken creates an enrollment token.
func (c *AdminClient) CreateToken(ctx context.Context, req TokenRequest) (NewToken, error) {
	var t NewToken
	return t, c.do(ctx, http.MethodPost, "/api/v1/tokens", req, &t)
}

// Tokens lists the enrollment tokens.
func (c *AdminClient) Tokens(ctx context.Context) ([]Token, error) {
	var t []Token
	return t, c.do(ctx, http.MethodGet, "/api/v1/tokens", nil, &t)
}

// RevokeToken deletes a token.
func (c *AdminClient) RevokeToken(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/tokens/"+url.PathEscape(id), nil, nil)
}

// AddRelease adds a release to a channel.
func (c *AdminClient) AddRelease(ctx context.Context, req AddRelease) (Release, error) {
	var r Release
	return r, c.do(ctx, http.MethodPost, "/api/v1/releases", req, &r)
}

// Releases lists the releases.
func (c *AdminClient) Releases(ctx context.Context) ([]Release, error) {
	var r []Release
	return r, c.do(ctx, http.MethodGet, "/api/v1/releases", nil, &r)
}

// Release returns a release with its outcomes.
func (c *AdminClient) Release(ctx context.Context, id string) (ReleaseDetail, error) {
	var r ReleaseDetail
	return r, c.do(ctx, http.MethodGet, "/api/v1/releases/"+url.PathEscape(id), nil, &r)
}

// Pause pauses a rollout.
func (c *AdminClient) Pause(ctx context.Context, id, reason string) (Release, error) {
	var r Release
	return r, c.do(ctx, http.MethodPost, "/api/v1/releases/"+url.PathEscape(id)+"/pause", map[string]string{"reason": reason}, &r)
}

// Resume resumes a paused rollout.
func (c *AdminClient) Resume(ctx context.Context, id string) (Release, error) {
	var r Release
	return r, c.do(ctx, http.MethodPost, "/api/v1/releases/"+url.PathEscape(id)+"/resume", nil, &r)
}

// Widen widens a rollout to percent (nil: the next step).
func (c *AdminClient) Widen(ctx context.Context, id string, percent *float64) (Release, error) {
	var r Release
	return r, c.do(ctx, http.MethodPost, "/api/v1/releases/"+url.PathEscape(id)+"/widen", map[string]*float64{"percent": percent}, &r)
}

// Devices lists the devices.
func (c *AdminClient) Devices(ctx context.Context) ([]Device, error) {
	var d []Device
	return d, c.do(ctx, http.MethodGet, "/api/v1/devices", nil, &d)
}

// RemoveDevice removes a device.
func (c *AdminClient) RemoveDevice(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/devices/"+url.PathEscape(id), nil, nil)
}

// Summary returns the fleet summary.
func (c *AdminClient) Summary(ctx context.Context) (Summary, error) {
	var s Summary
	return s, c.do(ctx, http.MethodGet, "/api/v1/summary", nil, &s)
}
