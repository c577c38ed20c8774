package services

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/anya-edge/anya/appliance/web"
	"github.com/anya-edge/anya/hsm"
	"github.com/anya-edge/anya/hsm/keys"
	"github.com/anya-edge/anya/ml/feemodel"
	"github.com/anya-edge/anya/node/backend"
	"github.com/anya-edge/anya/node/chain"
	"github.com/anya-edge/anya/node/wallet"
	"github.com/anya-edge/anya/storage"
)

// walletPollInterval is how often the node service looks for a wallet set up on the page,
// until it has one.
const walletPollInterval = 2 * time.Second

// walletRetry is how long the node service waits before opening a wallet again that failed
// to open.
const walletRetry = time.Minute

// nodeService is the Bitcoin side of the box as the page drives it (web.Node): the wallet
// service of package node/wallet, opened on the custody's public descriptors as soon as the
// custody has accounts (locked or not: descriptors are public, and only sending needs the
// keys), fed by the chain backend the owner chose (package node/backend).
type nodeService struct {
	db      *storage.DB
	custody *hsm.Custody
	network keys.Network
	log     *slog.Logger
	// wcfg adjusts the wallet's configuration (tests shorten its intervals).
	wcfg func(*wallet.Config)
	// fees is the learned fee model (ml/feemodel), nil when it failed to load.
	fees *feemodel.Model

	mu       sync.Mutex
	ctx      context.Context // Run's; nil until run starts
	w        *wallet.Wallet
	openErr  error
	failedAt time.Time
	backend  chain.Backend // the backend in use, owned here
	done     chan struct{} // closed when the wallet's Run returned
}

var (
	_ web.Node       = (*nodeService)(nil)
	_ web.NodeWallet = (*wallet.Wallet)(nil)
)

func newNodeService(db *storage.DB, custody *hsm.Custody, network keys.Network, log *slog.Logger) *nodeService {
	n := &nodeService{db: db, custody: custody, network: network, log: log.With("svc", "node")}
	fees, err := feemodel.Load()
	if err != nil {
		n.log.Error("fee model unavailable; the backend's estimates are used", "err", err)
	} else {
		n.fees = fees
	}
	return n
}

// modelFee is the wallet's FeeModel: the learned model on the mempool of the backend in
// use, when that backend reports its mempool (chain.MempoolStatsReporter); otherwise it
// declines with chain.ErrFeeUnavailable and the wallet uses the backend's estimate.
func (n *nodeService) modelFee(ctx context.Context, target uint32) (chain.FeeRate, error) {
	n.mu.Lock()
	b := n.backend
	n.mu.Unlock()
	m, ok := b.(chain.MempoolStatsReporter)
	if n.fees == nil || !ok {
		return 0, fmt.Errorf("fee model: no mempool data: %w", chain.ErrFeeUnavailable)
	}
	st, err := m.MempoolStats(ctx)
	if err != nil {
		return 0, fmt.Errorf("fee model: read mempool: %w", err)
	}
	rate, err := n.fees.Estimate(feemodel.Snapshot{Txs: st.Txs, VSizeMB: float64(st.VSize) / 1e6, Median: st.Median,
		Mean: st.Mean, P10: st.P10, P90: st.P90, Max: st.Max, Std: st.Std}, target)
	if err != nil {
		return 0, fmt.Errorf("fee model: %w: %w", chain.ErrFeeUnavailable, err)
	}
	return chain.FeeRate(math.Round(rate * 1000)), nil // sat/vB → sat/kvB
}

// run opens the wallet when it can and follows the chain until ctx ends; then it stops
// the wallet and closes the backend.
func (n *nodeService) run(ctx context.Context) {
	n.mu.Lock()
	n.ctx = ctx
	n.mu.Unlock()
	t := time.NewTicker(walletPollInterval)
	defer t.Stop()
	for {
		if w, _ := n.ensure(); w != nil {
			break
		}
		select {
		case <-ctx.Done():
			n.stop()
			return
		case <-t.C:
		}
	}
	<-ctx.Done()
	n.stop()
}

// currentBackend returns the chain backend in use (nil: none): the Lightning node follows it.
func (n *nodeService) currentBackend() chain.Backend {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.backend
}

// stop closes the wallet and the backend, waiting for the wallet's Run to return.
func (n *nodeService) stop() {
	n.mu.Lock()
	w, b, done := n.w, n.backend, n.done
	n.w, n.backend, n.ctx = nil, nil, nil
	n.mu.Unlock()
	if w != nil {
		w.Close()
	}
	if done != nil {
		<-done
	}
	if b != nil {
		b.Close()
	}
}

// accountDescriptors returns the descriptors of the custody's single-key accounts, the
// wallet's receiving one (BIP84) first. The BIP48 cosigner key is only a key expression
// for a multisig coordinator, not a wallet of its own.
func accountDescriptors(accounts []hsm.Account) []string {
	var first, rest []string
	for _, a := range accounts {
		switch {
		case strings.HasPrefix(a.Purpose, "BIP48"), a.Descriptor == "":
		case strings.HasPrefix(a.Purpose, "BIP84"):
			first = append(first, a.Descriptor)
		default:
			rest = append(rest, a.Descriptor)
		}
	}
	return append(first, rest...)
}

