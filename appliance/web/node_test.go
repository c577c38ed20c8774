package web

import (
	"context"
	"html"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/anya-edge/anya/node/chain"
	"github.com/anya-edge/anya/node/wallet"
	"github.com/anya-edge/anya/storage"
)

var tagRe = regexp.MustCompile(`<[^>]*>`)

// elemText returns the text of the element with the given id in a page, unescaped, up to
// the first closing tag of its kind.
func elemText(body, id string) string {
	m := regexp.MustCompile(`<([a-z0-9]+)[^>]*\sid="` + regexp.QuoteMeta(id) + `"[^>]*>`).FindStringSubmatchIndex(body)
	if m == nil {
		return ""
	}
	rest := body[m[1]:]
	if end := strings.Index(rest, "</"+body[m[2]:m[3]]+">"); end >= 0 {
		rest = rest[:end]
	}
	return html.UnescapeString(strings.Join(strings.Fields(tagRe.ReplaceAllString(rest, " ")), " "))
}

func wantElem(t *testing.T, res response, id, contains string) {
	t.Helper()
	if got := elemText(res.body, id); got == "" || !strings.Contains(got, contains) {
		t.Fatalf("#%s is %q, want it to contain %q; page:\n%.3000s", id, got, contains, res.body)
	}
}

func wantBody(t *testing.T, res response, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(html.UnescapeString(res.body), w) {
			t.Fatalf("page lacks %q:\n%.4000s", w, res.body)
		}
	}
}

func TestNodeAbsent(t *testing.T) {
	h := newHarness(t)
	cookie, _ := h.setup()
	for _, path := range []string{"/node", "/node/send", "/node/history", "/api/node", "/api/node/history"} {
		if res := h.do(req("GET", path, "", cookie, "")); res.StatusCode != http.StatusNotFound {
			t.Errorf("%s on a box without a node: %s", path, res.Status)
		}
	}
	if res := h.do(req("GET", "/", "", cookie, "")); strings.Contains(res.body, `href="/node"`) {
		t.Error("the status page links to the wallet pages of a box without a node")
	}
}

// grouped writes n with thousands separators, as the pages do, computed here without their
// code.
func grouped(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func TestNodeWithoutWallet(t *testing.T) {
	t.Parallel()
	h := newNodeHarness(t, nodeOpts{noWallet: true})
	cookie, csrf := h.setup()
	for _, path := range []string{"/node", "/node/receive", "/node/send", "/node/history"} {
		res := h.do(req("GET", path, "", cookie, ""))
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, "No wallet is set up yet")
	}
	wantError(t, h.api("GET", "/api/node", nil, cookie, ""), http.StatusConflict, "No wallet is set up yet")
	wantError(t, h.api("POST", "/api/node/address", map[string]any{}, cookie, csrf), http.StatusConflict, "No wallet")

	// The backend can be chosen before the wallet exists: a node that does not answer is
	// refused, and saved when the owner insists.
	host := closedPort(t)
	res := h.form("/node/backend", url.Values{"kind": {"rpc"}, "host": {host}, "user": {"anya"}, "pass": {"rpc-pass"},
		"no_tls": {"1"}}, cookie, csrf)
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantStatus(t, h.form("/node/backend", url.Values{"action": {"save_anyway"}}, cookie, csrf), http.StatusSeeOther)
	if s, ok := h.node.saved(t); !ok || s.RPC.Host != host || h.node.current() == nil {
		t.Fatalf("backend not saved and used: %v %v, in use %v", s, ok, h.node.current())
	}

	// A wallet whose data a newer firmware wrote cannot start: the pages say why.
	newer := make([]storage.Migration, 50)
	for i := range newer {
		newer[i] = storage.Migration{Version: i + 1, Name: "from a newer firmware", Breaking: i == len(newer)-1,
			Up: func(*bbolt.Tx) error { return nil }}
	}
	if err := h.db.Migrate(wallet.Subsystem, newer); err != nil {
		t.Fatal(err)
	}
	setupCustody(t, h.custody)
	res = h.do(req("GET", "/node", "", cookie, ""))
	wantBody(t, res, "The wallet service could not start: ", storage.ErrSchemaTooNew.Error())
	wantError(t, h.api("GET", "/api/node", nil, cookie, ""), http.StatusConflict, "could not start")
}

