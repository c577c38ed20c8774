package web

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/anya-edge/anya/hsm"
	"github.com/anya-edge/anya/hsm/sign"
	"github.com/anya-edge/anya/node/chain"
	"github.com/anya-edge/anya/node/wallet"
	"github.com/anya-edge/anya/node/wallet/coinselect"
)

// NodeWallet is the wallet service the node pages drive: the methods of *wallet.Wallet
// (package node/wallet) they use.
type NodeWallet interface {
	Sync() wallet.SyncStatus
	Peers() []chain.Peer
	Balance() (wallet.Balance, error)
	NewAddress() (wallet.Address, error)
	History() ([]wallet.HistoryEntry, error)
	EstimateFee(ctx context.Context, target uint32) (wallet.FeeEstimate, error)
	Propose(ctx context.Context, req wallet.SendRequest) (*wallet.Proposal, error)
	ProposeBump(ctx context.Context, txid chainhash.Hash, rate chain.FeeRate) (*wallet.Proposal, error)
	ProposeCPFP(ctx context.Context, txid chainhash.Hash, packageRate chain.FeeRate) (*wallet.Proposal, error)
	Send(ctx context.Context, proposalID string) (chainhash.Hash, error)
}

// Backend kinds of [BackendSettings].
const (
	BackendRPC = "rpc" // the owner's own full node over RPC
	BackendP2P = "p2p" // the built-in light client
)

// BackendSettings is the persisted choice of chain backend, as the pages edit it.
type BackendSettings struct {
	Kind string `json:"kind"` // BackendRPC or BackendP2P

	// The node's RPC: Host is host:port; Pass, or when empty the CookieFile ("user:password",
	// as bitcoind writes it); Cert the PEM certificate of btcd's RPC (empty: the system's
	// roots); NoTLS talks plain HTTP, as bitcoind does.
	Host       string `json:"host,omitempty"`
	User       string `json:"user,omitempty"`
	Pass       string `json:"pass,omitempty"`
	CookieFile string `json:"cookie_file,omitempty"`
	Cert       string `json:"cert,omitempty"`
	NoTLS      bool   `json:"no_tls,omitempty"`

	// Peers of the light client, host:port; none means the network's DNS seeds.
	Peers []string `json:"peers,omitempty"`
}

// Node is the Bitcoin side of the box as the pages see it: the wallet service, and the
// choice of chain backend that feeds it. appliance/services implements it on node/wallet and
// node/backend.
type Node interface {
	// Wallet returns the running wallet service, or nil while there is none: no wallet is
	// set up yet, or (err) it failed to open.
	Wallet() (NodeWallet, error)

	// LoadBackend returns the saved settings; ok is false when none were saved.
	LoadBackend() (s BackendSettings, ok bool, err error)
	// ValidateBackend checks the settings field by field: the keys are the JSON names of
	// BackendSettings ("host", "user", "pass", "cookie_file", "cert", "peers", "kind").
	ValidateBackend(s BackendSettings) map[string]string
	// OpenBackend creates the backend the settings describe; it need not contact the node.
	OpenBackend(s BackendSettings) (chain.Backend, error)
	// CheckBackend asks b whether it works; the error's message is a sentence for the
	// owner, and it matches the errors of package chain (ErrNodeDown, ErrAuth, ErrTLS,
	// ErrWrongNetwork, ErrSyncing) when one is the cause.
	CheckBackend(ctx context.Context, b chain.Backend) error
	// SaveBackend persists the settings.
	SaveBackend(s BackendSettings) error
	// UseBackend hands b to the wallet service, now or as soon as it runs, and closes the
	// backend it replaces.
	UseBackend(b chain.Backend)
}

// BackendFieldErrors is an error of [Node.OpenBackend] about fields of the settings, keyed
// like the errors of [Node.ValidateBackend].
type BackendFieldErrors map[string]string

func (e BackendFieldErrors) Error() string { return "backend settings: " + fieldErrors(e).String() }

