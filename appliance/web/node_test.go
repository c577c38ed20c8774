package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/anya-edge/anya/hsm"
	"github.com/anya-edge/anya/hsm/sign"
	"github.com/anya-edge/anya/node/chain"
	"github.com/anya-edge/anya/node/wallet"
	"github.com/anya-edge/anya/node/wallet/coinselect"
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

func TestNodeWithoutWallet(t *testing.T) {
	fn := &fakeNode{}
	h := newHarnessNode(t, fn)
	cookie, csrf := h.setup()
	for _, path := range []string{"/node", "/node/receive", "/node/send", "/node/history"} {
		res := h.do(req("GET", path, "", cookie, ""))
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, "No wallet is set up yet")
	}
	wantError(t, h.api("GET", "/api/node", nil, cookie, ""), http.StatusConflict, "No wallet is set up yet")
	wantError(t, h.api("POST", "/api/node/address", map[string]any{}, cookie, csrf), http.StatusConflict, "No wallet")
	// The backend can be chosen before the wallet exists.
	res := h.form("/node/backend", url.Values{"kind": {"p2p"}}, cookie, csrf)
	wantStatus(t, res, http.StatusSeeOther)
	if fn.saved == nil || len(fn.used) != 1 {
		t.Fatalf("backend not saved and used: %+v %d", fn.saved, len(fn.used))
	}
	fn.set(func(n *fakeNode) { n.walletErr = errors.New("descriptor: bad checksum") })
	wantBody(t, h.do(req("GET", "/node", "", cookie, "")), "The wallet service could not start: descriptor: bad checksum")
}

func TestNodeDashboard(t *testing.T) {
	h, fn, fw := newNodeHarness(t)
	cookie, _ := h.setup()

	res := h.do(req("GET", "/node", "", cookie, ""))
	wantStatus(t, res, http.StatusOK)
	wantElem(t, res, "no-backend", "not connected")
	wantElem(t, res, "balance-confirmed", "1.50000000")
	wantElem(t, res, "balance-unconfirmed", "0.00002500")
	wantElem(t, res, "balance-total", "1.50002500")
	wantElem(t, res, "sync-state", "In sync")
	wantElem(t, res, "sync-wallet", "812")
	wantBody(t, res, "btcd 0.26.2 (rpc)", `id="node-live" data-refresh=`, `href="/node/receive"`, `href="/node/send"`,
		`href="/node/history"`, `href="/node/backend"`)
	// The fee sources side by side: the suggestion and each source's answer.
	for _, want := range []string{"<th class=\"num\">backend</th>", "<th class=\"num\">mempool</th>", "<th class=\"num\">model</th>",
		`<td class="num chosen"><strong>5</strong>`, ">4.2<", ">6.1<", `<td class="num chosen"><strong>12.5</strong>`, ">11<"} {
		if !strings.Contains(res.body, want) {
			t.Errorf("fee table lacks %q", want)
		}
	}

	fn.set(func(n *fakeNode) {
		n.saved = &BackendSettings{Kind: BackendRPC, Host: "10.0.0.2:8334", User: "u", Pass: "p"}
	})
	fw.set(func(f *fakeWallet) {
		f.sync.State, f.sync.Err = wallet.SyncDown, "chain: getblockcount at 10.0.0.2:8334: node down: connection refused"
		f.sync.Chain.Syncing, f.sync.Chain.Reason = true, "headers at 800, peers at 812"
		f.peers = []chain.Peer{{Addr: "192.0.2.7:8333", Agent: "/Satoshi:27.0.0/", Height: 812}}
	})
	res = h.do(req("GET", "/node", "", cookie, ""))
	if strings.Contains(res.body, `id="no-backend"`) {
		t.Error("dashboard asks for a backend although one is saved")
	}
	wantElem(t, res, "sync-state", "Backend down")
	wantElem(t, res, "sync-error", "connection refused")
	wantBody(t, res, "Your own node at 10.0.0.2:8334", "headers at 800, peers at 812", "192.0.2.7:8333", "/Satoshi:27.0.0/")

	// The API mirrors the page.
	m := h.api("GET", "/api/node", nil, cookie, "").json(t)
	if m["sync"].(map[string]any)["state"] != "down" || m["balance"].(map[string]any)["confirmed"].(float64) != 150_000_000 {
		t.Errorf("GET /api/node: %v", m)
	}
	if b := m["backend"].(map[string]any); b["host"] != "10.0.0.2:8334" || b["pass"] != nil || b["pass_set"] != true {
		t.Errorf("backend in the API: %v (the password must not be there)", b)
	}
	if fees := m["fees"].([]any); len(fees) != 3 {
		t.Errorf("fees: %v", fees)
	}
}