// TestNodeDashboard: a wallet without a backend, then with a node that does not answer.
// TestNodeDashboardOnChain shows it in sync with a real node.
func TestNodeDashboard(t *testing.T) {
	t.Parallel()
	h := newNodeHarness(t, nodeOpts{})
	cookie, csrf := h.setup()
	w := h.node.wallet(t)

	res := h.do(req("GET", "/node", "", cookie, ""))
	wantStatus(t, res, http.StatusOK)
	wantElem(t, res, "no-backend", "not connected")
	for _, id := range []string{"balance-confirmed", "balance-unconfirmed", "balance-total"} {
		wantElem(t, res, id, "0.00000000")
	}
	wantElem(t, res, "sync-state", "No backend")
	wantBody(t, res, `id="node-live" data-refresh=`, `href="/node/receive"`, `href="/node/send"`, `href="/node/history"`,
		`href="/node/backend"`, "Not chosen yet")
	// The fee estimates are what the wallet answers without a backend.
	wantFeeTable(t, res.body, w)
	m := h.api("GET", "/api/node", nil, cookie, "").json(t)
	if m["sync"].(map[string]any)["state"] != "no-backend" || m["balance"].(map[string]any)["confirmed"].(float64) != 0 ||
		m["backend"] != nil {
		t.Errorf("GET /api/node: %v", m)
	}
	fees := m["fees"].([]any)
	if len(fees) != 3 {
		t.Fatalf("fees: %v", fees)
	}
	for i, tg := range []uint32{1, 6, 144} {
		est, _ := w.EstimateFee(context.Background(), tg)
		f := fees[i].(map[string]any)
		if f["target"].(float64) != float64(tg) || f["rate"].(float64) != float64(est.Rate) || f["source"] != est.Source {
			t.Errorf("fee %d in the API %v, the wallet's %+v", tg, f, est)
		}
	}

	// A node that does not answer, saved anyway: the wallet reports it down, with the reason.
	host := closedPort(t)
	res = h.api("POST", "/api/node/backend", map[string]any{"kind": "rpc", "host": host, "user": "anya", "pass": "rpc-pass",
		"no_tls": true, "save_anyway": true}, cookie, csrf)
	wantStatus(t, res, http.StatusOK)
	waitWallet(t, h, "the backend down", func(w *wallet.Wallet) bool { return w.Sync().State == wallet.SyncDown })
	res = h.do(req("GET", "/node", "", cookie, ""))
	if strings.Contains(res.body, `id="no-backend"`) {
		t.Error("dashboard asks for a backend although one is saved")
	}
	wantElem(t, res, "sync-state", "Backend down")
	wantElem(t, res, "sync-error", "connection refused")
	wantBody(t, res, "Your own node at "+host+" (plain HTTP)")
	m = h.api("GET", "/api/node", nil, cookie, "").json(t)
	if m["sync"].(map[string]any)["state"] != "down" {
		t.Errorf("GET /api/node: %v", m)
	}
	if b := m["backend"].(map[string]any); b["host"] != host || b["pass"] != nil || b["pass_set"] != true {
		t.Errorf("backend in the API: %v (the password must not be there)", b)
	}
}

