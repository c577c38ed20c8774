package chain

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/rpcclient"
)

// Config configures an RPC backend.
type Config struct {
	// Host is the node's RPC address, host:port (or unix:///path).
	Host string
	// User and Pass are the RPC credentials. When Pass is empty, CookieFile is read instead
	// (bitcoind's .cookie, "user:password"); it is re-read when the node rewrites it.
	User, Pass string
	CookieFile string
	// Cert is the PEM certificate (or chain) the node's TLS certificate must verify against:
	// btcd's rpc.cert. Empty means the system roots.
	Cert []byte
	// NoTLS talks plain HTTP, as bitcoind serves RPC. Only sensible on loopback or a
	// trusted link: the password crosses in the clear.
	NoTLS bool
	// Params is the network the node must be on. Required.
	Params *chaincfg.Params

	// Timeout bounds one attempt of one call (default 30 s).
	Timeout time.Duration
	// DialTimeout bounds the reachability probe made before each attempt and every
	// ProbeInterval while a call is pending (default 3 s).
	DialTimeout time.Duration
	// ProbeInterval is how often reachability is re-checked during a pending call, so that
	// a node that dies mid-call is reported within about two intervals (default 1 s).
	ProbeInterval time.Duration
	// Attempts is the number of tries of an idempotent call that fails with ErrNodeDown or
	// ErrSyncing (default 4; 1 disables retries). Broadcast is tried once.
	Attempts int
	// BackoffMin and BackoffMax bound the exponential back-off between tries
	// (defaults 250 ms and 5 s); each wait gets ±20 % jitter.
	BackoffMin, BackoffMax time.Duration
	// PoolSize is the number of rpcclient clients, that is of calls in flight at once
	// (default 2; see the package documentation).
	PoolSize int
	// PollInterval is how often Subscribe asks for the best block (default 2 s).
	PollInterval time.Duration
	// SyncSlack is how far (in blocks) the node's blocks may trail its headers or its
	// peers before it counts as syncing (default 6).
	SyncSlack int32
	// Logger receives debug and warning messages (default slog.Default()).
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Timeout, 30*time.Second)
	def(&c.DialTimeout, 3*time.Second)
	def(&c.ProbeInterval, time.Second)
	def(&c.BackoffMin, 250*time.Millisecond)
	def(&c.BackoffMax, 5*time.Second)
	def(&c.PollInterval, 2*time.Second)
	if c.Attempts <= 0 {
		c.Attempts = 4
	}
	if c.PoolSize <= 0 {
		c.PoolSize = 2
	}
	if c.SyncSlack <= 0 {
		c.SyncSlack = 6
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// RPC is a Backend that talks to a bitcoind or btcd through btcd's rpcclient in HTTP POST
// mode.
type RPC struct {
	cfg  Config
	log  *slog.Logger
	addr net.Addr // parsed Host, for the reachability probe

	pool      chan *rpcclient.Client
	mu        sync.Mutex // guards closed and the shutdown of pooled clients
	closed    bool
	closedCh  chan struct{}
	draining  sync.WaitGroup // retired clients still finishing a call
	verified  atomic.Bool    // network checked since the last loss of contact
	kind      atomic.Int32   // backendUnknown, backendBtcd, backendBitcoind
	feeMethod atomic.Int32   // feeUnknown, feeSmart, feeLegacy

	blockVSize int64 // mempool depth of one block for MempoolFeeRate (BlockVSize; tests lower it)
}

const (
	backendUnknown int32 = iota
	backendBtcd
	backendBitcoind
)

var _ Backend = (*RPC)(nil)

// NewRPC returns an RPC backend. It does not contact the node: a node that is down at start
// is reported by the first call (ErrNodeDown), and the backend works once it is up.
func NewRPC(cfg Config) (*RPC, error) {
	if cfg.Params == nil {
		return nil, errors.New("chain: rpc config: Params is required")
	}
	if cfg.Host == "" {
		return nil, errors.New("chain: rpc config: Host is required")
	}
	if cfg.Pass == "" && cfg.CookieFile == "" {
		return nil, errors.New("chain: rpc config: either Pass or CookieFile is required")
	}
	cfg.setDefaults()
	addr, err := rpcclient.ParseAddressString(cfg.Host)
	if err != nil {
		return nil, fmt.Errorf("chain: rpc config: host %q: %w", cfg.Host, err)
	}
	r := &RPC{
		cfg:        cfg,
		log:        cfg.Logger.With("component", "chain.rpc", "host", cfg.Host),
		addr:       addr,
		pool:       make(chan *rpcclient.Client, cfg.PoolSize),
		closedCh:   make(chan struct{}),
		blockVSize: BlockVSize,
	}
	for range cfg.PoolSize {
		c, err := r.newClient()
		if err != nil {
			r.Close()
			return nil, err
		}
		r.pool <- c
	}
	return r, nil
}

// newClient makes an rpcclient in HTTP POST mode. Each client gets its own ConnConfig,
// because rpcclient caches the cookie in it without locking.
func (r *RPC) newClient() (*rpcclient.Client, error) {
	c, err := rpcclient.New(&rpcclient.ConnConfig{
		Host:         r.cfg.Host,
		User:         r.cfg.User,
		Pass:         r.cfg.Pass,
		CookiePath:   r.cfg.CookieFile,
		Certificates: r.cfg.Cert,
		DisableTLS:   r.cfg.NoTLS,
		HTTPPostMode: true,
		Params:       r.cfg.Params.Name,
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("chain: rpc client for %s: %w", r.cfg.Host, err)
	}
	return c, nil
}

// Params implements Backend.
func (r *RPC) Params() *chaincfg.Params { return r.cfg.Params }

// Close implements Backend. Calls in flight finish with their result or ErrClosed.
func (r *RPC) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.closedCh)
	r.mu.Unlock()
	for {
		select {
		case c := <-r.pool:
			c.Shutdown()
		default:
			return nil
		}
	}
}

