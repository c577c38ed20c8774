package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/anya-edge/anya/node/chain"
	"github.com/anya-edge/anya/node/p2p"
	"github.com/anya-edge/anya/storage"
)

// Options are what Open needs besides the settings.
type Options struct {
	// Params is the box's network. Required.
	Params *chaincfg.Params
	// DB keeps the light client's headers and filters (subsystem "p2p"). Without it the
	// light client keeps them in memory and cannot serve filters (FilterByHash fails with
	// chain.ErrUnsupported), so the wallet needs it.
	DB *storage.DB
	// Logger receives the backend's messages (default slog.Default()). The password never
	// reaches it.
	Logger *slog.Logger
}

// Open creates the backend the settings describe: a chain.RPC for KindRPC (which contacts
// the node only on its first call) or a running p2p light client for KindP2P (connecting
// to its peers, or to the network's DNS seeds when it has none, in the background). Close
// of the returned backend stops everything Open started. Invalid settings fail with a
// FieldErrors, as does a light client without peers on a network without DNS seeds.
func Open(s Settings, opts Options) (chain.Backend, error) {
	if opts.Params == nil {
		return nil, errors.New("backend: open: no chain params")
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("backend: open: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	switch s.Kind {
	case KindRPC:
		cfg := chain.Config{Host: s.RPC.Host, User: s.RPC.User, Pass: s.RPC.Pass, CookieFile: s.RPC.CookieFile,
			NoTLS: s.RPC.NoTLS, Params: opts.Params, Logger: log}
		if s.RPC.Cert != "" && !s.RPC.NoTLS {
			cfg.Cert = []byte(s.RPC.Cert)
		}
		b, err := chain.NewRPC(cfg)
		if err != nil {
			return nil, fmt.Errorf("backend: open rpc: %w", err)
		}
		log.Info("chain backend opened", "settings", s, "network", opts.Params.Name)
		return b, nil
	case KindP2P:
		if len(s.Peers) == 0 && len(opts.Params.DNSSeeds) == 0 {
			return nil, fmt.Errorf("backend: open p2p: %w: %w", errNoPeers, FieldErrors{
				"peers": fmt.Sprintf("%s has no DNS seeds: enter at least one peer.", opts.Params.Name)})
		}
		b, err := p2p.NewBackend(p2p.Config{Params: opts.Params, Peers: s.Peers, DB: opts.DB, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("backend: open p2p: %w", err)
		}
		log.Info("chain backend opened", "settings", s, "network", opts.Params.Name, "stored", opts.DB != nil)
		return b, nil
	}
	return nil, fmt.Errorf("backend: open: unknown kind %q", s.Kind) // unreachable after Validate
}

// DefaultCheckTimeout bounds Check when ctx has no earlier deadline.
const DefaultCheckTimeout = 15 * time.Second

// checkPoll is how often Check asks a light client again while it connects and syncs.
const checkPoll = 250 * time.Millisecond

// CheckError is a backend that is not ready, with a sentence for the owner. Error returns
// the sentence; errors.Is matches Kind and the chain errors of the cause.
type CheckError struct {
	// Kind is chain.ErrNodeDown, ErrAuth, ErrTLS, ErrWrongNetwork, ErrSyncing,
	// ErrClosed, context.DeadlineExceeded, or nil when the cause has no category.
	Kind error
	// Sentence says what is wrong in the owner's words.
	Sentence string
	// Err is the backend's error.
	Err error
}

func (e *CheckError) Error() string { return e.Sentence }

// Unwrap exposes the backend's error (and through it the chain categories).
func (e *CheckError) Unwrap() []error {
	errs := []error{e.Err}
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	return errs
}

// Check asks b whether it can serve the wallet now (Ready), within ctx's deadline or
// DefaultCheckTimeout, and explains a failure in a *CheckError. A light client is asked
// again every 250 ms until it is ready, because it starts without peers and catches up
// first; wrong credentials, TLS or network end the check at once, and a node reached over
// RPC is asked once (its Ready already retries a node that does not answer).
func Check(ctx context.Context, b chain.Backend) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCheckTimeout)
		defer cancel()
	}
	_, poll := b.(*p2p.Backend)
	var last error // the last error with a category
	for {
		err := b.Ready(ctx)
		if err == nil {
			return nil
		}
		if kindOf(err) != nil || last == nil {
			last = err
		}
		if !poll || !transient(err) || ctx.Err() != nil {
			break
		}
		t := time.NewTimer(checkPoll)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		if ctx.Err() != nil {
			break
		}
	}
	return explain(ctx, b, last)
}

var kinds = []error{chain.ErrAuth, chain.ErrTLS, chain.ErrWrongNetwork, chain.ErrSyncing, chain.ErrNodeDown, chain.ErrClosed}

// kindOf is err's chain category, checked in order of precedence.
func kindOf(err error) error {
	for _, k := range kinds {
		if errors.Is(err, k) {
			return k
		}
	}
	return nil
}

func transient(err error) bool {
	return errors.Is(err, chain.ErrNodeDown) || errors.Is(err, chain.ErrSyncing)
}

// explain turns a Ready error into a CheckError.
func explain(ctx context.Context, b chain.Backend, err error) *CheckError {
	_, light := b.(*p2p.Backend)
	net := b.Params().Name
	ce := &CheckError{Kind: kindOf(err), Err: err}
	switch ce.Kind {
	case chain.ErrAuth:
		ce.Sentence = "The node refused the credentials: check the RPC user name and password (or that the box can read the cookie file)."
	case chain.ErrTLS:
		ce.Sentence = "The secure connection to the node failed: the certificate does not match the node's, or the node does not use TLS (or uses it and TLS is off here)."
	case chain.ErrWrongNetwork:
		ce.Sentence = fmt.Sprintf("The node is on another Bitcoin network: this box is set up for %s.", net)
	case chain.ErrSyncing:
		ce.Sentence = syncingSentence(ctx, b, light)
	case chain.ErrNodeDown:
		if light {
			ce.Sentence = fmt.Sprintf("The light client has no connection to a %s peer: check the peer addresses and the box's internet connection.", net)
		} else {
			ce.Sentence = "The node does not answer at this address: check the host and port, and that the node is running and accepts RPC from the box."
		}
	case chain.ErrClosed:
		ce.Sentence = "The backend was closed."
	default:
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			ce.Kind = context.DeadlineExceeded
			ce.Sentence = "The node did not answer in time."
		} else {
			ce.Sentence = "The backend failed: " + err.Error()
		}
	}
	return ce
}

func syncingSentence(ctx context.Context, b chain.Backend, light bool) string {
	who := "The node"
	if light {
		who = "The light client"
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	st, err := b.Status(sctx)
	if err != nil {
		return who + " is still catching up with the network; the wallet will use it once it is done."
	}
	target := max(st.Headers, st.PeerHeight)
	if light && st.Peers == 0 {
		return who + " is still looking for peers."
	}
	return fmt.Sprintf("%s is still catching up with the network (block %d of %d); the wallet will use it once it is done.",
		who, max(st.Best.Height, 0), target)
}