// Bounds of the node pages.
const (
	// checkTimeout bounds the check of a backend the owner saves; checkTimeoutP2P that of
	// the light client.
	checkTimeout    = 20 * time.Second
	checkTimeoutP2P = 10 * time.Second
	// feeTimeout bounds the fee estimates of one page.
	feeTimeout = 3 * time.Second
	// freshSession is how long after login a session may send without typing the admin
	// password again.
	freshSession = 15 * time.Minute
	// stashLifetime is how long the pages remember what a session was doing: the address
	// it was handed, the settings it may save anyway.
	stashLifetime = 30 * time.Minute
	// maxStashed bounds each stash.
	maxStashed      = 256
	maxProposals    = 8 // proposals remembered per session
	maxBTC          = 21_000_000
	satsPerBTC      = 100_000_000
	maxFeeRateSatVB = float64(chain.MaxSaneFeeRate) / 1000
)

// feeTargets are the confirmation targets the send form offers, in blocks.
var feeTargets = []struct {
	Blocks uint32
	Label  string
}{
	{1, "Next block"},
	{3, "About 30 minutes"},
	{6, "About an hour"},
	{24, "About 4 hours"},
	{144, "About a day"},
}

const defaultTarget = 6

// nodeWallet returns the wallet service, or nil with a sentence saying why there is none.
func (s *Server) nodeWallet() (NodeWallet, string) {
	nw, err := s.node.Wallet()
	switch {
	case err != nil:
		s.log.Error("node: wallet service", "err", err)
		return nil, "The wallet service could not start: " + err.Error()
	case nw == nil:
		return nil, "No wallet is set up yet: set it up first, then the box follows its coins."
	}
	return nw, ""
}

// stash keeps a small value per session in memory for a while. It is safe for concurrent
// use.
type stash[T any] struct {
	mu sync.Mutex
	m  map[string]stashed[T]
}

type stashed[T any] struct {
	v       T
	expires time.Time
}

func newStash[T any]() *stash[T] { return &stash[T]{m: make(map[string]stashed[T])} }

// put keeps v for the session key until now+life, forgetting expired entries, and the
// entry closest to expiring when the stash is full.
func (st *stash[T]) put(key string, v T, now time.Time, life time.Duration) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for k, e := range st.m {
		if !now.Before(e.expires) {
			delete(st.m, k)
		}
	}
	if _, ok := st.m[key]; !ok && len(st.m) >= maxStashed {
		var oldest string
		var at time.Time
		for k, e := range st.m {
			if oldest == "" || e.expires.Before(at) {
				oldest, at = k, e.expires
			}
		}
		delete(st.m, oldest)
	}
	st.m[key] = stashed[T]{v: v, expires: now.Add(life)}
}

// get returns the session's value, if it has one that has not expired.
func (st *stash[T]) get(key string, now time.Time) (T, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	e, ok := st.m[key]
	if ok && !now.Before(e.expires) {
		delete(st.m, key)
		ok = false
	}
	if !ok {
		var zero T
		return zero, false
	}
	return e.v, true
}

// drop forgets the session's value.
func (st *stash[T]) drop(key string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.m, key)
}

// reviewed is a proposal shown to the owner in a session, with what produced it, so that
// the confirmation can go back to the right form.
type reviewed struct {
	p    *wallet.Proposal
	send sendInput // Kind "send"
	txid string    // Kind "bump" and "cpfp": the transaction sped up
	rate string    // ... and the rate typed, as typed
}

// proposals holds the proposals each session reviewed.
type proposals struct {
	mu sync.Mutex
	m  map[string][]reviewed // by session key, oldest first
}

func newProposals() *proposals { return &proposals{m: make(map[string][]reviewed)} }

// add remembers rv for the session, dropping expired proposals and, beyond maxProposals,
// the oldest.
func (ps *proposals) add(key string, rv reviewed, now time.Time) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.prune(now)
	list := append(ps.m[key], rv)
	if len(list) > maxProposals {
		list = list[len(list)-maxProposals:]
	}
	ps.m[key] = list
}