func (r *RPC) acquire(ctx context.Context, op string) (*rpcclient.Client, error) {
	select {
	case c := <-r.pool:
		return c, nil
	case <-r.closedCh:
		return nil, &Error{Op: op, Host: r.cfg.Host, Kind: ErrClosed}
	case <-ctx.Done():
		return nil, &Error{Op: op, Host: r.cfg.Host, Err: ctx.Err()}
	}
}

func (r *RPC) release(c *rpcclient.Client) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		c.Shutdown()
		return
	}
	r.pool <- c // never blocks: at most PoolSize clients exist outside the draining set
}

// retire replaces a client whose call was abandoned (timeout, dead node, cancelled ctx).
// rpcclient's HTTP mode cannot cancel a request and retries refused connections on its own
// for about 20 s, and its single sender goroutine would hold later calls behind the stuck
// one; so the old client is left to finish in the background and is shut down then, while a
// fresh client takes its place in the pool at once.
func (r *RPC) retire(c *rpcclient.Client, done <-chan error) {
	r.draining.Add(1)
	go func() {
		defer r.draining.Done()
		if done != nil {
			<-done
		}
		c.Shutdown()
		c.WaitForShutdown()
	}()
	nc, err := r.newClient()
	if err != nil { // cannot happen: the same configuration succeeded in NewRPC
		r.log.Error("cannot replace rpc client", "err", err)
		return
	}
	r.release(nc)
}

// retireIdle replaces the clients waiting in the pool.
func (r *RPC) retireIdle() {
	var idle []*rpcclient.Client
	for len(idle) < cap(r.pool) {
		select {
		case c := <-r.pool:
			idle = append(idle, c)
			continue
		default:
		}
		break
	}
	for _, c := range idle {
		r.retire(c, nil)
	}
}

// probe checks that something accepts connections at the node's address. It is cheap next
// to an RPC (rpcclient opens a new connection for every request anyway) and turns a dead node
// into ErrNodeDown in milliseconds instead of after rpcclient's own retries. With handshake
// set (on first contact and after a loss of contact) it also completes a TLS handshake with
// the configured certificate, because rpcclient would retry a certificate mismatch for 20 s
// like any transport error.
func (r *RPC) probe(ctx context.Context, handshake bool) error {
	d := net.Dialer{Timeout: r.cfg.DialTimeout}
	conn, err := d.DialContext(ctx, r.addr.Network(), r.addr.String())
	if err != nil {
		return err
	}
	defer conn.Close()
	if !handshake || r.cfg.NoTLS || r.addr.Network() != "tcp" {
		return nil
	}
	host, _, err := net.SplitHostPort(r.cfg.Host)
	if err != nil {
		return err
	}
	conf := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if len(r.cfg.Cert) > 0 {
		conf.RootCAs = x509.NewCertPool()
		conf.RootCAs.AppendCertsFromPEM(r.cfg.Cert)
	}
	tc := tls.Client(conn, conf)
	hctx, cancel := context.WithTimeout(ctx, r.cfg.DialTimeout)
	defer cancel()
	return tc.HandshakeContext(hctx)
}