func TestNodeBackendForm(t *testing.T) {
	cert := "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
	rpc := url.Values{"kind": {"rpc"}, "host": {"127.0.0.1:18334"}, "user": {"anya"}, "pass": {"secret-rpc-pass"}, "cert": {cert}}
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
		name     string
		form     url.Values
		checkErr error
		status   int
		field    string // element id of the error
		want     string
	}{
		{"no kind", url.Values{}, nil, 400, "", "Choose your own node or the light client."},
		{"no host", with(rpc, "host", ""), nil, 400, "host-error", "Enter the node's host"},
		{"no port", with(rpc, "host", "mynode.lan"), nil, 400, "host-error", "Add the port"},
		{"no password", with(rpc, "pass", ""), nil, 400, "pass-error", "cookie file"},
		{"bad cert", with(rpc, "cert", "hello"), nil, 400, "cert-error", "not a PEM certificate"},
		{"bad peer", url.Values{"kind": {"p2p"}, "peers": {"192.0.2.1:8333\nnoport"}}, nil, 400, "peers-error", `"noport" has no port`},
		{"node down", rpc, &checkError{"Nothing answers at 127.0.0.1:18334: is the node running?", chain.ErrNodeDown}, 422, "host-error", "Nothing answers"},
		{"wrong password", rpc, &checkError{"The node refused the user name or password.", chain.ErrAuth}, 422, "pass-error", "refused the user name"},
		{"tls", rpc, &checkError{"The node's TLS certificate does not match the one pasted.", chain.ErrTLS}, 422, "cert-error", "does not match"},
		{"wrong network", rpc, &checkError{"The node is on testnet, the wallet on mainnet.", chain.ErrWrongNetwork}, 422, "backend-problem", ""},
		{"chain error", rpc, &chain.Error{Op: "getblockchaininfo", Kind: chain.ErrAuth}, 422, "pass-error", "refused the user name and password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, fn, _ := newNodeHarness(t)
			cookie, csrf := h.setup()
			fn.checkErr = tt.checkErr
			res := h.form("/node/backend", tt.form, cookie, csrf)
			wantStatus(t, res, tt.status)
			if tt.field == "backend-problem" {
				wantBody(t, res, tt.checkErr.Error(), `id="save-anyway"`)
			} else if tt.field != "" {
				wantElem(t, res, tt.field, tt.want)
			} else {
				wantBody(t, res, tt.want)
			}
			if fn.saved != nil || len(fn.used) != 0 {
				t.Fatal("settings that failed were saved or used")
			}
			for _, b := range fn.opened {
				if !b.isClosed() {
					t.Error("a backend that failed its check was left open")
				}
			}
			if strings.Contains(res.body, "secret-rpc-pass") {
				t.Error("the password was put back into the page")
			}
			if tt.status == 422 {
				// Save anyway: the settings the check refused, kept for this session.
				res := h.form("/node/backend", url.Values{"action": {"save_anyway"}}, cookie, csrf)
				wantStatus(t, res, http.StatusSeeOther)
				if fn.saved == nil || fn.saved.Pass != "secret-rpc-pass" || len(fn.used) != 1 {
					t.Fatalf("save anyway: saved %+v, used %d", fn.saved, len(fn.used))
				}
				if res := h.form("/node/backend", url.Values{"action": {"save_anyway"}}, cookie, csrf); res.StatusCode != http.StatusGone {
					t.Errorf("second save anyway: %s", res.Status)
				}
			}
		})
	}
}