// get returns the session's proposal id; expired ones are still returned (the wallet says
// they expired), until they are pruned an hour later.
func (ps *proposals) get(key, id string) (reviewed, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, rv := range ps.m[key] {
		if rv.p.ID == id {
			return rv, true
		}
	}
	return reviewed{}, false
}

// remove forgets the session's proposal id (it was sent).
func (ps *proposals) remove(key, id string) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	list := ps.m[key]
	for i, rv := range list {
		if rv.p.ID == id {
			ps.m[key] = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(ps.m[key]) == 0 {
		delete(ps.m, key)
	}
}

func (ps *proposals) drop(key string) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	delete(ps.m, key)
}

func (ps *proposals) prune(now time.Time) {
	for k, list := range ps.m {
		kept := list[:0]
		for _, rv := range list {
			if now.Sub(rv.p.Expires) < time.Hour {
				kept = append(kept, rv)
			}
		}
		if len(kept) == 0 {
			delete(ps.m, k)
		} else {
			ps.m[k] = kept
		}
	}
}

// sendInput is the send form as typed (the API gives its numbers directly).
type sendInput struct {
	Address      string
	Amount       string
	Unit         string // "btc" or "sat"
	SendAll      bool
	FeeRate      string // sat/vB; "" means the suggestion for Target
	Target       string // blocks
	LockTime     string
	RelativeLock string
}

// request checks the input and turns it into a request for the wallet; errs says what is
// wrong, field by field.
func (in sendInput) request() (wallet.SendRequest, fieldErrors) {
	errs := fieldErrors{}
	req := wallet.SendRequest{SendAll: in.SendAll}
	addr := strings.TrimSpace(in.Address)
	switch {
	case addr == "":
		errs["address"] = "Enter the address to pay."
	case len(addr) > 200:
		errs["address"] = "This is too long to be a Bitcoin address."
	}
	var amount int64
	if !in.SendAll {
		var msg string
		amount, msg = parseAmount(in.Amount, in.Unit)
		if msg != "" {
			errs["amount"] = msg
		}
	}
	req.Payments = []wallet.Payment{{Address: addr, Amount: amount}}
	target, err := strconv.ParseUint(strings.TrimSpace(in.Target), 10, 32)
	if in.Target == "" {
		target = defaultTarget
	} else if err != nil || target < 1 || target > 1008 {
		errs["target"] = "Choose when the payment should confirm."
	}
	req.Target = uint32(target)
	if strings.TrimSpace(in.FeeRate) != "" {
		rate, msg := parseFeeRate(in.FeeRate)
		if msg != "" {
			errs["fee_rate"] = msg
		}
		req.FeeRate = rate
	}
	if v := strings.TrimSpace(in.LockTime); v != "" {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			errs["lock_time"] = "Enter a block height (below 500,000,000) or a Unix time (above), or leave it empty."
		}
		req.LockTime = uint32(n)
	}
	if v := strings.TrimSpace(in.RelativeLock); v != "" {
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil || n == 0 {
			errs["relative_lock"] = "Enter a number of blocks from 1 to 65535, or leave it empty."
		}
		req.RelativeLock = uint16(n)
	}
	return req, errs
}

