package web

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/wire"

	"github.com/anya-edge/anya/hsm"
	"github.com/anya-edge/anya/hsm/keys"
	"github.com/anya-edge/anya/hsm/seal"
	"github.com/anya-edge/anya/hsm/sign"
	"github.com/anya-edge/anya/node/backend"
	"github.com/anya-edge/anya/node/chain"
	"github.com/anya-edge/anya/node/regtest"
	"github.com/anya-edge/anya/node/wallet"
	"github.com/anya-edge/anya/storage"
)

// The node pages are tested against the real Bitcoin side of the box: the wallet service
// of package node/wallet on the harness's database, the custody of package hsm signing for
// it, and the chain backends of package node/backend (settings, Validate, Open, Check),
// talking to a real btcd of package node/regtest when a test needs a chain. Nothing of
// ours is imitated: every state a page shows is obtained by doing what leads to it.

// nodeConfig is what the harness's Node is made with at every open.
type nodeConfig struct {
	network keys.Network
	now     func() time.Time // the wallet's clock: the harness's, so that proposals can expire
	// feeModel stands for services' learned fee model (ml/feemodel) as the wallet's FeeModel.
	feeModel func(ctx context.Context, target uint32) (chain.FeeRate, error)
}

// testNode is the Node of the tests: appliance/services' nodeService (which this package
// cannot import, since services imports web) reproduced line for line as wiring, without
// logic of its own: the wallet service opened on the custody's public descriptors as soon
// as the custody has accounts, fed by the backend the owner chose, and backend.Validate,
// Open, Check, Load and Save. It also keeps every backend it opened, for the tests to check
// that the pages close the ones they do not use.
type testNode struct {
	db      *storage.DB
	custody *hsm.Custody
	cfg     nodeConfig
	log     *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	w        *wallet.Wallet
	openErr  error
	failedAt time.Time
	backend  chain.Backend
	done     chan struct{}
	opened   []chain.Backend
}

var (
	_ Node       = (*testNode)(nil)
	_ NodeWallet = (*wallet.Wallet)(nil)
)

func newTestNode(db *storage.DB, custody *hsm.Custody, log *slog.Logger, cfg nodeConfig) *testNode {
	ctx, cancel := context.WithCancel(context.Background())
	return &testNode{db: db, custody: custody, cfg: cfg, log: log.With("svc", "node"), ctx: ctx, cancel: cancel}
}

// stop stops the wallet service and closes every backend opened.
func (n *testNode) stop() {
	n.cancel()
	n.mu.Lock()
	w, done, opened, cur := n.w, n.done, n.opened, n.backend
	n.w, n.backend = nil, nil
	n.mu.Unlock()
	if w != nil {
		w.Close()
	}
	if done != nil {
		<-done
	}
	if cur != nil {
		cur.Close()
	}
	for _, b := range opened {
		b.Close()
	}
}

// accountDescriptors is services' choice of descriptors: the single-key accounts, BIP84
// first.
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

// ensure opens and runs the wallet service once the custody has accounts.
func (n *testNode) ensure() (*wallet.Wallet, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.w != nil {
		return n.w, nil
	}
	if n.ctx.Err() != nil {
		return nil, nil
	}
	if n.openErr != nil && time.Since(n.failedAt) < time.Minute {
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
	w, err := wallet.Open(wallet.Config{DB: n.db, Network: n.cfg.network, Descriptors: descs, Signer: custodySigner{n.custody},
		Log: n.log.With("svc", "wallet"), Now: n.cfg.now, RetryDelay: 300 * time.Millisecond, StatusInterval: time.Second,
		FeeModel: n.cfg.feeModel})
	if err != nil {
		n.openErr, n.failedAt = fmt.Errorf("open wallet: %w", err), time.Now()
		return nil, n.openErr
	}
	n.openErr = nil
	if n.backend == nil {
		if s, ok, err := backend.Load(n.db); err == nil && ok {
			if b, err := n.open(s); err == nil {
				n.backend = b
			}
		}
	}
	if n.backend != nil {
		w.SetBackend(n.backend)
	}
	n.w, n.done = w, make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		if err := w.Run(n.ctx); err != nil && !errors.Is(err, context.Canceled) {
			n.log.Error("wallet service stopped", "err", err)
		}
	}(n.done)
	return w, nil
}