func TestNodeBackendSave(t *testing.T) {
	h, fn, _ := newNodeHarness(t)
	cookie, csrf := h.setup()
	form := url.Values{"kind": {"rpc"}, "host": {"127.0.0.1:18334"}, "user": {"anya"}, "pass": {"secret-rpc-pass"}, "no_tls": {"1"},
		"peers": {"ignored:1"}}
	res := h.form("/node/backend", form, cookie, csrf)
	wantStatus(t, res, http.StatusSeeOther)
	if res.Header.Get("Location") != "/node" {
		t.Errorf("after saving: to %q", res.Header.Get("Location"))
	}
	want := BackendSettings{Kind: "rpc", Host: "127.0.0.1:18334", User: "anya", Pass: "secret-rpc-pass", NoTLS: true}
	if fn.saved == nil || fmt.Sprint(*fn.saved) != fmt.Sprint(want) || len(fn.used) != 1 || fn.used[0].isClosed() {
		t.Fatalf("saved %+v used %d", fn.saved, len(fn.used))
	}

	// The form shows what is saved, without the password.
	page := h.do(req("GET", "/node/backend", "", cookie, ""))
	wantBody(t, page, `value="127.0.0.1:18334"`, "A password is saved", "Your own node at 127.0.0.1:18334 (plain HTTP)")
	if strings.Contains(page.body, "secret-rpc-pass") {
		t.Fatal("the saved password is in the page")
	}
	// An empty password keeps the saved one for the same host...
	form.Set("pass", "")
	wantStatus(t, h.form("/node/backend", form, cookie, csrf), http.StatusSeeOther)
	if fn.saved.Pass != "secret-rpc-pass" {
		t.Fatalf("password not kept: %q", fn.saved.Pass)
	}
	// ...but never goes to another host.
	form.Set("host", "203.0.113.9:8332")
	res = h.form("/node/backend", form, cookie, csrf)
	wantStatus(t, res, http.StatusBadRequest)
	wantElem(t, res, "pass-error", "Enter the RPC password")

	// A node that is still syncing is set up right: saved.
	fn.set(func(n *fakeNode) {
		n.checkErr = &checkError{"The node is still syncing (block 1200 of 812000).", chain.ErrSyncing}
	})
	wantStatus(t, h.form("/node/backend", url.Values{"kind": {"p2p"}}, cookie, csrf), http.StatusSeeOther)
	if fn.saved.Kind != "p2p" || len(fn.used) != 3 {
		t.Fatalf("syncing node not saved: %+v, used %d", fn.saved, len(fn.used))
	}

	// The API.
	m := h.api("GET", "/api/node/backend", nil, cookie, "").json(t)
	if m["kind"] != "p2p" {
		t.Errorf("GET /api/node/backend: %v", m)
	}
	res = h.api("POST", "/api/node/backend", map[string]any{"kind": "rpc", "host": "nohost"}, cookie, csrf)
	wantError(t, res, http.StatusBadRequest, "host: Add the port")
	if f := res.json(t)["fields"].(map[string]any); f["pass"] == nil {
		t.Errorf("fields: %v", f)
	}
	fn.set(func(n *fakeNode) {
		n.checkErr = &checkError{"The node refused the user name or password.", chain.ErrAuth}
	})
	body := map[string]any{"kind": "rpc", "host": "127.0.0.1:1", "user": "u", "pass": "p"}
	res = h.api("POST", "/api/node/backend", body, cookie, csrf)
	wantError(t, res, http.StatusUnprocessableEntity, "refused the user name")
	body["save_anyway"] = true
	wantStatus(t, h.api("POST", "/api/node/backend", body, cookie, csrf), http.StatusOK)
	if fn.saved.Host != "127.0.0.1:1" {
		t.Errorf("API save anyway: %+v", fn.saved)
	}
}

