package fleet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Options configures a Client. The zero value is ready to use.
type Options struct {
	// HTTP is the client for requests; nil means one with a 60 s timeout. The context of each
	// call bounds it too.
	HTTP *http.Client
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Rand is the source of nonces and signatures; crypto/rand when nil.
	Rand io.Reader
}

// Client talks to one fleet server as one device. It is safe for concurrent use.
type Client struct {
	server *url.URL
	key    Key
	id     string
	pkix   []byte
	http   *http.Client
	now    func() time.Time
	rand   io.Reader
	// skew is the server's clock minus ours (ms), learnt from a clock_skew refusal.
	skew atomic.Int64
}

// NewClient returns a client for the server at serverURL ("https://fleet.example/") that
// signs with key.
func NewClient(serverURL string, key Key, o Options) (*Client, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return nil, fmt.Errorf("fleet: server URL %q: %w", serverURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("fleet: server URL %q: not an http(s) URL", serverURL)
	}
	if u.Path == "" {
		u.Path = "/" // so that JoinPath gives an absolute path, the one that is signed
	}
	if key == nil {
		return nil, errors.New("fleet: no device key")
	}
	pkix, err := MarshalPublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	c := &Client{server: u, key: key, pkix: pkix, id: deviceIDOf(pkix), http: o.HTTP, now: o.Now, rand: o.Rand}
	if c.http == nil {
		c.http = &http.Client{Timeout: 60 * time.Second}
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.rand == nil {
		c.rand = rand.Reader
	}
	return c, nil
}

// DeviceID is the id of the client's key.
func (c *Client) DeviceID() string { return c.id }

// Enroll enrolls the device with a one-time enrollment token. If the key is enrolled already
// the error is ErrDuplicateKey (the device can check in as DeviceID).
func Enroll(ctx context.Context, serverURL, token string, key Key, hw Hardware) (Enrollment, error) {
	c, err := NewClient(serverURL, key, Options{})
	if err != nil {
		return Enrollment{}, err
	}
	return c.Enroll(ctx, token, hw, "")
}

// Enroll enrolls the device with an enrollment token; channel is the owner's choice ("" for
// the token's).
func (c *Client) Enroll(ctx context.Context, token string, hw Hardware, channel string) (Enrollment, error) {
	body, err := json.Marshal(EnrollRequest{Token: token, PublicKey: c.pkix, Attestation: c.key.Attestation(),
		Hardware: hw, Channel: channel})
	if err != nil {
		return Enrollment{}, fmt.Errorf("fleet: enroll: %w", err)
	}
	var e Enrollment
	if err := c.do(ctx, EnrollPath, body, &e); err != nil {
		return Enrollment{}, fmt.Errorf("fleet: enroll: %w", err)
	}
	if e.DeviceID != c.id {
		return Enrollment{}, fmt.Errorf("fleet: enroll: server named the device %q, its key says %q", e.DeviceID, c.id)
	}
	return e, nil
}

// CheckIn reports the box's state and returns the release the server offers (the zero Offer,
// with Poll set, when none).
func (c *Client) CheckIn(ctx context.Context, r Report) (Offer, error) {
	if len(r.LastError) > MaxErrorLen {
		r.LastError = truncate(r.LastError, MaxErrorLen)
	}
	if err := r.Validate(); err != nil {
		return Offer{}, fmt.Errorf("fleet: check in: %w", err)
	}
	body, err := json.Marshal(r)
	if err != nil {
		return Offer{}, fmt.Errorf("fleet: check in: %w", err)
	}
	var resp CheckInResponse
	if err := c.do(ctx, CheckInPath, body, &resp); err != nil {
		return Offer{}, fmt.Errorf("fleet: check in: %w", err)
	}
	var o Offer
	if resp.Offer != nil {
		o = *resp.Offer
		if o.Release == "" || o.BaseURL == "" {
			return Offer{}, errors.New("fleet: check in: offer without release or base URL")
		}
		base, err := c.server.Parse(o.BaseURL)
		if err != nil {
			return Offer{}, fmt.Errorf("fleet: check in: offer base URL: %w", err)
		}
		if base.Scheme != "http" && base.Scheme != "https" {
			return Offer{}, fmt.Errorf("fleet: check in: offer base URL %q is not http(s)", o.BaseURL)
		}
		o.BaseURL = base.String()
	}
	if resp.PollSeconds > 0 {
		o.Poll = time.Duration(resp.PollSeconds) * time.Second
	}
	return o, nil
}

// truncate cuts s to at most n bytes, dropping a UTF-8 sequence the cut split.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// do posts a signed request and decodes the answer into out. A clock_skew refusal adjusts the
// client's clock offset from the server's time and is retried once.
func (c *Client) do(ctx context.Context, path string, body []byte, out any) error {
	for attempt := 0; ; attempt++ {
		err := c.post(ctx, path, body, out)
		var e *skewError
		if errors.As(err, &e) && attempt == 0 && e.serverTime > 0 {
			c.skew.Store(e.serverTime - c.now().UnixMilli())
			continue
		}
		if errors.As(err, &e) {
			return e.err
		}
		return err
	}
}

// skewError is a clock_skew refusal with the server's time.
type skewError struct {
	err        *Error
	serverTime int64
}

func (e *skewError) Error() string { return e.err.Error() }

func (c *Client) post(ctx context.Context, path string, body []byte, out any) error {
	now := c.now().Add(time.Duration(c.skew.Load()) * time.Millisecond)
	u := c.server.JoinPath(path)
	a, err := SignRequest(c.key, c.rand, http.MethodPost, u.EscapedPath(), c.id, now, body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", a.Header())
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodySize+1))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if len(data) > MaxBodySize {
		return fmt.Errorf("answer larger than %d bytes", MaxBodySize)
	}
	if resp.StatusCode/100 != 2 {
		var er ErrorResponse
		if json.Unmarshal(data, &er) != nil || er.Code == "" {
			return &Error{Status: resp.StatusCode, Code: CodeInternal, Message: strings.TrimSpace(truncate(string(data), 200))}
		}
		e := &Error{Status: resp.StatusCode, Code: er.Code, Message: er.Message}
		if er.Code == CodeClockSkew {
			return &skewError{e, er.ServerTime}
		}
		return e
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}

// NextPoll returns the wait until the next check-in: base plus a uniformly random offset in
// [-jitter, +jitter], never less than one second. r is the random source (nil: math/rand/v2's).
// A jitter of 10–20 % of base spreads a fleet's check-ins after a common power cut.
func NextPoll(base, jitter time.Duration, r *mrand.Rand) time.Duration {
	d := base
	if jitter > 0 {
		var off int64
		if r != nil {
			off = r.Int64N(2*int64(jitter) + 1)
		} else {
			off = mrand.Int64N(2*int64(jitter) + 1)
		}
		d += time.Duration(off) - jitter
	}
	return max(d, time.Second)
}