func (n *testNode) open(s backend.Settings) (chain.Backend, error) {
	return backend.Open(s, backend.Options{Params: n.cfg.network.Params(), DB: n.db, Logger: n.log.With("svc", "backend")})
}

func (n *testNode) Wallet() (NodeWallet, error) {
	w, err := n.ensure()
	if w == nil {
		return nil, err
	}
	return w, nil
}

func (n *testNode) LoadBackend() (BackendSettings, bool, error) {
	s, ok, err := backend.Load(n.db)
	if err != nil || !ok {
		return BackendSettings{}, ok, err
	}
	return toWebSettings(s), true, nil
}

func (n *testNode) ValidateBackend(s BackendSettings) map[string]string {
	var fe backend.FieldErrors
	if errors.As(fromWebSettings(s).Validate(), &fe) {
		return fe
	}
	return nil
}

func (n *testNode) OpenBackend(s BackendSettings) (chain.Backend, error) {
	b, err := n.open(fromWebSettings(s))
	var fe backend.FieldErrors
	if errors.As(err, &fe) {
		return nil, BackendFieldErrors(fe)
	}
	if err == nil {
		n.mu.Lock()
		n.opened = append(n.opened, b)
		n.mu.Unlock()
	}
	return b, err
}

func (n *testNode) CheckBackend(ctx context.Context, b chain.Backend) error {
	return backend.Check(ctx, b)
}

func (n *testNode) SaveBackend(s BackendSettings) error {
	return backend.Save(n.db, fromWebSettings(s))
}

func (n *testNode) UseBackend(b chain.Backend) {
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

func toWebSettings(s backend.Settings) BackendSettings {
	return BackendSettings{Kind: string(s.Kind), Host: s.RPC.Host, User: s.RPC.User, Pass: s.RPC.Pass,
		CookieFile: s.RPC.CookieFile, Cert: s.RPC.Cert, NoTLS: s.RPC.NoTLS, Peers: s.Peers}
}

func fromWebSettings(s BackendSettings) backend.Settings {
	return backend.Settings{Kind: backend.Kind(s.Kind), Peers: s.Peers, RPC: backend.RPCSettings{Host: s.Host,
		User: s.User, Pass: s.Pass, CookieFile: s.CookieFile, Cert: s.Cert, NoTLS: s.NoTLS}}
}

// custodySigner is services' adapter: the custody signs under its policy, the wallet
// finalizes.
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

// wallet returns the running wallet service; the test fails without one.
func (n *testNode) wallet(t *testing.T) *wallet.Wallet {
	t.Helper()
	w, err := n.ensure()
	if w == nil {
		t.Fatalf("no wallet service: %v", err)
	}
	return w
}

// current is the backend the wallet follows (nil: none handed over).
func (n *testNode) current() chain.Backend {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.backend
}

// openedBackends are the backends opened so far, oldest first.
func (n *testNode) openedBackends() []chain.Backend {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]chain.Backend(nil), n.opened...)
}

// saved returns the settings backend.Load reads from the database.
func (n *testNode) saved(t *testing.T) (backend.Settings, bool) {
	t.Helper()
	s, ok, err := backend.Load(n.db)
	if err != nil {
		t.Fatal(err)
	}
	return s, ok
}

// isClosed reports whether b was closed: a closed backend refuses a subscription with
// ErrClosed at once.
func isClosed(b chain.Backend) bool {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := b.Subscribe(ctx, nil)
	return errors.Is(err, chain.ErrClosed)
}