// TestNodeSetupFlowOffersBackend: once the wallet is set up in the first setup, the next
// step is the chain backend, which the owner may skip.
func TestNodeSetupFlowOffersBackend(t *testing.T) {
	h := newWalletHarness(t, sign.Policy{})
	h.node = &fakeNode{}
	h.reopen()
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

func TestNodeSendValidation(t *testing.T) {
	valid := url.Values{"address": {fakeAddresses[1]}, "amount": {"0.0015"}, "unit": {"btc"}, "target": {"6"}, "fee_rate": {"2.5"}}
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
		err    error // of Propose
		status int
		elem   string
		want   string
	}{
		{"no address", with("address", ""), nil, 400, "address-error", "Enter the address"},
		{"no amount", with("amount", ""), nil, 400, "amount-error", "Enter the amount"},
		{"nine decimals", with("amount", "0.000000001"), nil, 400, "amount-error", "at most 8 decimals"},
		{"comma", with("amount", "0,5"), nil, 400, "amount-error", "with a dot"},
		{"sats with decimals", with("amount", "1500.5", "unit", "sat"), nil, 400, "amount-error", "whole numbers"},
		{"zero", with("amount", "0"), nil, 400, "amount-error", "more than zero"},
		{"too much", with("amount", "21000001"), nil, 400, "amount-error", "more bitcoin than will ever exist"},
		{"fee rate words", with("fee_rate", "fast"), nil, 400, "fee-error", "in sat/vB"},
		{"fee rate zero", with("fee_rate", "0"), nil, 400, "fee-error", "more than zero"},
		{"fee rate absurd", with("fee_rate", "20000"), nil, 400, "fee-error", "absurd"},
		{"locktime", with("lock_time", "soon"), nil, 400, "locktime-error", "block height"},
		{"relative lock", with("relative_lock", "70000"), nil, 400, "rel-error", "1 to 65535"},
		{"invalid address", valid, fmt.Errorf("propose: %w: checksum mismatch", wallet.ErrInvalidAddress), 400, "address-error", "not a valid Bitcoin address"},
		{"wrong network", valid, fmt.Errorf("propose: %w", wallet.ErrWrongNetwork), 400, "address-error", "another Bitcoin network"},
		{"dust", with("amount", "300", "unit", "sat"), fmt.Errorf("propose: %w: 300 < 546", wallet.ErrAmountBelowDust), 400, "amount-error", "dust"},
		{"fee too low", with("fee_rate", "0.1"), fmt.Errorf("propose: %w", wallet.ErrFeeRateTooLow), 400, "fee-error", "below what the network relays"},
		{"funds", valid, fmt.Errorf("select coins: %w", &coinselect.InsufficientFundsError{Need: 250_000_000, Have: 150_000_000}), 422, "amount-error", "needs 2.50000000 BTC with the fee, the wallet can spend 1.50000000 BTC"},
		{"no backend", valid, fmt.Errorf("propose: %w", wallet.ErrNoBackend), 409, "send-alert", "choose a chain backend"},
		{"not synced", valid, fmt.Errorf("propose: %w", wallet.ErrNotSynced), 409, "send-alert", "still catching up"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _, fw := newNodeHarness(t)
			cookie, csrf := h.setup()
			fw.proposeErr = tt.err
			res := h.form("/node/send", tt.form, cookie, csrf)
			wantStatus(t, res, tt.status)
			wantElem(t, res, tt.elem, tt.want)
			if addr := tt.form.Get("address"); addr != "" && !strings.Contains(res.body, `value="`+addr+`"`) {
				t.Error("the form lost the address typed")
			}
			if tt.err == nil && len(fw.requests) != 0 {
				t.Error("an invalid form reached the wallet")
			}
			if strings.Contains(tt.elem, "lock") || strings.Contains(tt.elem, "rel") {
				wantBody(t, res, `<details class="advanced" open>`)
			}
		})
	}
}