// parseAmount reads an amount in unit ("btc" or "sat") as satoshis, without floating point.
// It returns a sentence for the owner when the amount is not valid.
func parseAmount(v, unit string) (int64, string) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, "Enter the amount to send, or tick “Send everything”."
	}
	switch unit {
	case "sat":
		digits := strings.NewReplacer(",", "", "_", "", " ", "", "\u00a0", "").Replace(v)
		n, err := strconv.ParseInt(digits, 10, 64)
		switch {
		case err != nil && strings.ContainsAny(digits, "."):
			return 0, "Satoshis are whole numbers: remove the decimals, or choose BTC."
		case err != nil || n < 0:
			return 0, "Enter the amount in satoshis as a whole number, such as 50000."
		case n == 0:
			return 0, "The amount must be more than zero."
		case n > maxBTC*satsPerBTC:
			return 0, "That is more bitcoin than will ever exist."
		}
		return n, ""
	case "btc", "":
		whole, frac, _ := strings.Cut(v, ".")
		if whole == "" {
			whole = "0"
		}
		if strings.Trim(whole, "0123456789") != "" || strings.Trim(frac, "0123456789") != "" {
			return 0, "Enter the amount in BTC with a dot for decimals, such as 0.0015."
		}
		if len(frac) > 8 {
			return 0, "BTC has at most 8 decimals (1 satoshi is 0.00000001 BTC)."
		}
		if len(whole) > 8 {
			return 0, "That is more bitcoin than will ever exist."
		}
		w, _ := strconv.ParseInt(whole, 10, 64)
		f, _ := strconv.ParseInt((frac + "00000000")[:8], 10, 64)
		n := w*satsPerBTC + f
		switch {
		case n == 0:
			return 0, "The amount must be more than zero."
		case n > maxBTC*satsPerBTC:
			return 0, "That is more bitcoin than will ever exist."
		}
		return n, ""
	}
	return 0, "Choose BTC or satoshis."
}

// parseFeeRate reads a fee rate in sat/vB (decimals allowed) as sat/kvB.
func parseFeeRate(v string) (chain.FeeRate, string) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	switch {
	case err != nil || math.IsNaN(f) || math.IsInf(f, 0):
		return 0, "Enter the fee rate in sat/vB, such as 2 or 1.5."
	case f <= 0:
		return 0, "The fee rate must be more than zero."
	case f > maxFeeRateSatVB:
		return 0, fmt.Sprintf("That fee rate is absurd: at most %s sat/vB.", formatSats(int64(maxFeeRateSatVB)))
	case math.Round(f*1000) < 1:
		return 0, "The fee rate has at most 3 decimals: at least 0.001 sat/vB."
	}
	return chain.FeeRate(math.Round(f * 1000)), ""
}