// TestNodeBackendForm: settings refused by backend.Validate and Open, and a node that does
// not answer (backend.Check), each next to its field; what failed is neither saved nor
// used nor left open, and can be saved anyway. TestNodeBackendChecks has the checks that
// need a node.
func TestNodeBackendForm(t *testing.T) {
	t.Parallel()
	down := closedPort(t)
	rpc := url.Values{"kind": {"rpc"}, "host": {down}, "user": {"anya"}, "pass": {"secret-rpc-pass"}, "cert": {selfSignedCert(t)}}
	with := func(v url.Values, kv ...string) url.Values {
		out := url.Values{}
		for k, vs := range v {
			out[k] = vs
		}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	tests := []struct {
		name   string
		form   url.Values
		status int
		field  string // element id of the error, "" for the page
		want   string
	}{
		{"no kind", url.Values{}, 400, "", "Choose a backend: your own node (rpc) or the built-in light client (p2p)."},
		{"no host", with(rpc, "host", ""), 400, "host-error", "Enter the node's RPC address as host:port"},
		{"no port", with(rpc, "host", "mynode.lan"), 400, "host-error", `"mynode.lan" is not host:port`},
		{"no password", with(rpc, "pass", ""), 400, "pass-error", "cookie file"},
		{"password without user", with(rpc, "user", ""), 400, "user-error", "user name"},
		{"bad cert", with(rpc, "cert", "hello"), 400, "cert-error", "PEM"},
		{"bad peer", url.Values{"kind": {"p2p"}, "peers": {"127.0.0.1:8333\nnoport"}}, 400, "peers-error", `"noport" is not host:port`},
		{"no peers on regtest", url.Values{"kind": {"p2p"}}, 400, "peers-error", "regtest has no DNS seeds"},
		{"node down", rpc, 422, "host-error", "does not answer at this address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newNodeHarness(t, nodeOpts{noWallet: true})
			cookie, csrf := h.setup()
			res := h.form("/node/backend", tt.form, cookie, csrf)
			wantStatus(t, res, tt.status)
			if tt.field != "" {
				wantElem(t, res, tt.field, tt.want)
			} else {
				wantBody(t, res, tt.want)
			}
			if _, ok := h.node.saved(t); ok || h.node.current() != nil {
				t.Fatal("settings that failed were saved or used")
			}
			for _, b := range h.node.openedBackends() {
				if !isClosed(b) {
					t.Error("a backend that failed its check was left open")
				}
			}
			if strings.Contains(res.body, "secret-rpc-pass") {
				t.Error("the password was put back into the page")
			}
			if tt.status != http.StatusUnprocessableEntity {
				return
			}
			wantBody(t, res, `id="save-anyway"`)
			// Save anyway: the settings the check refused, kept for this session.
			res = h.form("/node/backend", url.Values{"action": {"save_anyway"}}, cookie, csrf)
			wantStatus(t, res, http.StatusSeeOther)
			s, ok := h.node.saved(t)
			if cur := h.node.current(); !ok || s.RPC.Pass != "secret-rpc-pass" || cur == nil || isClosed(cur) {
				t.Fatalf("save anyway: saved %v %v, in use %v", s, ok, cur)
			}
			if res := h.form("/node/backend", url.Values{"action": {"save_anyway"}}, cookie, csrf); res.StatusCode != http.StatusGone {
				t.Errorf("second save anyway: %s", res.Status)
			}
		})
	}
}

// TestNodeSetupFlowOffersBackend: once the wallet is set up in the first setup, the next
// step is the chain backend, which the owner may skip.
func TestNodeSetupFlowOffersBackend(t *testing.T) {
	h := newNodeHarness(t, nodeOpts{noWallet: true})
	res := h.do(req("POST", "/setup", url.Values{"password": {testPassword}, "confirm": {testPassword}}.Encode(), nil, ""))
	wantStatus(t, res, http.StatusSeeOther)
	cookie := res.sessionCookie()
	csrf := h.do(req("GET", "/api/session", "", cookie, "")).json(t)["csrf"].(string)
	wantStatus(t, h.form("/wallet/restore", url.Values{"mnemonic": {abandon}}, cookie, csrf), http.StatusSeeOther)
	res = h.form("/wallet/protect", url.Values{"protection": {"passphrase"}, "passphrase": {walletPassphrase},
		"confirm": {walletPassphrase}}, cookie, csrf)
	wantStatus(t, res, http.StatusSeeOther)
	if loc := res.Header.Get("Location"); loc != "/node/backend?setup=1" {
		t.Fatalf("after the wallet: to %q", loc)
	}
	page := h.do(req("GET", "/node/backend?setup=1", "", cookie, ""))
	wantBody(t, page, "Setup · Step 3", "Skip for now", `name="setup" value="1"`)
}