func TestNodeSendRequest(t *testing.T) {
	h, _, fw := newNodeHarness(t)
	cookie, csrf := h.setup()
	// The form's page prefills the suggestion for the default target.
	page := h.do(req("GET", "/node/send", "", cookie, ""))
	wantBody(t, page, `id="fee_rate" name="fee_rate" type="text" inputmode="decimal" value="5"`, `data-rate="12.5"`,
		"Suggested for your choice: 5 sat/vB", "Spendable now: <strong class=\"mono\">1.50000000 BTC")
	tests := []struct {
		form url.Values
		want wallet.SendRequest
	}{
		{url.Values{"address": {"a1"}, "amount": {"0.0015"}, "unit": {"btc"}, "target": {"6"}, "fee_rate": {"2.5"}},
			wallet.SendRequest{Payments: []wallet.Payment{{Address: "a1", Amount: 150_000}}, FeeRate: 2_500, Target: 6}},
		{url.Values{"address": {" a2 "}, "amount": {"150,000"}, "unit": {"sat"}, "target": {"1"}},
			wallet.SendRequest{Payments: []wallet.Payment{{Address: "a2", Amount: 150_000}}, Target: 1}},
		{url.Values{"address": {"a3"}, "amount": {"12"}, "send_all": {"1"}, "target": {"144"}, "fee_rate": {"1.234"}, "lock_time": {"850000"}, "relative_lock": {"10"}},
			wallet.SendRequest{Payments: []wallet.Payment{{Address: "a3"}}, SendAll: true, FeeRate: 1_234, Target: 144, LockTime: 850_000, RelativeLock: 10}},
		{url.Values{"address": {"a4"}, "amount": {"1"}, "unit": {"btc"}},
			wallet.SendRequest{Payments: []wallet.Payment{{Address: "a4", Amount: 100_000_000}}, Target: 6}},
	}
	for i, tt := range tests {
		res := h.form("/node/send", tt.form, cookie, csrf)
		wantStatus(t, res, http.StatusOK)
		if got := fw.requests[i]; fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tt.want) {
			t.Errorf("form %v:\n got %+v\nwant %+v", tt.form, got, tt.want)
		}
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

func TestNodeReviewAndConfirm(t *testing.T) {
	h, _, fw := newNodeHarness(t)
	cookie, csrf := h.setup()
	form := url.Values{"address": {fakeAddresses[1]}, "amount": {"0.0015"}, "unit": {"btc"}, "fee_rate": {"5"}, "lock_time": {"850000"}}
	res, id := proposeThroughPage(t, h, cookie, csrf, form)
	// The review: each output with its amount, the change marked, the fee, what leaves the
	// wallet, the inputs and the timelock.
	wantElem(t, res, "review-leaving", "0.00150705 BTC")
	wantElem(t, res, "review-sent", "0.00150000 BTC")
	wantElem(t, res, "review-fee", "705 sat")
	wantElem(t, res, "review-rate", "5 sat/vB")
	wantBody(t, res, fakeAddresses[1], fakeAddresses[2], ">change<", ">pays<", "back to this wallet", "1.99849295 BTC",
		strings.Repeat("ab", 32)+":1", "Not before block 850,000", "the chain is at block 812", "Confirm and send")
	if strings.Contains(res.body, `name="password"`) {
		t.Error("a fresh session is asked for the password")
	}
	if m := inlineCode.FindString(res.body); m != "" {
		t.Errorf("inline code %q", m)
	}

	// Confirm: signed and sent, and only once.
	res = h.form("/node/confirm", url.Values{"proposal": {id}}, cookie, csrf)
	wantStatus(t, res, http.StatusOK)
	txid := chainhash.DoubleHashH([]byte(id)).String()
	wantElem(t, res, "sent-txid", txid)
	if len(fw.sent) != 1 || fw.sent[0] != id {
		t.Fatalf("sent %v", fw.sent)
	}
	res = h.form("/node/confirm", url.Values{"proposal": {id}}, cookie, csrf)
	wantStatus(t, res, http.StatusGone)
	if len(fw.sent) != 1 {
		t.Fatal("a proposal was sent twice")
	}
	// A proposal of another session cannot be confirmed.
	_, other := proposeThroughPage(t, h, cookie, csrf, form)
	c2, csrf2 := h.login()
	wantStatus(t, h.form("/node/confirm", url.Values{"proposal": {other}}, c2, csrf2), http.StatusGone)

	// The wallet's refusals at confirmation.
	tests := []struct {
		name   string
		err    error
		status int
		page   string // the page answered: "review" or "send"
		elem   string
		want   string
	}{
		{"expired", fmt.Errorf("send: %w", wallet.ErrProposalExpired), 409, "send", "send-alert", "review expired"},
		{"locked", fmt.Errorf("sign: %w", hsm.ErrLocked), 409, "review", "review-alert", "The wallet is locked"},
		{"policy", fmt.Errorf("sign: %w", &sign.PolicyError{Violations: []sign.Violation{{Rule: "max-fee-percent", Reason: "the fee is 12% of the amount, above 10%"}}}), 422, "review", "review-alert", "signing policy refuses"},
		{"timelock", fmt.Errorf("broadcast: %w", wallet.ErrLockTimeNotYet), 409, "send", "locktime-error", "timelock has not passed"},
		{"rejected", fmt.Errorf("broadcast: %w", &chain.RejectError{Code: -26, Reason: "min relay fee not met"}), 422, "review", "review-alert", "min relay fee not met"},
		{"node down", fmt.Errorf("broadcast: %w", &chain.Error{Op: "sendrawtransaction", Kind: chain.ErrNodeDown}), 503, "review", "review-alert", "cannot be reached"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, id := proposeThroughPage(t, h, cookie, csrf, form)
			fw.set(func(f *fakeWallet) { f.sendErr = tt.err })
			defer fw.set(func(f *fakeWallet) { f.sendErr = nil })
			res := h.form("/node/confirm", url.Values{"proposal": {id}}, cookie, csrf)
			wantStatus(t, res, tt.status)
			wantElem(t, res, tt.elem, tt.want)
			switch tt.page {
			case "send":
				wantBody(t, res, `action="/node/send"`, `value="`+fakeAddresses[1]+`"`, `value="0.0015"`)
			case "review":
				wantBody(t, res, `name="proposal" value="`+id+`"`)
			}
			if tt.name == "policy" {
				wantBody(t, res, "the fee is 12% of the amount, above 10%")
			}
		})
	}
}