// ensure opens the wallet service once the custody has accounts, hands it the saved
// backend and runs it. It returns the wallet, or nil and why not (nil error: no wallet set
// up yet).
func (n *nodeService) ensure() (*wallet.Wallet, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.w != nil {
		return n.w, nil
	}
	if n.ctx == nil || n.ctx.Err() != nil {
		return nil, nil
	}
	if n.openErr != nil && time.Since(n.failedAt) < walletRetry {
		return nil, n.openErr
	}
	st, err := n.custody.Status()
	if err != nil {
		return nil, fmt.Errorf("read custody status: %w", err)
	}
	descs := accountDescriptors(st.Accounts)
	if st.State == hsm.StateNone || len(descs) == 0 {
		return nil, nil
	}
	cfg := wallet.Config{DB: n.db, Network: n.network, Descriptors: descs, Signer: custodySigner{n.custody},
		BirthdayTime: st.Birthday, Log: n.log.With("svc", "wallet"), FeeModel: n.modelFee}
	if n.wcfg != nil {
		n.wcfg(&cfg)
	}
	w, err := wallet.Open(cfg)
	if err != nil {
		n.openErr, n.failedAt = fmt.Errorf("open wallet: %w", err), time.Now()
		n.log.Error("wallet service could not open", "err", err)
		return nil, n.openErr
	}
	n.openErr = nil
	if n.backend == nil {
		n.backend = n.openSaved()
	}
	if n.backend != nil {
		w.SetBackend(n.backend)
	}
	n.w = w
	n.done = make(chan struct{})
	go func(ctx context.Context, done chan struct{}) {
		defer close(done)
		if err := w.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			n.log.Error("wallet service stopped", "err", err)
		}
	}(n.ctx, n.done)
	n.log.Info("wallet service started", "accounts", len(descs), "network", n.network.String(),
		"backend", n.backend != nil)
	return w, nil
}

// openSaved opens the saved backend, if there is one; nil when none is saved or it cannot
// be opened (the page then shows that no backend is chosen, or lets the owner fix it).
func (n *nodeService) openSaved() chain.Backend {
	s, ok, err := backend.Load(n.db)
	if err != nil {
		n.log.Error("load backend settings", "err", err)
		return nil
	}
	if !ok {
		return nil
	}
	b, err := n.open(s)
	if err != nil {
		n.log.Error("open the saved chain backend", "settings", s, "err", err)
		return nil
	}
	return b
}

func (n *nodeService) open(s backend.Settings) (chain.Backend, error) {
	return backend.Open(s, backend.Options{Params: n.network.Params(), DB: n.db, Logger: n.log.With("svc", "backend")})
}

// Wallet implements web.Node.
func (n *nodeService) Wallet() (web.NodeWallet, error) {
	w, err := n.ensure()
	if w == nil {
		return nil, err
	}
	return w, nil
}

// LoadBackend implements web.Node.
func (n *nodeService) LoadBackend() (web.BackendSettings, bool, error) {
	s, ok, err := backend.Load(n.db)
	if err != nil || !ok {
		return web.BackendSettings{}, ok, err
	}
	return toWeb(s), true, nil
}

// ValidateBackend implements web.Node.
func (n *nodeService) ValidateBackend(s web.BackendSettings) map[string]string {
	var fe backend.FieldErrors
	if errors.As(fromWeb(s).Validate(), &fe) {
		return fe
	}
	return nil
}

// OpenBackend implements web.Node.
func (n *nodeService) OpenBackend(s web.BackendSettings) (chain.Backend, error) {
	b, err := n.open(fromWeb(s))
	var fe backend.FieldErrors
	if errors.As(err, &fe) {
		return nil, web.BackendFieldErrors(fe)
	}
	return b, err
}

// CheckBackend implements web.Node.
func (n *nodeService) CheckBackend(ctx context.Context, b chain.Backend) error {
	return backend.Check(ctx, b)
}

// SaveBackend implements web.Node.
func (n *nodeService) SaveBackend(s web.BackendSettings) error {
	return backend.Save(n.db, fromWeb(s))
}

// UseBackend implements web.Node: the wallet follows b from now on, and the backend it
// followed is closed.
func (n *nodeService) UseBackend(b chain.Backend) {
	n.mu.Lock()
	old := n.backend
	n.backend = b
	if n.w != nil {
		n.w.SetBackend(b)
	}
	n.mu.Unlock()
	if old != nil && old != b {
		old.Close()
	}
}

func toWeb(s backend.Settings) web.BackendSettings {
	return web.BackendSettings{Kind: string(s.Kind), Host: s.RPC.Host, User: s.RPC.User, Pass: s.RPC.Pass,
		CookieFile: s.RPC.CookieFile, Cert: s.RPC.Cert, NoTLS: s.RPC.NoTLS, Peers: s.Peers}
}

func fromWeb(s web.BackendSettings) backend.Settings {
	return backend.Settings{Kind: backend.Kind(s.Kind), Peers: s.Peers, RPC: backend.RPCSettings{Host: s.Host,
		User: s.User, Pass: s.Pass, CookieFile: s.CookieFile, Cert: s.Cert, NoTLS: s.NoTLS}}
}

// custodySigner signs the wallet's PSBTs with the custody, under its policy, without
// finalizing them: the wallet finalizes and extracts the transaction itself.
type custodySigner struct{ c *hsm.Custody }

func (s custodySigner) SignPSBT(ctx context.Context, psbt []byte) ([]byte, error) {
	res, err := s.c.SignPSBT(ctx, psbt, false)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := res.Packet.Serialize(&buf); err != nil {
		return nil, fmt.Errorf("encode signed PSBT: %w", err)
	}
	return buf.Bytes(), nil
}