// TestNodeSendValidation: what the send form refuses itself, and what the wallet refuses
// without a chain. An invalid form never reaches the wallet: a wallet that has not synced
// would answer 409 "still catching up" to anything it is asked. TestNodeSendOnChain has
// the refusals that need coins.
func TestNodeSendValidation(t *testing.T) {
	payee := regtestAddress(t, 0, 19)
	valid := url.Values{"address": {payee}, "amount": {"0.0015"}, "unit": {"btc"}, "target": {"6"}, "fee_rate": {"2.5"}}
	with := func(kv ...string) url.Values {
		out := url.Values{}
		for k, vs := range valid {
			out[k] = vs
		}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	tests := []struct {
		name   string
		form   url.Values
		status int
		elem   string
		want   string
	}{
		{"no address", with("address", ""), 400, "address-error", "Enter the address"},
		{"no amount", with("amount", ""), 400, "amount-error", "Enter the amount"},
		{"nine decimals", with("amount", "0.000000001"), 400, "amount-error", "at most 8 decimals"},
		{"comma", with("amount", "0,5"), 400, "amount-error", "with a dot"},
		{"sats with decimals", with("amount", "1500.5", "unit", "sat"), 400, "amount-error", "whole numbers"},
		{"zero", with("amount", "0"), 400, "amount-error", "more than zero"},
		{"too much", with("amount", "21000001"), 400, "amount-error", "more bitcoin than will ever exist"},
		{"fee rate words", with("fee_rate", "fast"), 400, "fee-error", "in sat/vB"},
		{"fee rate zero", with("fee_rate", "0"), 400, "fee-error", "more than zero"},
		{"fee rate absurd", with("fee_rate", "20000"), 400, "fee-error", "absurd"},
		{"locktime", with("lock_time", "soon"), 400, "locktime-error", "block height"},
		{"relative lock", with("relative_lock", "70000"), 400, "rel-error", "1 to 65535"},
		// Refused by the wallet.
		{"invalid address", with("address", "bcrt1qnotanaddress"), 400, "address-error", "not a valid Bitcoin address: check it for typing mistakes ("},
		{"wrong network", with("address", abandonFirst), 400, "address-error", "another Bitcoin network"},
		{"dust", with("amount", "200", "unit", "sat"), 400, "amount-error", "dust"},
		{"fee too low", with("fee_rate", "0.1"), 400, "fee-error", "below what the network relays"},
		{"not synced", valid, 409, "send-alert", "still catching up"},
	}
	h := newNodeHarness(t, nodeOpts{})
	cookie, csrf := h.setup()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.form("/node/send", tt.form, cookie, csrf)
			wantStatus(t, res, tt.status)
			wantElem(t, res, tt.elem, tt.want)
			if addr := tt.form.Get("address"); addr != "" && !strings.Contains(res.body, `value="`+addr+`"`) {
				t.Error("the form lost the address typed")
			}
			if strings.Contains(tt.elem, "lock") || strings.Contains(tt.elem, "rel") {
				wantBody(t, res, `<details class="advanced" open>`)
			}
		})
	}
}

// proposeThroughPage sends the send form and returns the review page and the proposal id.
func proposeThroughPage(t *testing.T, h *harness, cookie *http.Cookie, csrf string, form url.Values) (response, string) {
	t.Helper()
	res := h.form("/node/send", form, cookie, csrf)
	wantStatus(t, res, http.StatusOK)
	m := regexp.MustCompile(`name="proposal" value="([^"]+)"`).FindStringSubmatch(res.body)
	if m == nil {
		t.Fatalf("review page has no proposal:\n%s", res.body)
	}
	return res, m[1]
}

func TestNodeReceive(t *testing.T) {
	h := newNodeHarness(t, nodeOpts{})
	cookie, csrf := h.setup()
	first, second, third := regtestAddress(t, 0, 0), regtestAddress(t, 0, 1), regtestAddress(t, 0, 2)
	res := h.do(req("GET", "/node/receive", "", cookie, ""))
	wantStatus(t, res, http.StatusOK)
	wantElem(t, res, "receive-address", first)
	wantElem(t, res, "receive-uri", "bitcoin:"+first)
	wantBody(t, res, `<svg class="qr"`, "m/84h/1h/0h/0/0")
	// The same address on reload: the page does not burn addresses (the next new one is
	// the second, below).
	wantElem(t, h.do(req("GET", "/node/receive", "", cookie, "")), "receive-address", first)
	res = h.do(req("GET", "/node/receive?amount=0.0015&label="+url.QueryEscape("Rent & co"), "", cookie, ""))
	wantElem(t, res, "receive-uri", "bitcoin:"+first+"?amount=0.0015&label=Rent%20%26%20co")
	res = h.do(req("GET", "/node/receive?amount=0.1234567891", "", cookie, ""))
	wantStatus(t, res, http.StatusBadRequest)
	wantElem(t, res, "amount-error", "at most 8 decimals")
	wantElem(t, res, "receive-uri", "bitcoin:"+first)

	// A new address, asked with a POST.
	res = h.form("/node/receive", nil, cookie, csrf)
	wantStatus(t, res, http.StatusSeeOther)
	wantElem(t, h.do(req("GET", "/node/receive", "", cookie, "")), "receive-address", second)

	// The API: a new address with its URI.
	m := h.api("POST", "/api/node/address", map[string]any{"amount": 250_000, "label": "coffee"}, cookie, csrf).json(t)
	if m["address"] != third || m["uri"] != "bitcoin:"+third+"?amount=0.0025&label=coffee" {
		t.Errorf("POST /api/node/address: %v", m)
	}
	wantError(t, h.api("POST", "/api/node/address", map[string]any{"amount": -1}, cookie, csrf), 400, "amount")
}