func TestNodeConfirmStaleSession(t *testing.T) {
	h, _, fw := newNodeHarness(t)
	cookie, csrf := h.setup()
	h.clock.Advance(freshSession + time.Minute)
	form := url.Values{"address": {fakeAddresses[1]}, "amount": {"1000"}, "unit": {"sat"}}
	res, id := proposeThroughPage(t, h, cookie, csrf, form)
	wantBody(t, res, `name="password"`, "type the admin password to confirm")

	res = h.form("/node/confirm", url.Values{"proposal": {id}}, cookie, csrf)
	wantStatus(t, res, http.StatusUnauthorized)
	wantElem(t, res, "password-error", "Type the admin password")
	res = h.form("/node/confirm", url.Values{"proposal": {id}, "password": {"not the password"}}, cookie, csrf)
	wantStatus(t, res, http.StatusUnauthorized)
	wantElem(t, res, "password-error", "Wrong password.")
	if len(fw.sent) != 0 {
		t.Fatal("sent without the password")
	}
	res = h.form("/node/confirm", url.Values{"proposal": {id}, "password": {testPassword}}, cookie, csrf)
	wantStatus(t, res, http.StatusOK)
	if len(fw.sent) != 1 {
		t.Fatal("not sent with the password")
	}
	if strings.Contains(h.logs.String(), testPassword) {
		t.Fatal("the admin password is in the log")
	}

	// The API asks the same.
	m := h.api("POST", "/api/node/propose", wallet.SendRequest{Payments: []wallet.Payment{{Address: "x", Amount: 1000}}}, cookie, csrf).json(t)
	if m["need_password"] != true {
		t.Fatalf("propose: %v", m)
	}
	wantError(t, h.api("POST", "/api/node/send", map[string]string{"proposal": m["id"].(string)}, cookie, csrf), 401, "admin password")
	res = h.api("POST", "/api/node/send", map[string]string{"proposal": m["id"].(string), "password": testPassword}, cookie, csrf)
	wantStatus(t, res, http.StatusOK)
}

func TestNodeReceive(t *testing.T) {
	h, _, fw := newNodeHarness(t)
	cookie, csrf := h.setup()
	res := h.do(req("GET", "/node/receive", "", cookie, ""))
	wantStatus(t, res, http.StatusOK)
	wantElem(t, res, "receive-address", fakeAddresses[0])
	wantElem(t, res, "receive-uri", "bitcoin:"+fakeAddresses[0])
	wantBody(t, res, `<svg class="qr"`, "m/84h/0h/0h/0/0")
	// The same address on reload: the page does not burn addresses.
	h.do(req("GET", "/node/receive", "", cookie, ""))
	if fw.addresses != 1 {
		t.Errorf("%d addresses handed out for two views", fw.addresses)
	}
	res = h.do(req("GET", "/node/receive?amount=0.0015&label="+url.QueryEscape("Rent & co"), "", cookie, ""))
	wantElem(t, res, "receive-uri", "bitcoin:"+fakeAddresses[0]+"?amount=0.0015&label=Rent%20%26%20co")
	res = h.do(req("GET", "/node/receive?amount=0.1234567891", "", cookie, ""))
	wantStatus(t, res, http.StatusBadRequest)
	wantElem(t, res, "amount-error", "at most 8 decimals")
	wantElem(t, res, "receive-uri", "bitcoin:"+fakeAddresses[0])

	// A new address, asked with a POST.
	res = h.form("/node/receive", nil, cookie, csrf)
	wantStatus(t, res, http.StatusSeeOther)
	wantElem(t, h.do(req("GET", "/node/receive", "", cookie, "")), "receive-address", fakeAddresses[1])

	// The API: a new address with its URI.
	m := h.api("POST", "/api/node/address", map[string]any{"amount": 250_000, "label": "coffee"}, cookie, csrf).json(t)
	if m["address"] != fakeAddresses[2] || m["uri"] != "bitcoin:"+fakeAddresses[2]+"?amount=0.0025&label=coffee" {
		t.Errorf("POST /api/node/address: %v", m)
	}
	wantError(t, h.api("POST", "/api/node/address", map[string]any{"amount": -1}, cookie, csrf), 400, "amount")
}