// formatRate formats a fee rate in sat/vB with as many decimals as it needs (at most 3).
func formatRate(r chain.FeeRate) string {
	s := strconv.FormatFloat(float64(r)/1000, 'f', 3, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

// nodeFailure is how an error of the wallet service is answered.
type nodeFailure struct {
	status     int
	msg        string
	field      string // the form field it concerns, "" for the whole form
	violations []sign.Violation
	expired    bool // the proposal is gone: review again
}

// classifyNodeError maps an error of the wallet service (or of the custody signing for it)
// to an answer. It returns false for an unexpected error.
func classifyNodeError(err error) (nodeFailure, bool) {
	var (
		funds  *coinselect.InsufficientFundsError
		reject *chain.RejectError
	)
	detail := func(sentinel error) string {
		// The wallet wraps its sentinels with details: "wallet: invalid address: ...".
		msg := err.Error()
		if i := strings.Index(msg, sentinel.Error()); i >= 0 {
			rest := strings.TrimPrefix(msg[i+len(sentinel.Error()):], ":")
			return strings.TrimSpace(rest)
		}
		return ""
	}
	withDetail := func(msg string, sentinel error) string {
		if d := detail(sentinel); d != "" {
			return strings.TrimSuffix(msg, ".") + " (" + d + ")."
		}
		return msg
	}
	switch {
	case errors.Is(err, wallet.ErrInvalidAddress):
		return nodeFailure{status: http.StatusBadRequest, field: "address",
			msg: withDetail("This is not a valid Bitcoin address: check it for typing mistakes.", wallet.ErrInvalidAddress)}, true
	case errors.Is(err, wallet.ErrWrongNetwork):
		return nodeFailure{status: http.StatusBadRequest, field: "address",
			msg: "This address belongs to another Bitcoin network than the box's wallet (for example a testnet address on mainnet)."}, true
	case errors.Is(err, wallet.ErrAmountBelowDust):
		return nodeFailure{status: http.StatusBadRequest, field: "amount",
			msg: withDetail("The amount is too small: the network does not relay outputs this small (dust).", wallet.ErrAmountBelowDust)}, true
	case errors.Is(err, wallet.ErrFeeRateTooLow):
		return nodeFailure{status: http.StatusBadRequest, field: "fee_rate",
			msg: withDetail("The fee rate is below what the network relays: raise it.", wallet.ErrFeeRateTooLow)}, true
	case errors.As(err, &funds):
		return nodeFailure{status: http.StatusUnprocessableEntity, field: "amount",
			msg: fmt.Sprintf("Not enough spendable bitcoin: this needs %s BTC with the fee, the wallet can spend %s BTC.",
				formatBTC(funds.Need), formatBTC(funds.Have))}, true
	case errors.Is(err, wallet.ErrInsufficientFunds):
		return nodeFailure{status: http.StatusUnprocessableEntity, field: "amount",
			msg: withDetail("Not enough spendable bitcoin for this and its fee.", wallet.ErrInsufficientFunds)}, true
	case errors.Is(err, coinselect.ErrInsufficientFunds):
		return nodeFailure{status: http.StatusUnprocessableEntity, field: "amount",
			msg: "Not enough spendable bitcoin for this amount and its fee."}, true
	case errors.Is(err, wallet.ErrCoinNotSpendable):
		return nodeFailure{status: http.StatusBadRequest,
			msg: withDetail("A coin chosen for this payment cannot be spent by the wallet.", wallet.ErrCoinNotSpendable)}, true
	case errors.Is(err, wallet.ErrNeedsSignatures):
		return nodeFailure{status: http.StatusConflict,
			msg: "The box signed its part, but this transaction needs the other cosigners' signatures before it can be sent."}, true
	case errors.Is(err, coinselect.ErrMaxWeight):
		return nodeFailure{status: http.StatusUnprocessableEntity, field: "amount",
			msg: "This payment would need more coins than fit in one transaction: send less."}, true
	case errors.Is(err, wallet.ErrLockTimeNotYet):
		return nodeFailure{status: http.StatusConflict, field: "lock_time",
			msg: "The network does not accept this transaction yet: its timelock has not passed. Send it once it has."}, true
	case errors.Is(err, wallet.ErrProposalExpired):
		return nodeFailure{status: http.StatusConflict, expired: true,
			msg: "This review expired (or the box restarted): nothing was sent. Check the details and review again."}, true
	case errors.Is(err, wallet.ErrNoBackend):
		return nodeFailure{status: http.StatusConflict,
			msg: "The box has no connection to the Bitcoin network yet: choose a chain backend first."}, true
	case errors.Is(err, wallet.ErrNotSynced):
		return nodeFailure{status: http.StatusConflict,
			msg: "The wallet is still catching up with the chain: wait until it is in sync, then try again."}, true
	case errors.Is(err, wallet.ErrTxNotFound):
		return nodeFailure{status: http.StatusNotFound, field: "txid", msg: "The wallet has no such transaction."}, true
	case errors.Is(err, wallet.ErrAlreadyConfirmed):
		return nodeFailure{status: http.StatusConflict, field: "txid",
			msg: "This transaction is already confirmed: there is nothing to speed up."}, true
	case errors.Is(err, wallet.ErrNotReplaceable):
		return nodeFailure{status: http.StatusConflict, field: "txid",
			msg: withDetail("This transaction cannot be replaced.", wallet.ErrNotReplaceable)}, true
	case errors.Is(err, hsm.ErrLocked):
		return nodeFailure{status: http.StatusConflict,
			msg: "The wallet is locked: unlock it on the status page, then confirm again. Nothing was sent."}, true
	case errors.Is(err, hsm.ErrNoWallet):
		return nodeFailure{status: http.StatusConflict, msg: "No wallet has been set up yet."}, true
	case errors.As(err, &reject):
		return nodeFailure{status: http.StatusUnprocessableEntity,
			msg: sentence("The network refused the transaction: " + reject.Reason)}, true
	case errors.Is(err, chain.ErrRejected):
		return nodeFailure{status: http.StatusUnprocessableEntity,
			msg: "The network refused the transaction; see the box's log for the reason."}, true
	case errors.Is(err, chain.ErrNodeDown), errors.Is(err, chain.ErrAuth), errors.Is(err, chain.ErrTLS),
		errors.Is(err, chain.ErrWrongNetwork), errors.Is(err, chain.ErrClosed):
		return nodeFailure{status: http.StatusServiceUnavailable, msg: backendSentence(err)}, true
	}
	var policy *sign.PolicyError
	if errors.As(err, &policy) {
		return nodeFailure{status: http.StatusUnprocessableEntity, violations: policy.Violations,
			msg: "The box's signing policy refuses this transaction. Nothing was sent."}, true
	}
	if f, ok := classifyWalletError(err); ok {
		return nodeFailure{status: f.status, msg: f.msg, violations: f.violations}, true
	}
	return nodeFailure{}, false
}

// backendSentence is a sentence for the owner about a backend that does not work. It uses
// the message of errors that are already sentences (those of CheckBackend) and explains the
// errors of package chain otherwise.
func backendSentence(err error) string {
	msg := err.Error()
	if !strings.Contains(msg, "chain: ") && !strings.Contains(msg, "wallet: ") && msg != "" {
		return sentence(msg)
	}
	switch {
	case errors.Is(err, chain.ErrAuth):
		return "The node refused the user name and password (or the cookie file could not be read)."
	case errors.Is(err, chain.ErrTLS):
		return "The TLS connection to the node failed: paste the node's current certificate (btcd's rpc.cert), or tick plain HTTP for a bitcoind."
	case errors.Is(err, chain.ErrWrongNetwork):
		return "The node is on another Bitcoin network than the box's wallet."
	case errors.Is(err, chain.ErrSyncing):
		return "The node is still syncing with the network."
	case errors.Is(err, chain.ErrNodeDown):
		return "The node cannot be reached: check that it runs and that the host and port are right."
	case errors.Is(err, chain.ErrUnsupported):
		return "The node lacks something the box needs (for example compact block filters)."
	case errors.Is(err, chain.ErrClosed):
		return "The connection to the node was closed while the box used it."
	}
	return sentence(msg)
}

// backendField is the form field a failed check of a backend of kind concerns.
func backendField(kind string, err error) string {
	switch {
	case kind == BackendP2P && errors.Is(err, chain.ErrNodeDown):
		return "peers"
	case kind == BackendP2P:
		return ""
	case errors.Is(err, chain.ErrAuth):
		return "pass"
	case errors.Is(err, chain.ErrTLS):
		return "cert"
	case errors.Is(err, chain.ErrNodeDown):
		return "host"
	}
	return ""
}

// parseTxID reads a transaction id in its usual (reversed hex) form.
func parseTxID(v string) (chainhash.Hash, bool) {
	v = strings.TrimSpace(v)
	if len(v) != 2*chainhash.HashSize {
		return chainhash.Hash{}, false
	}
	h, err := chainhash.NewHashFromStr(v)
	if err != nil {
		return chainhash.Hash{}, false
	}
	return *h, true
}

// feeSuggestions asks the wallet for the fee rate of each target at once, within
// feeTimeout. A target whose estimate failed is missing from the map.
func feeSuggestions(ctx context.Context, nw NodeWallet, targets []uint32) map[uint32]wallet.FeeEstimate {
	ctx, cancel := context.WithTimeout(ctx, feeTimeout)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	out := make(map[uint32]wallet.FeeEstimate, len(targets))
	for _, t := range targets {
		wg.Go(func() {
			est, err := nw.EstimateFee(ctx, t)
			if err != nil {
				return
			}
			mu.Lock()
			out[t] = est
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// sessionFresh reports whether the session logged in recently enough to send without the
// admin password.
func (s *Server) sessionFresh(sess *session) bool {
	return sess != nil && s.now().Sub(sess.Created) < freshSession
}
