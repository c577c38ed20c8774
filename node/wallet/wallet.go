package wallet

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/anya-edge/anya/node/chain"
)

// Wallet is the wallet service: it follows a chain backend into its Store, hands out
// addresses, and proposes, signs and broadcasts transactions. It is safe for concurrent
// use. See the package documentation.
type Wallet struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	params *chaincfg.Params
	store  *Store
	keys   *keyring

	mu        sync.Mutex
	backend   chain.Backend
	gen       uint64        // incremented by SetBackend
	changed   chan struct{} // closed when the backend is replaced
	status    SyncStatus
	haveChain bool   // status.Chain holds an answer of the current backend
	evDown    string // the subscription reported the backend down (until it is up again)
	opDown    string // the wallet's own last call to the backend failed
	proposals map[string]*proposal
	birth     int32         // first height to scan, once resolved (Config.Birthday or BirthdayTime)
	margin    time.Duration // birthdayMargin; tests shorten it

	closed    chan struct{}
	closeOnce sync.Once
}

// Open checks cfg, opens the wallet's store in cfg.DB and derives its address windows.
// Attach a backend with SetBackend and call Run to follow the chain.
func Open(cfg Config) (*Wallet, error) {
	if cfg.DB == nil {
		return nil, errors.New("wallet: open: no database")
	}
	if !cfg.Network.Valid() {
		return nil, fmt.Errorf("wallet: open: invalid network %v", cfg.Network)
	}
	if cfg.GapLimit <= 0 {
		cfg.GapLimit = DefaultGapLimit
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = 2 * time.Second
	}
	if cfg.StatusInterval <= 0 {
		cfg.StatusInterval = 5 * time.Second
	}
	if cfg.ProposalTTL <= 0 {
		cfg.ProposalTTL = 10 * time.Minute
	}
	if cfg.Birthday < 0 {
		cfg.Birthday = 0
	}
	store, err := OpenStore(cfg.DB, nil)
	if err != nil {
		return nil, fmt.Errorf("wallet: open: %w", err)
	}
	kr, err := newKeyring(cfg.DB, cfg.Network, cfg.Descriptors, cfg.GapLimit)
	if err != nil {
		return nil, fmt.Errorf("wallet: open: %w", err)
	}
	w := &Wallet{
		cfg: cfg, log: cfg.Log.With("component", "wallet"), now: cfg.Now,
		params: cfg.Network.Params(), store: store, keys: kr, birth: cfg.Birthday, margin: birthdayMargin,
		changed: make(chan struct{}), proposals: map[string]*proposal{}, closed: make(chan struct{}),
	}
	store.AddScripts(kr.storeScripts())
	// Outputs recorded before a crash that lost the keyring's last save still count as used.
	outs, err := store.Outputs(false)
	if err != nil {
		return nil, fmt.Errorf("wallet: open: %w", err)
	}
	if err := w.markUsedScripts(outs); err != nil {
		return nil, fmt.Errorf("wallet: open: %w", err)
	}
	w.status = SyncStatus{State: SyncNoBackend, Since: w.now().UTC()}
	return w, nil
}

// markUsedScripts marks the scripts of stored outputs as used.
func (w *Wallet) markUsedScripts(outs []Output) error {
	if len(outs) == 0 {
		return nil
	}
	var scripts [][]byte
	for _, o := range outs {
		if pk, err := hex.DecodeString(o.PkScript); err == nil {
			scripts = append(scripts, pk)
		}
	}
	added, err := w.keys.markUsed(scripts)
	if err != nil {
		return err
	}
	w.store.AddScripts(added)
	return nil
}

// Close stops Run and forgets the proposals. The database and the backend belong to the
// caller and stay open.
func (w *Wallet) Close() error {
	w.closeOnce.Do(func() { close(w.closed) })
	w.mu.Lock()
	w.proposals = map[string]*proposal{}
	w.mu.Unlock()
	return nil
}

// NewAddress returns a receive address of the first descriptor: a fresh one at each call,
// until GapLimit addresses past the last used one were handed out; then the first unused
// one again, so that a payment to any address handed out is always found.
func (w *Wallet) NewAddress() (Address, error) {
	d, err := w.keys.nextReceive()
	if err != nil {
		return Address{}, fmt.Errorf("wallet: new address: %w", err)
	}
	return Address{
		Address: d.addr.Address,
		Path:    d.acct.fullPath(0, d.chain, d.index),
		Index:   d.index,
		URI:     BIP21(d.addr.Address, 0, ""),
	}, nil
}

// BIP21 returns the payment URI for address, with an amount (satoshis, omitted when 0)
// and a label (omitted when empty).
func BIP21(address string, amount int64, label string) string {
	var q []string
	if amount > 0 {
		q = append(q, "amount="+formatBTC(amount))
	}
	if label != "" {
		// RFC 3986 percent-encoding: QueryEscape writes a space as "+", which BIP21
		// readers may take literally.
		q = append(q, "label="+strings.ReplaceAll(url.QueryEscape(label), "+", "%20"))
	}
	uri := "bitcoin:" + address
	if len(q) > 0 {
		uri += "?" + strings.Join(q, "&")
	}
	return uri
}

// formatBTC writes satoshis as a decimal BTC amount without trailing zeros.
func formatBTC(sat int64) string {
	s := fmt.Sprintf("%d.%08d", sat/1e8, sat%1e8)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// Balance is the value of the wallet's unspent outputs.
func (w *Wallet) Balance() (Balance, error) { return w.store.Balance() }

// Coins returns the wallet's unspent outputs.
func (w *Wallet) Coins() ([]Output, error) { return w.store.Outputs(true) }

// Peers returns the backend's peers when it keeps its own (the light client).
func (w *Wallet) Peers() []chain.Peer {
	if pr, ok := w.currentBackend().(chain.PeerReporter); ok {
		return pr.Peers()
	}
	return []chain.Peer{}
}

func (w *Wallet) currentBackend() chain.Backend {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.backend
}