func TestNodeHistory(t *testing.T) {
	h, _, fw := newNodeHarness(t)
	cookie, csrf := h.setup()
	now := time.Now()
	in, out, old, repl := strings.Repeat("01", 32), strings.Repeat("02", 32), strings.Repeat("03", 32), strings.Repeat("04", 32)
	fw.history = []wallet.HistoryEntry{
		{Entry: wallet.Entry{TxID: out, Received: 40_000, Sent: 100_000, FirstSeen: now}, Fee: 705, FeeRate: 5_000, Replaceable: true},
		{Entry: wallet.Entry{TxID: repl, Received: 0, Sent: 10_000, FirstSeen: now.Add(-time.Minute)}, Fee: 1_000, CPFPable: true},
		{Entry: wallet.Entry{TxID: old, Received: 0, Sent: 10_000, FirstSeen: now.Add(-2 * time.Minute)}, Fee: 500, ReplacedBy: repl, Replaceable: true},
		{Entry: wallet.Entry{TxID: in, Received: 150_000_000, Height: 800, FirstSeen: now.Add(-time.Hour)}, Confirmations: 13},
	}
	res := h.do(req("GET", "/node/history", "", cookie, ""))
	wantStatus(t, res, http.StatusOK)
	body := html.UnescapeString(res.body)
	for _, want := range []string{"−0.00060000 BTC", "+1.50000000 BTC", "13 confirmations", "unconfirmed", "705 sat · 5 sat/vB",
		`href="/node/bump?txid=` + out + `"`, `href="/node/cpfp?txid=` + repl + `"`, `<s>` + old + `</s>`,
		`Replaced by <a class="mono addr" href="#tx-` + repl + `">`, `id="tx-` + in + `"`} {
		if !strings.Contains(body, want) {
			t.Errorf("history lacks %q", want)
		}
	}
	if strings.Index(body, out) > strings.Index(body, in) {
		t.Error("history is not newest first")
	}
	if strings.Contains(body, `/node/bump?txid=`+old) {
		t.Error("a replaced transaction offers a bump")
	}

	// Bump: the form prefills a rate above the old one, the review shows what it replaces.
	res = h.do(req("GET", "/node/bump?txid="+out, "", cookie, ""))
	wantStatus(t, res, http.StatusOK)
	wantBody(t, res, `value="8"`, "Fee rate now", "5 sat/vB")
	res = h.form("/node/bump", url.Values{"txid": {out}, "fee_rate": {"2"}}, cookie, csrf)
	wantStatus(t, res, http.StatusOK)
	wantBody(t, res, "Review the fee bump", "This replaces your transaction", out, "Confirm and replace")
	if fw.bumps[0] != "bump "+out+" 2000" {
		t.Errorf("bump asked %v", fw.bumps)
	}
	id := regexp.MustCompile(`name="proposal" value="([^"]+)"`).FindStringSubmatch(res.body)[1]
	wantStatus(t, h.form("/node/confirm", url.Values{"proposal": {id}}, cookie, csrf), http.StatusOK)

	// CPFP.
	res = h.form("/node/cpfp", url.Values{"txid": {repl}, "fee_rate": {"20"}}, cookie, csrf)
	wantStatus(t, res, http.StatusOK)
	wantBody(t, res, "Review the child transaction", "at 20 sat/vB")

	// Refusals, next to the rate or above the form.
	fw.set(func(f *fakeWallet) {
		f.proposeErr = fmt.Errorf("bump: %w: it does not signal RBF", wallet.ErrNotReplaceable)
	})
	res = h.form("/node/bump", url.Values{"txid": {out}, "fee_rate": {"9"}}, cookie, csrf)
	wantStatus(t, res, http.StatusConflict)
	wantElem(t, res, "speedup-alert", "cannot be replaced (it does not signal RBF)")
	fw.set(func(f *fakeWallet) { f.proposeErr = fmt.Errorf("bump: %w", wallet.ErrFeeRateTooLow) })
	res = h.form("/node/bump", url.Values{"txid": {out}, "fee_rate": {"5.5"}}, cookie, csrf)
	wantStatus(t, res, http.StatusBadRequest)
	wantElem(t, res, "fee-error", "below what the network relays")
	res = h.form("/node/bump", url.Values{"txid": {out}, "fee_rate": {"x"}}, cookie, csrf)
	wantStatus(t, res, http.StatusBadRequest)
	wantElem(t, res, "fee-error", "in sat/vB")
	wantStatus(t, h.do(req("GET", "/node/bump?txid="+strings.Repeat("09", 32), "", cookie, "")), http.StatusNotFound)
	wantStatus(t, h.do(req("GET", "/node/cpfp?txid=nothex", "", cookie, "")), http.StatusBadRequest)

	// The API.
	var entries []map[string]any
	res = h.api("GET", "/api/node/history", nil, cookie, "")
	if err := json.Unmarshal([]byte(res.body), &entries); err != nil || len(entries) != 4 || entries[2]["replaced_by"] != repl {
		t.Errorf("GET /api/node/history: %v %s", err, res.body)
	}
	fw.set(func(f *fakeWallet) { f.proposeErr = nil })
	m := h.api("POST", "/api/node/bump", map[string]any{"txid": out, "fee_rate": 9000}, cookie, csrf).json(t)
	if m["kind"] != "bump" || m["replaces"] != out || m["psbt"] == "" {
		t.Errorf("POST /api/node/bump: %v", m)
	}
	wantError(t, h.api("POST", "/api/node/cpfp", map[string]any{"txid": "zz", "fee_rate": 0}, cookie, csrf), 400, "txid")
}