// nodeOpts are the choices of newNodeHarness.
type nodeOpts struct {
	network  keys.Network // default: regtest
	policy   sign.Policy  // the custody's signing policy
	noWallet bool         // leave the custody without a wallet
	// feeModel: see nodeConfig.
	feeModel func(ctx context.Context, target uint32) (chain.FeeRate, error)
}

// newNodeHarness is a harness whose Server has the real node (testNode) on a real custody
// of o.network, with the abandon wallet set up (passphrase protection) unless o.noWallet.
func newNodeHarness(t *testing.T, o nodeOpts) *harness {
	t.Helper()
	if o.network == 0 {
		o.network = keys.Regtest
	}
	pp := cheapPassphrase(t)
	h := newHarnessWith(t, func(db *storage.DB, logger *slog.Logger) *hsm.Custody {
		c, err := hsm.New(hsm.Config{DB: db, Network: o.network, Sealers: map[string]seal.Sealer{seal.KindPassphrase: pp},
			Policy: o.policy, Log: logger})
		if err != nil {
			t.Fatal(err)
		}
		return c
	})
	h.nodeCfg = &nodeConfig{network: o.network, now: h.clock.Now, feeModel: o.feeModel}
	h.reopen()
	if !o.noWallet {
		setupCustody(t, h.custody)
	}
	return h
}

// setupCustody sets the abandon wallet up in c, as the wallet pages do.
func setupCustody(t *testing.T, c *hsm.Custody) {
	t.Helper()
	if err := c.Setup(context.Background(), hsm.SetupRequest{Mnemonic: abandon, Protection: seal.KindPassphrase,
		Auth: seal.Auth{Passphrase: []byte(walletPassphrase)}}); err != nil {
		t.Fatal(err)
	}
}

// bip84Address derives the P2WPKH address of the abandon mnemonic at m/84'/coin'/0'/ch/index
// on the network of params with btcd's hdkeychain and a BIP39 seed computed here, so that
// the addresses the pages show are checked against a derivation that is not the box's.
func bip84Address(t *testing.T, params *chaincfg.Params, ch, index uint32) string {
	t.Helper()
	seed, err := pbkdf2.Key(sha512.New, abandon, []byte("mnemonic"), 2048, 64)
	if err != nil {
		t.Fatal(err)
	}
	k, err := hdkeychain.NewMaster(seed, params)
	if err != nil {
		t.Fatal(err)
	}
	coin := uint32(1)
	if params.Net == chaincfg.MainNetParams.Net {
		coin = 0
	}
	for _, i := range []uint32{84 + hdkeychain.HardenedKeyStart, coin + hdkeychain.HardenedKeyStart, hdkeychain.HardenedKeyStart, ch, index} {
		if k, err = k.Derive(i); err != nil {
			t.Fatal(err)
		}
	}
	pub, err := k.ECPubKey()
	if err != nil {
		t.Fatal(err)
	}
	a, err := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(pub.SerializeCompressed()), params)
	if err != nil {
		t.Fatal(err)
	}
	return a.EncodeAddress()
}

// regtestAddress is the abandon wallet's regtest address at m/84'/1'/0'/ch/index.
func regtestAddress(t *testing.T, ch, index uint32) string {
	t.Helper()
	return bip84Address(t, &chaincfg.RegressionNetParams, ch, index)
}