// TestNodeAPISend: the API's own checks, the wallet's refusals without a chain, and its fee
// estimates. TestNodeSendOnChain proposes and sends through the API.
func TestNodeAPISend(t *testing.T) {
	t.Parallel()
	h := newNodeHarness(t, nodeOpts{})
	cookie, csrf := h.setup()
	payee := regtestAddress(t, 0, 19)
	pay := func(address string, amount int64) map[string]any {
		return map[string]any{"payments": []any{map[string]any{"address": address, "amount": amount}}}
	}
	wantError(t, h.api("POST", "/api/node/propose", map[string]any{"payments": []any{}}, cookie, csrf), 400, "at least one payment")
	wantError(t, h.api("POST", "/api/node/propose", pay(payee, 0), cookie, csrf), 400, "more than zero")
	body := pay(payee, 1)
	body["fee_rate"] = -1
	wantError(t, h.api("POST", "/api/node/propose", body, cookie, csrf), 400, "sat/kvB")
	res := h.api("POST", "/api/node/propose", pay(abandonFirst, 10_000), cookie, csrf)
	wantError(t, res, 400, "another Bitcoin network")
	if f := res.json(t)["fields"].(map[string]any); f["address"] == nil {
		t.Errorf("fields %v", f)
	}
	wantError(t, h.api("POST", "/api/node/propose", pay(payee, 10_000), cookie, csrf), 409, "still catching up")

	// The fee estimates are the wallet's.
	w := h.node.wallet(t)
	for _, tg := range []uint32{1, 6, 144} {
		est, err := w.EstimateFee(context.Background(), tg)
		if err != nil {
			t.Fatal(err)
		}
		m := h.api("GET", "/api/node/fees?target="+strconv.Itoa(int(tg)), nil, cookie, "").json(t)
		if m["rate"].(float64) != float64(est.Rate) || m["source"] != est.Source {
			t.Errorf("fees for %d blocks: %v, the wallet says %+v", tg, m, est)
		}
	}
	wantError(t, h.api("GET", "/api/node/fees?target=0", nil, cookie, ""), 400, "target")
	if testing.Short() {
		return
	}
	// A node that takes the connection and never answers: no estimate within the page's
	// time (3 s).
	hung := hungNode(t)
	wantStatus(t, h.api("POST", "/api/node/backend", map[string]any{"kind": "rpc", "host": hung, "user": "anya", "pass": "p",
		"no_tls": true, "save_anyway": true}, cookie, csrf), http.StatusOK)
	wantError(t, h.api("GET", "/api/node/fees?target=2", nil, cookie, ""), 503, "no fee estimate")
}