func TestNodeAPISend(t *testing.T) {
	h, _, fw := newNodeHarness(t)
	cookie, csrf := h.setup()
	wantError(t, h.api("POST", "/api/node/propose", map[string]any{"payments": []any{}}, cookie, csrf), 400, "at least one payment")
	wantError(t, h.api("POST", "/api/node/propose", map[string]any{"payments": []any{map[string]any{"address": "a", "amount": 0}}}, cookie, csrf), 400, "more than zero")
	wantError(t, h.api("POST", "/api/node/propose", map[string]any{"payments": []any{map[string]any{"address": "a", "amount": 1}}, "fee_rate": -1}, cookie, csrf), 400, "sat/kvB")
	fw.proposeErr = fmt.Errorf("propose: %w", wallet.ErrWrongNetwork)
	res := h.api("POST", "/api/node/propose", map[string]any{"payments": []any{map[string]any{"address": "tb1q", "amount": 1000}}}, cookie, csrf)
	wantError(t, res, 400, "another Bitcoin network")
	if f := res.json(t)["fields"].(map[string]any); f["address"] == nil {
		t.Errorf("fields %v", f)
	}
	fw.proposeErr = nil
	m := h.api("POST", "/api/node/propose", map[string]any{"payments": []any{map[string]any{"address": "a", "amount": 1000}}, "fee_rate": 2000}, cookie, csrf).json(t)
	if m["kind"] != "send" || m["fee_rate"].(float64) != 2000 || m["need_password"] != false || len(m["outputs"].([]any)) != 2 {
		t.Fatalf("proposal: %v", m)
	}
	res = h.api("POST", "/api/node/send", map[string]string{"proposal": m["id"].(string)}, cookie, csrf)
	wantStatus(t, res, http.StatusOK)
	if res.json(t)["txid"] != chainhash.DoubleHashH([]byte(m["id"].(string))).String() {
		t.Errorf("send: %s", res.body)
	}
	wantError(t, h.api("POST", "/api/node/send", map[string]string{"proposal": m["id"].(string)}, cookie, csrf), 410, "no such proposal")
	est := h.api("GET", "/api/node/fees?target=1", nil, cookie, "").json(t)
	if est["rate"].(float64) != 12_500 || est["source"] != "backend" {
		t.Errorf("fees: %v", est)
	}
	wantError(t, h.api("GET", "/api/node/fees?target=0", nil, cookie, ""), 400, "target")
	wantError(t, h.api("GET", "/api/node/fees?target=2", nil, cookie, ""), 503, "no fee estimate")
}

// TestNodeRoutesGuarded walks every node route: without a session each one refuses, and
// with a session but without the CSRF token every state-changing one refuses before the
// wallet or the backend sees anything.
func TestNodeRoutesGuarded(t *testing.T) {
	h, fn, fw := newNodeHarness(t)
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
			body := "txid=" + strings.Repeat("01", 32) + "&kind=p2p&address=a&amount=1&proposal=p1"
			if isAPI(rt.Pattern) {
				body = `{"kind":"p2p"}`
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
	if fn.saved != nil || len(fn.opened) != 0 || len(fw.requests) != 0 || len(fw.bumps) != 0 || fw.addresses != 0 {
		t.Errorf("a refused request reached the node: %+v", fn)
	}
}

func TestNodePagesHaveNoInlineCode(t *testing.T) {
	h, fn, fw := newNodeHarness(t)
	cookie, csrf := h.setup()
	fn.saved = &BackendSettings{Kind: BackendP2P, Peers: []string{"192.0.2.1:8333"}}
	fw.peers = []chain.Peer{{Addr: "192.0.2.1:8333", Agent: "/btcd:0.26.2/", Height: 12}}
	fw.history = []wallet.HistoryEntry{{Entry: wallet.Entry{TxID: strings.Repeat("01", 32), Sent: 1000}, Replaceable: true, CPFPable: true}}
	pages := map[string]string{}
	for _, p := range []string{"/node", "/node/backend", "/node/backend?setup=1", "/node/receive", "/node/receive?amount=1&label=x",
		"/node/send", "/node/history", "/node/bump?txid=" + strings.Repeat("01", 32), "/node/cpfp?txid=" + strings.Repeat("01", 32), "/"} {
		pages[p] = h.do(req("GET", p, "", cookie, "")).body
	}
	pages["backend errors"] = h.form("/node/backend", url.Values{"kind": {"rpc"}}, cookie, csrf).body
	pages["send errors"] = h.form("/node/send", url.Values{}, cookie, csrf).body
	res, id := proposeThroughPage(t, h, cookie, csrf, url.Values{"address": {"a"}, "amount": {"1"}})
	pages["review"] = res.body
	pages["sent"] = h.form("/node/confirm", url.Values{"proposal": {id}}, cookie, csrf).body
	for name, body := range pages {
		if !strings.Contains(body, "Anya Edge") {
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