// probeError is the error of a failed probe.
func (r *RPC) probeError(op string, err error) error {
	kind := ErrNodeDown
	if isTLSError(err) {
		kind = ErrTLS
	}
	return &Error{Op: op, Host: r.cfg.Host, Kind: kind, Err: err}
}

// call runs fn with a pooled client: once for a non-idempotent call, otherwise up to
// Attempts times with exponential back-off while the error is transient.
func (r *RPC) call(ctx context.Context, op string, idempotent bool, fn func(*rpcclient.Client) error) error {
	backoff := r.cfg.BackoffMin
	authRetried := false
	for attempt := 1; ; attempt++ {
		err := r.attempt(ctx, op, fn)
		if idempotent && !authRetried && r.cfg.CookieFile != "" && errors.Is(err, ErrAuth) {
			// The failed client was retired (see attempt); its replacement reads the cookie
			// file afresh, which a restarted bitcoind has rewritten.
			authRetried = true
			attempt--
			continue
		}
		if err == nil || !idempotent || !retryable(err) || attempt >= r.cfg.Attempts {
			return err
		}
		wait := jitter(backoff)
		r.log.Debug("rpc retry", "op", op, "attempt", attempt, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return &Error{Op: op, Host: r.cfg.Host, Err: errors.Join(ctx.Err(), err)}
		case <-r.closedCh:
			t.Stop()
			return &Error{Op: op, Host: r.cfg.Host, Kind: ErrClosed}
		case <-t.C:
		}
		backoff = min(2*backoff, r.cfg.BackoffMax)
	}
}

func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// attempt is one try of fn, bounded by ctx, Timeout and the reachability of the node.
func (r *RPC) attempt(ctx context.Context, op string, fn func(*rpcclient.Client) error) error {
	if err := ctx.Err(); err != nil {
		return &Error{Op: op, Host: r.cfg.Host, Err: err}
	}
	if err := r.probe(ctx, !r.verified.Load()); err != nil {
		if ctx.Err() != nil {
			return &Error{Op: op, Host: r.cfg.Host, Err: ctx.Err()}
		}
		r.verified.Store(false)
		return r.probeError(op, err)
	}
	c, err := r.acquire(ctx, op)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- fn(c) }()

	timeout := time.NewTimer(r.cfg.Timeout)
	defer timeout.Stop()
	tick := time.NewTicker(r.cfg.ProbeInterval)
	defer tick.Stop()
	failedProbes := 0
	for {
		select {
		case err := <-done:
			err = classify(op, r.cfg.Host, err)
			switch {
			case errors.Is(err, ErrAuth) && r.cfg.CookieFile != "":
				// rpcclient caches the cookie for 30 s in each client; a restarted bitcoind
				// has a new one. Replace this client and the idle ones.
				r.retire(c, nil)
				r.retireIdle()
			default:
				r.release(c)
			}
			if errors.Is(err, ErrNodeDown) {
				r.verified.Store(false)
			}
			return err
		case <-ctx.Done():
			r.retire(c, done)
			return &Error{Op: op, Host: r.cfg.Host, Err: ctx.Err()}
		case <-r.closedCh:
			r.retire(c, done)
			return &Error{Op: op, Host: r.cfg.Host, Kind: ErrClosed}
		case <-timeout.C:
			r.retire(c, done)
			r.verified.Store(false)
			return &Error{Op: op, Host: r.cfg.Host, Kind: ErrNodeDown,
				Err: fmt.Errorf("no answer within %v", r.cfg.Timeout)}
		case <-tick.C:
			perr := r.probe(ctx, false)
			if perr == nil {
				failedProbes = 0
				continue
			}
			if failedProbes++; failedProbes >= 2 {
				r.retire(c, done)
				r.verified.Store(false)
				return &Error{Op: op, Host: r.cfg.Host, Kind: ErrNodeDown,
					Err: fmt.Errorf("lost the node during the call: %w", perr)}
			}
		}
	}
}