// hungNode returns a loopback address that accepts connections and never answers, as a
// node that hangs.
func hungNode(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// TestNodeRoutesGuarded walks every node route: without a session each one refuses, and
// with a session but without the CSRF token every state-changing one refuses before the
// wallet or the backend sees anything.
func TestNodeRoutesGuarded(t *testing.T) {
	h := newNodeHarness(t, nodeOpts{})
	cookie, _ := h.setup()
	n := 0
	for _, rt := range h.srv.Routes() {
		if !strings.HasPrefix(rt.Pattern, "/node") && !strings.HasPrefix(rt.Pattern, "/api/node") {
			continue
		}
		n++
		if rt.Public || rt.PreSetup {
			t.Errorf("%s is public", routeName(rt))
		}
		t.Run(routeName(rt), func(t *testing.T) {
			res := h.do(req(rt.Method, concretePath(rt.Pattern), "", nil, ""))
			if isAPI(rt.Pattern) {
				wantError(t, res, http.StatusUnauthorized, "login required")
			} else if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login" {
				t.Fatalf("without a session: %s to %q", res.Status, res.Header.Get("Location"))
			}
			if safeMethod(rt.Method) {
				return
			}
			body := "txid=" + strings.Repeat("01", 32) + "&kind=p2p&peers=127.0.0.1:1&address=a&amount=1&proposal=p1"
			if isAPI(rt.Pattern) {
				body = `{"kind":"p2p","peers":["127.0.0.1:1"],"save_anyway":true}`
			}
			res = h.do(req(rt.Method, concretePath(rt.Pattern), body, cookie, ""))
			if res.StatusCode != http.StatusForbidden || !strings.Contains(res.body, "CSRF token") {
				t.Fatalf("without the CSRF token: %s %.200q", res.Status, res.body)
			}
		})
	}
	if n < 20 {
		t.Errorf("only %d node routes", n)
	}
	// Nothing reached the node: no backend opened or saved, no address handed out.
	if _, ok := h.node.saved(t); ok || len(h.node.openedBackends()) != 0 || h.node.current() != nil {
		t.Error("a refused request reached the backend")
	}
	if a, err := h.node.wallet(t).NewAddress(); err != nil || a.Address != regtestAddress(t, 0, 0) {
		t.Errorf("a refused request took an address: the next one is %v %v", a, err)
	}
}

// TestNodePagesHaveNoInlineCode: the pages that need no chain; TestNodeSendOnChain and
// TestNodeHistoryOnChain check the review, sent, history and speed-up pages the same way.
func TestNodePagesHaveNoInlineCode(t *testing.T) {
	h := newNodeHarness(t, nodeOpts{})
	cookie, csrf := h.setup()
	// A light client with a peer, saved anyway, for the backend form to show it.
	wantStatus(t, h.api("POST", "/api/node/backend", map[string]any{"kind": "p2p", "peers": []string{closedPort(t)},
		"save_anyway": true}, cookie, csrf), http.StatusOK)
	pages := map[string]string{}
	for _, p := range []string{"/node", "/node/backend", "/node/backend?setup=1", "/node/receive", "/node/receive?amount=1&label=x",
		"/node/send", "/node/history", "/"} {
		pages[p] = h.do(req("GET", p, "", cookie, "")).body
	}
	pages["backend errors"] = h.form("/node/backend", url.Values{"kind": {"rpc"}}, cookie, csrf).body
	pages["send errors"] = h.form("/node/send", url.Values{}, cookie, csrf).body
	pages["send refused"] = h.form("/node/send", url.Values{"address": {regtestAddress(t, 0, 19)}, "amount": {"1"}}, cookie, csrf).body
	for name, body := range pages {
		wantCleanPage(t, name, body)
	}
}

func TestParseAmount(t *testing.T) {
	tests := []struct {
		v, unit string
		sats    int64
		bad     bool
	}{
		{"1", "btc", 100_000_000, false},
		{"0.00000001", "btc", 1, false},
		{".5", "btc", 50_000_000, false},
		{"21000000", "btc", 2_100_000_000_000_000, false},
		{"21000000.00000001", "btc", 0, true},
		{"1e-8", "btc", 0, true},
		{"-1", "btc", 0, true},
		{"0.1.2", "btc", 0, true},
		{"1 000", "sat", 1000, false},
		{"1_000", "sat", 1000, false},
		{"12.0", "sat", 0, true},
		{"0x10", "sat", 0, true},
		{"1", "eth", 0, true},
	}
	for _, tt := range tests {
		got, msg := parseAmount(tt.v, tt.unit)
		if (msg != "") != tt.bad || got != tt.sats {
			t.Errorf("parseAmount(%q, %q) = %d, %q", tt.v, tt.unit, got, msg)
		}
	}
	for _, tt := range []struct {
		v    string
		rate chain.FeeRate
		bad  bool
	}{{"1", 1000, false}, {"1.5", 1500, false}, {"0.1234", 123, false}, {"0", 0, true}, {"NaN", 0, true}, {"1e9", 0, true}} {
		got, msg := parseFeeRate(tt.v)
		if (msg != "") != tt.bad || got != tt.rate {
			t.Errorf("parseFeeRate(%q) = %d, %q", tt.v, got, msg)
		}
	}
}