// closedPort returns a loopback address where nothing listens: a node that is down.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// selfSignedCert returns a PEM certificate for 127.0.0.1 that no node has.
func selfSignedCert(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "not the node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// startBtcd runs a btcd on regtest with a mature coinbase to pay from; it skips the test
// with -short. Start it before the harness, so that the wallet stops before the node.
func startBtcd(t *testing.T, opts ...regtest.Option) *regtest.Node {
	t.Helper()
	if testing.Short() {
		t.Skip("starts btcd")
	}
	n := regtest.Start(t, opts...)
	n.Generate(101)
	return n
}

// rpcSettings are the form's fields for n over RPC.
func rpcSettings(n *regtest.Node) url.Values {
	return url.Values{"kind": {"rpc"}, "host": {n.RPCAddr}, "user": {n.User}, "pass": {n.Pass}, "cert": {string(n.Cert)}}
}

// useBtcd chooses n as the backend through the API, as the owner does on the page.
func useBtcd(t *testing.T, h *harness, cookie *http.Cookie, csrf string, n *regtest.Node) {
	t.Helper()
	res := h.api("POST", "/api/node/backend", map[string]any{"kind": "rpc", "host": n.RPCAddr, "user": n.User,
		"pass": n.Pass, "cert": string(n.Cert)}, cookie, csrf)
	wantStatus(t, res, http.StatusOK)
}

// waitWallet polls the wallet service until cond holds.
func waitWallet(t *testing.T, h *harness, what string, cond func(w *wallet.Wallet) bool) {
	t.Helper()
	w := h.node.wallet(t)
	deadline := time.Now().Add(time.Minute)
	for !cond(w) {
		if time.Now().After(deadline) {
			b, _ := w.Balance()
			t.Fatalf("waiting for %s: sync %+v, balance %+v", what, w.Sync(), b)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// waitSynced waits until the wallet is in sync at n's best block.
func waitSynced(t *testing.T, h *harness, n *regtest.Node) {
	t.Helper()
	best, height := n.Best()
	waitWallet(t, h, fmt.Sprintf("sync to block %d", height), func(w *wallet.Wallet) bool {
		st := w.Sync()
		return st.State == wallet.SyncSynced && st.Wallet.Hash == best.String()
	})
}

// fundWallet pays amount to address from n's coins and returns the payment's outpoint.
func fundWallet(t *testing.T, n *regtest.Node, address string, amount int64) (tx *wire.MsgTx, outpoint string) {
	t.Helper()
	addr, err := btcutil.DecodeAddress(address, n.Params)
	if err != nil {
		t.Fatal(err)
	}
	tx = n.SendTo(addr, btcutil.Amount(amount))
	for i, out := range tx.TxOut {
		if out.Value == amount {
			return tx, fmt.Sprintf("%s:%d", tx.TxHash(), i)
		}
	}
	t.Fatalf("the funding transaction %v does not pay %d sat", tx.TxHash(), amount)
	return nil, ""
}

// inMempool reports whether n's mempool holds txid.
func inMempool(n *regtest.Node, txid string) bool {
	for _, h := range n.Mempool() {
		if h.String() == txid {
			return true
		}
	}
	return false
}

// proposalOf returns the wallet's proposal id that the Server keeps for review.
func (h *harness) proposalOf(t *testing.T, id string) *wallet.Proposal {
	t.Helper()
	ps := h.srv.proposals
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, list := range ps.m {
		for _, rv := range list {
			if rv.p.ID == id {
				return rv.p
			}
		}
	}
	t.Fatalf("no proposal %s kept for review", id)
	return nil
}

// satVB writes a fee rate in sat/vB, as the pages do, computed here without their code.
func satVB(r chain.FeeRate) string { return strconv.FormatFloat(float64(r)/1000, 'f', -1, 64) }

// btc writes satoshis as BTC with 8 decimals, computed here without the pages' code.
func btc(sats int64) string { return fmt.Sprintf("%d.%08d", sats/100_000_000, sats%100_000_000) }

var (
	feeTableRe  = regexp.MustCompile(`(?s)<table class="fees">.*?</table>`)
	feeHeadRe   = regexp.MustCompile(`<th class="num">([^<]*)</th>`)
	feeRowRe    = regexp.MustCompile(`(?s)<tr>\s*<td class="num">(\d+)</td>(.*?)</tr>`)
	feeCellRe   = regexp.MustCompile(`(?s)<td class="num( chosen)?">(.*?)</td>`)
	pageTitleRe = regexp.MustCompile(`Anya Edge`)
)

// wantFeeTable checks the dashboard's fee table against the wallet's estimates for the
// dashboard's targets: one column per source, in the order the wallet lists them (each
// estimate, then its Others), each source's rate in its column and the suggestion
// highlighted.
func wantFeeTable(t *testing.T, body string, w *wallet.Wallet) {
	t.Helper()
	targets := []uint32{1, 6, 144}
	ests := map[uint32]wallet.FeeEstimate{}
	var sources []string
	for _, tg := range targets {
		est, err := w.EstimateFee(context.Background(), tg)
		if err != nil {
			t.Fatalf("the wallet's estimate for %d blocks: %v", tg, err)
		}
		ests[tg] = est
		for _, e := range append([]wallet.FeeEstimate{est}, est.Others...) {
			if !slices.Contains(sources, e.Source) {
				sources = append(sources, e.Source)
			}
		}
	}
	table := feeTableRe.FindString(body)
	if table == "" {
		t.Fatalf("no fee table:\n%.3000s", body)
	}
	var heads []string
	for _, m := range feeHeadRe.FindAllStringSubmatch(table, -1) {
		heads = append(heads, m[1])
	}
	if want := append([]string{"Blocks"}, sources...); fmt.Sprint(heads) != fmt.Sprint(want) {
		t.Fatalf("fee table columns %q, the wallet's sources %q", heads, want)
	}
	rows := feeRowRe.FindAllStringSubmatch(table, -1)
	if len(rows) != len(targets) {
		t.Fatalf("fee table has %d rows:\n%s", len(rows), table)
	}
	for i, row := range rows {
		tg := targets[i]
		est := ests[tg]
		if row[1] != strconv.Itoa(int(tg)) {
			t.Errorf("row %d is for %s blocks, want %d", i, row[1], tg)
		}
		cells := feeCellRe.FindAllStringSubmatch(row[2], -1)
		if len(cells) != len(sources) {
			t.Fatalf("row %d blocks has %d cells for %d sources", tg, len(cells), len(sources))
		}
		for j, src := range sources {
			want := "—"
			for _, e := range append([]wallet.FeeEstimate{est}, est.Others...) {
				if e.Source == src {
					want = satVB(e.Rate)
				}
			}
			got := strings.TrimSpace(tagRe.ReplaceAllString(cells[j][2], ""))
			chosen := cells[j][1] != ""
			if got != want || chosen != (src == est.Source) {
				t.Errorf("%d blocks, %s: page shows %q (highlighted %v), the wallet %q (suggested %v)",
					tg, src, got, chosen, want, src == est.Source)
			}
		}
	}
}

// wantCleanPage checks what every node page must be: rendered in the layout, with the
// navigation, without inline code the Content-Security-Policy would block, and without
// external resources.
func wantCleanPage(t *testing.T, name, body string) {
	t.Helper()
	if !pageTitleRe.MatchString(body) {
		t.Errorf("%s: page does not look rendered: %.200q", name, body)
	}
	if m := inlineCode.FindString(body); m != "" {
		t.Errorf("%s: inline code %q would be blocked by the Content-Security-Policy", name, m)
	}
	if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Errorf("%s: page refers to an external resource", name)
	}
	if !strings.Contains(body, `href="/node/send"`) {
		t.Errorf("%s: no navigation to the wallet pages", name)
	}
}

// TestBIP84Oracle checks the tests' own derivation against BIP84's test vectors, so that
// the addresses the pages are compared with are right.
func TestBIP84Oracle(t *testing.T) {
	main := &chaincfg.MainNetParams
	for _, tt := range []struct {
		ch, index uint32
		want      string
	}{{0, 0, "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"}, {0, 1, "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"},
		{1, 0, "bc1q8c6fshw2dlwun7ekn9qwf37cu2rn755upcp6el"}} {
		if got := bip84Address(t, main, tt.ch, tt.index); got != tt.want {
			t.Errorf("m/84'/0'/0'/%d/%d: %s, BIP84 says %s", tt.ch, tt.index, got, tt.want)
		}
	}
}
