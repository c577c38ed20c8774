package web

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"

	"github.com/anya-edge/anya/hsm/keys"
	"github.com/anya-edge/anya/hsm/seal"
	"github.com/anya-edge/anya/hsm/sign"
	"github.com/anya-edge/anya/node/chain"
	"github.com/anya-edge/anya/node/regtest"
	"github.com/anya-edge/anya/node/wallet"
)

// The tests in this file need a chain: each runs its own btcd on regtest (node/regtest),
// which the wallet follows over RPC or through the light client. They are skipped with
// -short.

// TestNodeBackendChecks: the backend form against a real node: a wrong password, a
// certificate that is not the node's and a node on another network are refused with the
// sentences of backend.Check next to their field (or above the form) and can be saved
// anyway; the right settings are saved and used, and the password stays on the box.
func TestNodeBackendChecks(t *testing.T) {
	t.Parallel()
	node := startBtcd(t)
	rpc := rpcSettings(node)
	with := func(kv ...string) url.Values {
		out := url.Values{}
		for k, vs := range rpc {
			out[k] = vs
		}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	tests := []struct {
		name    string
		network keys.Network
		form    url.Values
		field   string // element id of the error; "" above the form
		want    string
	}{
		{"wrong password", keys.Regtest, with("pass", "not-the-password"), "pass-error", "The node refused the credentials"},
		{"not the node's certificate", keys.Regtest, with("cert", selfSignedCert(t)), "cert-error", "The secure connection to the node failed"},
		{"wrong network", keys.Testnet, rpc, "", "The node is on another Bitcoin network: this box is set up for testnet3."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newNodeHarness(t, nodeOpts{network: tt.network, noWallet: true})
			cookie, csrf := h.setup()
			res := h.form("/node/backend", tt.form, cookie, csrf)
			wantStatus(t, res, http.StatusUnprocessableEntity)
			if tt.field != "" {
				wantElem(t, res, tt.field, tt.want)
			} else {
				wantElem(t, res, "backend-problem", tt.want)
			}
			wantBody(t, res, `id="save-anyway"`)
			if _, ok := h.node.saved(t); ok || h.node.current() != nil {
				t.Fatal("settings that failed were saved or used")
			}
			for _, b := range h.node.openedBackends() {
				if !isClosed(b) {
					t.Error("a backend that failed its check was left open")
				}
			}
			if strings.Contains(res.body, tt.form.Get("pass")) {
				t.Error("the password was put back into the page")
			}
			res = h.form("/node/backend", url.Values{"action": {"save_anyway"}}, cookie, csrf)
			wantStatus(t, res, http.StatusSeeOther)
			s, ok := h.node.saved(t)
			if cur := h.node.current(); !ok || s.RPC.Pass != tt.form.Get("pass") || s.RPC.Cert != strings.TrimSpace(tt.form.Get("cert")) ||
				cur == nil || isClosed(cur) {
				t.Fatalf("save anyway: saved %v %v, in use %v", s, ok, cur)
			}
			wantStatus(t, h.form("/node/backend", url.Values{"action": {"save_anyway"}}, cookie, csrf), http.StatusGone)
		})
	}

	h := newNodeHarness(t, nodeOpts{noWallet: true})
	cookie, csrf := h.setup()
	form := with("peers", "127.0.0.1:1") // peers are not the node's: dropped
	res := h.form("/node/backend", form, cookie, csrf)
	wantStatus(t, res, http.StatusSeeOther)
	if res.Header.Get("Location") != "/node" {
		t.Errorf("after saving: to %q", res.Header.Get("Location"))
	}
	s, ok := h.node.saved(t)
	if !ok || s.Kind != "rpc" || s.RPC.Host != node.RPCAddr || s.RPC.User != node.User || s.RPC.Pass != node.Pass ||
		s.RPC.Cert != strings.TrimSpace(string(node.Cert)) || s.RPC.NoTLS || len(s.Peers) != 0 {
		t.Fatalf("saved %v", s)
	}
	first := h.node.current()
	if first == nil || isClosed(first) {
		t.Fatal("the backend saved is not in use")
	}

	// The form shows what is saved, without the password.
	page := h.do(req("GET", "/node/backend", "", cookie, ""))
	wantBody(t, page, `value="`+node.RPCAddr+`"`, "A password is saved", "Your own node at "+node.RPCAddr)
	if strings.Contains(page.body, node.Pass) {
		t.Fatal("the saved password is in the page")
	}
	// An empty password keeps the saved one for the same host (the check passes with it)...
	form.Set("pass", "")
	wantStatus(t, h.form("/node/backend", form, cookie, csrf), http.StatusSeeOther)
	if s, _ := h.node.saved(t); s.RPC.Pass != node.Pass {
		t.Fatalf("password not kept: %q", s.RPC.Pass)
	}
	if !isClosed(first) {
		t.Error("the backend replaced was left open")
	}
	// ...but never goes to another host.
	form.Set("host", "203.0.113.9:8334")
	res = h.form("/node/backend", form, cookie, csrf)
	wantStatus(t, res, http.StatusBadRequest)
	wantElem(t, res, "pass-error", "Enter the RPC password")

	// The light client, with the node as its peer, passes its check.
	wantStatus(t, h.form("/node/backend", url.Values{"kind": {"p2p"}, "peers": {node.P2PAddr}}, cookie, csrf), http.StatusSeeOther)
	if s, _ := h.node.saved(t); s.Kind != "p2p" || len(s.Peers) != 1 || s.Peers[0] != node.P2PAddr {
		t.Fatalf("light client not saved: %v", s)
	}
	wantBody(t, h.do(req("GET", "/node/backend", "", cookie, "")), "Built-in light client, 1 peer")

	// The API.
	m := h.api("GET", "/api/node/backend", nil, cookie, "").json(t)
	if m["kind"] != "p2p" {
		t.Errorf("GET /api/node/backend: %v", m)
	}
	res = h.api("POST", "/api/node/backend", map[string]any{"kind": "rpc", "host": "nohost"}, cookie, csrf)
	wantError(t, res, http.StatusBadRequest, "host: ")
	if f := res.json(t)["fields"].(map[string]any); f["pass"] == nil || f["host"] == nil {
		t.Errorf("fields: %v", f)
	}
	body := map[string]any{"kind": "rpc", "host": node.RPCAddr, "user": node.User, "pass": "wrong", "cert": string(node.Cert)}
	res = h.api("POST", "/api/node/backend", body, cookie, csrf)
	wantError(t, res, http.StatusUnprocessableEntity, "The node refused the credentials")
	if f := res.json(t)["fields"].(map[string]any); f["pass"] == nil {
		t.Errorf("fields: %v", f)
	}
	body["save_anyway"] = true
	wantStatus(t, h.api("POST", "/api/node/backend", body, cookie, csrf), http.StatusOK)
	if s, _ := h.node.saved(t); s.Kind != "rpc" || s.RPC.Pass != "wrong" {
		t.Errorf("API save anyway: %v", s)
	}
}

// TestNodeDashboardOnChain: the dashboard of a wallet that follows a real node: its
// balance (confirmed and not), the sync, the fee estimates the wallet gets from the node,
// and the peers of the light client.
func TestNodeDashboardOnChain(t *testing.T) {
	t.Parallel()
	node := startBtcd(t)
	// Paid before the wallet follows the node, which finds it all on its first catch-up.
	fundWallet(t, node, regtestAddress(t, 0, 0), 150_000_000)
	node.Generate(1)
	fundWallet(t, node, regtestAddress(t, 0, 1), 2_500) // stays unconfirmed
	// A learned fee model answers first; the page shows it beside the backend's sources.
	model := func(context.Context, uint32) (chain.FeeRate, error) { return 4321, nil }
	h := newNodeHarness(t, nodeOpts{feeModel: model})
	cookie, csrf := h.setup()
	wantStatus(t, h.form("/node/backend", rpcSettings(node), cookie, csrf), http.StatusSeeOther)
	waitSynced(t, h, node)
	waitWallet(t, h, "the payments", func(w *wallet.Wallet) bool {
		b, _ := w.Balance()
		return b.Confirmed == 150_000_000 && b.Unconfirmed == 2_500
	})
	_, height := node.Best()
	w := h.node.wallet(t)

	res := h.do(req("GET", "/node", "", cookie, ""))
	wantStatus(t, res, http.StatusOK)
	if strings.Contains(res.body, `id="no-backend"`) || strings.Contains(res.body, `id="peers"`) {
		t.Error("dashboard asks for a backend, or shows peers of a node over RPC")
	}
	wantElem(t, res, "balance-confirmed", "1.50000000")
	wantElem(t, res, "balance-unconfirmed", "0.00002500")
	wantElem(t, res, "balance-total", "1.50002500")
	wantElem(t, res, "sync-state", "In sync")
	wantElem(t, res, "sync-wallet", strconv.Itoa(int(height)))
	wantElem(t, res, "sync-chain", strconv.Itoa(int(height)))
	st := w.Sync()
	if !strings.Contains(st.Backend, "btcd") {
		t.Errorf("the wallet's backend is %q", st.Backend)
	}
	wantBody(t, res, st.Backend, "Your own node at "+node.RPCAddr)
	wantFeeTable(t, res.body, w)
	wantBody(t, res, `<th class="num">model</th>`, `<th class="num">backend</th>`, "<strong>4.321</strong>")

	// The API mirrors the page.
	m := h.api("GET", "/api/node", nil, cookie, "").json(t)
	if s := m["sync"].(map[string]any); s["state"] != "synced" || s["wallet"].(map[string]any)["height"] != float64(height) {
		t.Errorf("GET /api/node: sync %v", s)
	}
	if b := m["balance"].(map[string]any); b["confirmed"] != float64(150_000_000) || b["unconfirmed"] != float64(2_500) {
		t.Errorf("GET /api/node: balance %v", b)
	}
	if b := m["backend"].(map[string]any); b["host"] != node.RPCAddr || b["pass"] != nil || b["pass_set"] != true {
		t.Errorf("backend in the API: %v (the password must not be there)", b)
	}
	if fees := m["fees"].([]any); len(fees) != 3 {
		t.Errorf("fees: %v", fees)
	}

	// The light client, with the node as its peer, reports it.
	wantStatus(t, h.form("/node/backend", url.Values{"kind": {"p2p"}, "peers": {node.P2PAddr}}, cookie, csrf), http.StatusSeeOther)
	waitSynced(t, h, node)
	waitWallet(t, h, "the light client's peer", func(w *wallet.Wallet) bool { return len(w.Peers()) > 0 })
	res = h.do(req("GET", "/node", "", cookie, ""))
	wantElem(t, res, "sync-state", "In sync")
	wantBody(t, res, "Built-in light client, 1 peer", `id="peers"`)
	for _, p := range w.Peers() {
		if !strings.Contains(p.Agent, "btcd") || p.Addr != node.P2PAddr {
			t.Errorf("the light client's peer: %+v", p)
		}
		wantBody(t, res, p.Addr, p.Agent)
	}
	wantCleanPage(t, "dashboard with peers", res.body)
	if peers := h.api("GET", "/api/node", nil, cookie, "").json(t)["peers"].([]any); len(peers) != len(w.Peers()) {
		t.Errorf("peers in the API: %v", peers)
	}
}

// outputTo returns the value p's unsigned transaction pays to address, and whether it does.
func outputTo(t *testing.T, pk *psbt.Packet, address string) (int64, bool) {
	t.Helper()
	addr, err := btcutil.DecodeAddress(address, keys.Regtest.Params())
	if err != nil {
		t.Fatal(err)
	}
	script, _ := txscript.PayToAddrScript(addr)
	for _, o := range pk.UnsignedTx.TxOut {
		if bytes.Equal(o.PkScript, script) {
			return o.Value, true
		}
	}
	return 0, false
}

// rateOn reads a fee rate in sat/vB ("2.503") from a page element, as sat/kvB.
func rateOn(t *testing.T, res response, id string) float64 {
	t.Helper()
	text := strings.TrimSuffix(elemText(res.body, id), " sat/vB")
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		t.Fatalf("#%s is %q, not a fee rate", id, elemText(res.body, id))
	}
	return f * 1000
}

// TestNodeSendOnChain drives the send form, the review and the confirmation against a
// funded wallet that follows a real node: what the form asks of the wallet, the review
// of the wallet's proposal, the payment reaching the node's mempool, and each refusal of
// the wallet, the custody and the node at confirmation.
func TestNodeSendOnChain(t *testing.T) {
	t.Parallel()
	// btcd on regtest relays non-standard transactions, and a transaction whose locktime
	// has not passed counts as one: --rejectnonstd makes it refuse them, as on mainnet.
	node := startBtcd(t, regtest.Args("--rejectnonstd"))
	_, coin := fundWallet(t, node, regtestAddress(t, 0, 0), 150_000_000)
	node.Generate(1)
	h := newNodeHarness(t, nodeOpts{policy: sign.Policy{MaxFeeRate: 100}})
	cookie, csrf := h.setup()
	useBtcd(t, h, cookie, csrf, node)
	waitSynced(t, h, node)
	waitWallet(t, h, "the payment", func(w *wallet.Wallet) bool { b, _ := w.Balance(); return b.Confirmed == 150_000_000 })
	_, height := node.Best()
	w := h.node.wallet(t)
	ctx := context.Background()
	payee := node.MiningAddress().EncodeAddress()
	estimate := func(target uint32) int64 {
		est, err := w.EstimateFee(ctx, target)
		if err != nil {
			t.Fatal(err)
		}
		return int64(est.Rate)
	}

	// The form prefills the wallet's suggestion for the default target.
	page := h.do(req("GET", "/node/send", "", cookie, ""))
	wantBody(t, page, `id="fee_rate" name="fee_rate" type="text" inputmode="decimal" value="`+satVB(chain.FeeRate(estimate(6)))+`"`,
		`value="1" data-rate="`+satVB(chain.FeeRate(estimate(1)))+`"`, "Suggested for your choice: "+satVB(chain.FeeRate(estimate(6)))+" sat/vB",
		`Spendable now: <strong class="mono">1.50000000 BTC`)

	// More than the wallet has: refused at the amount, with what it would take.
	res := h.form("/node/send", url.Values{"address": {payee}, "amount": {"2"}, "unit": {"btc"}, "fee_rate": {"2"}}, cookie, csrf)
	wantStatus(t, res, http.StatusUnprocessableEntity)
	m := regexp.MustCompile(`this needs ([0-9.]+) BTC with the fee, the wallet can spend ([0-9.]+) BTC`).FindStringSubmatch(elemText(res.body, "amount-error"))
	if m == nil {
		t.Fatalf("amount error: %q", elemText(res.body, "amount-error"))
	}
	need, _ := strconv.ParseFloat(m[1], 64)
	have, _ := strconv.ParseFloat(m[2], 64)
	if need <= 2 || need > 2.0001 || have > 1.5 || have < 1.4999 {
		t.Errorf("needs %v BTC, can spend %v BTC: want a little more than 2 and a little less than 1.5", need, have)
	}

	// What the form asks of the wallet, read back from the wallet's proposal.
	allRBF := func(pk *psbt.Packet, seq uint32) bool {
		for _, in := range pk.UnsignedTx.TxIn {
			if in.Sequence != seq {
				return false
			}
		}
		return true
	}
	requests := []struct {
		form   url.Values
		amount int64 // to payee; -1: everything less the fee
		rate   int64 // sat/kvB asked
		lock   uint32
		seq    uint32
	}{
		{url.Values{"address": {payee}, "amount": {"0.0015"}, "unit": {"btc"}, "target": {"6"}, "fee_rate": {"2.5"}}, 150_000, 2_500, 0, wallet.SequenceRBF},
		{url.Values{"address": {" " + payee + " "}, "amount": {"150,000"}, "unit": {"sat"}, "target": {"1"}}, 150_000, estimate(1), 0, wallet.SequenceRBF},
		{url.Values{"address": {payee}, "amount": {"12"}, "send_all": {"1"}, "target": {"144"}, "fee_rate": {"1.234"},
			"lock_time": {"850000"}, "relative_lock": {"10"}}, -1, 1_234, 850_000, 10},
		{url.Values{"address": {payee}, "amount": {"1"}, "unit": {"btc"}}, 100_000_000, estimate(6), 0, wallet.SequenceRBF},
	}
	for i, rq := range requests {
		res, id := proposeThroughPage(t, h, cookie, csrf, rq.form)
		p := h.proposalOf(t, id)
		pk, err := psbt.NewFromRawBytes(bytes.NewReader(p.PSBT), false)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := outputTo(t, pk, payee)
		switch {
		case !ok:
			t.Errorf("form %d: the proposal does not pay %s", i, payee)
		case rq.amount < 0 && (len(pk.UnsignedTx.TxOut) != 1 || got != 150_000_000-p.Fee || p.Change != 0):
			t.Errorf("form %d: everything is %d sat to the payee with a fee of %d, outputs %d", i, got, p.Fee, len(pk.UnsignedTx.TxOut))
		case rq.amount >= 0 && got != rq.amount:
			t.Errorf("form %d: pays %d sat, want %d", i, got, rq.amount)
		}
		if r := int64(p.FeeRate); r < rq.rate || r >= rq.rate+1000 {
			t.Errorf("form %d: fee rate %d sat/kvB, asked %d", i, r, rq.rate)
		}
		if r := rateOn(t, res, "review-rate"); int64(r) != int64(p.FeeRate) {
			t.Errorf("form %d: the review shows %v sat/kvB, the proposal %d", i, r, p.FeeRate)
		}
		lock := pk.UnsignedTx.LockTime
		if rq.lock != 0 && lock != rq.lock || rq.lock == 0 && (lock > uint32(height) || lock+100 <= uint32(height)) {
			t.Errorf("form %d: locktime %d, asked %d (none: near block %d against fee sniping)", i, lock, rq.lock, height)
		}
		if !allRBF(pk, rq.seq) {
			t.Errorf("form %d: sequences %v, want %d", i, pk.UnsignedTx.TxIn, rq.seq)
		}
	}

	// The review of a payment, then its confirmation.
	form := url.Values{"address": {payee}, "amount": {"0.0015"}, "unit": {"btc"}, "fee_rate": {"5"}}
	res, id := proposeThroughPage(t, h, cookie, csrf, form)
	p := h.proposalOf(t, id)
	fee, change := p.Fee, 150_000_000-150_000-p.Fee
	if fee <= 0 || p.Change != change {
		t.Fatalf("proposal: fee %d, change %d", fee, p.Change)
	}
	wantElem(t, res, "review-leaving", btc(150_000+fee)+" BTC")
	wantElem(t, res, "review-sent", "0.00150000 BTC")
	wantElem(t, res, "review-fee", grouped(fee)+" sat")
	if r := rateOn(t, res, "review-rate"); r < 5000 || r >= 6000 {
		t.Errorf("review rate %v sat/kvB for 5 sat/vB", r)
	}
	wantElem(t, res, "review-locktime", "Block "+grouped(int64(p.LockTime)))
	wantBody(t, res, payee, regtestAddress(t, 1, 0), ">change<", ">pays<", "back to this wallet", btc(change)+" BTC",
		coin, "reached: the usual guard against fee sniping", "Confirm and send")
	if strings.Contains(res.body, `name="password"`) {
		t.Error("a fresh session is asked for the password")
	}
	wantCleanPage(t, "review", res.body)

	// Confirm: signed and sent, and only once.
	res = h.form("/node/confirm", url.Values{"proposal": {id}}, cookie, csrf)
	wantStatus(t, res, http.StatusOK)
	txid := elemText(res.body, "sent-txid")
	if !inMempool(node, txid) {
		t.Fatalf("the txid shown, %q, is not in the node's mempool %v", txid, node.Mempool())
	}
	wantBody(t, res, btc(150_000+fee)+" BTC leave the wallet")
	wantCleanPage(t, "sent", res.body)
	wantStatus(t, h.form("/node/confirm", url.Values{"proposal": {id}}, cookie, csrf), http.StatusGone)
	// A proposal of another session cannot be confirmed.
	_, other := proposeThroughPage(t, h, cookie, csrf, form)
	c2, csrf2 := h.login()
	wantStatus(t, h.form("/node/confirm", url.Values{"proposal": {other}}, c2, csrf2), http.StatusGone)

	// The refusals at confirmation. The coins are now the change of the payment,
	// unconfirmed.
	refused := func(name string, form url.Values, before func(id string), status int, page, elem, want string) response {
		t.Helper()
		_, id := proposeThroughPage(t, h, cookie, csrf, form)
		if before != nil {
			before(id)
		}
		res := h.form("/node/confirm", url.Values{"proposal": {id}}, cookie, csrf)
		if res.StatusCode != status || !strings.Contains(elemText(res.body, elem), want) {
			t.Fatalf("%s: %s, #%s %q, want %d and %q\n%.3000s", name, res.Status, elem, elemText(res.body, elem), status, want, res.body)
		}
		switch page {
		case "send": // back to the form, filled in
			wantBody(t, res, `action="/node/send"`, `value="`+form.Get("address")+`"`, `value="`+form.Get("amount")+`"`)
		case "review":
			wantBody(t, res, `name="proposal" value="`+id+`"`)
		}
		wantCleanPage(t, name, res.body)
		return res
	}
	small := url.Values{"address": {payee}, "amount": {"0.001"}, "unit": {"btc"}, "fee_rate": {"2"}}
	withForm := func(kv ...string) url.Values {
		out := url.Values{}
		for k, vs := range small {
			out[k] = vs
		}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	// The review expired (the wallet keeps a proposal 10 minutes): back to the form.
	refused("expired", small, func(string) { h.clock.Advance(11 * time.Minute) }, 409, "send", "send-alert", "review expired")
	// The keys locked: the review stays, with the reason.
	refused("locked", small, func(string) { h.custody.Lock() }, 409, "review", "review-alert", "The wallet is locked")
	if err := h.custody.Unlock(ctx, seal.Auth{Passphrase: []byte(walletPassphrase)}); err != nil {
		t.Fatal(err)
	}
	// Above the custody's policy (at most 100 sat/vB): refused with its reasons.
	res = refused("policy", withForm("fee_rate", "150"), nil, 422, "review", "review-alert", "signing policy refuses")
	wantElem(t, res, "review-alert", "exceeds the 100 sat/vB limit")
	// A timelock not passed yet: the review says so, and the node refuses it.
	lockForm := withForm("lock_time", strconv.Itoa(int(height)+100))
	res, _ = proposeThroughPage(t, h, cookie, csrf, lockForm)
	wantElem(t, res, "review-locktime", "Not before block "+grouped(int64(height)+100))
	wantBody(t, res, "the chain is at block "+grouped(int64(height)))
	res = refused("timelock", lockForm, nil, 409, "send", "locktime-error", "timelock has not passed")
	wantBody(t, res, `<details class="advanced" open>`)
	// Coins not old enough for the relative lock: the error is at that field.
	res = refused("relative lock", withForm("relative_lock", "10"), nil, 409, "send", "rel-error", "timelock has not passed")
	wantBody(t, res, `<details class="advanced" open>`)
	// A payment the node rejects: it spends the coin a payment sent meanwhile spent.
	coins, err := w.Coins()
	if err != nil || len(coins) != 1 {
		t.Fatalf("coins: %v %v, want the change of the payment only", coins, err)
	}
	spend := func(amount int64) string {
		m := h.api("POST", "/api/node/propose", map[string]any{"payments": []any{map[string]any{"address": payee, "amount": amount}},
			"fee_rate": 2000, "coins": []string{coins[0].OutPoint}}, cookie, csrf).json(t)
		id, _ := m["id"].(string)
		if id == "" {
			t.Fatalf("propose: %v", m)
		}
		return id
	}
	refused("rejected", small, func(id string) {
		// The form's proposal and this one spend the same coin (the only one).
		wantStatus(t, h.api("POST", "/api/node/send", map[string]string{"proposal": spend(200_000)}, cookie, csrf), http.StatusOK)
	}, 422, "review", "review-alert", "The network refused the transaction: ")
	// The node down when the owner confirms.
	refused("node down", small, func(string) {
		wantStatus(t, h.api("POST", "/api/node/backend", map[string]any{"kind": "rpc", "host": closedPort(t), "user": "u",
			"pass": "p", "no_tls": true, "save_anyway": true}, cookie, csrf), http.StatusOK)
	}, 503, "review", "review-alert", "cannot be reached")
	useBtcd(t, h, cookie, csrf, node)

	// A session that logged in more than 15 minutes ago confirms with the admin password.
	h.clock.Advance(freshSession)
	sent := func() int { hist, _ := w.History(); return len(hist) }
	before := sent()
	res, id = proposeThroughPage(t, h, cookie, csrf, small)
	wantBody(t, res, `name="password"`, "type the admin password to confirm")
	res = h.form("/node/confirm", url.Values{"proposal": {id}}, cookie, csrf)
	wantStatus(t, res, http.StatusUnauthorized)
	wantElem(t, res, "password-error", "Type the admin password")
	res = h.form("/node/confirm", url.Values{"proposal": {id}, "password": {"not the password"}}, cookie, csrf)
	wantStatus(t, res, http.StatusUnauthorized)
	wantElem(t, res, "password-error", "Wrong password.")
	if sent() != before {
		t.Fatal("sent without the password")
	}
	res = h.form("/node/confirm", url.Values{"proposal": {id}, "password": {testPassword}}, cookie, csrf)
	wantStatus(t, res, http.StatusOK)
	if sent() != before+1 || !inMempool(node, elemText(res.body, "sent-txid")) {
		t.Fatal("not sent with the password")
	}
	if strings.Contains(h.logs.String(), testPassword) {
		t.Fatal("the admin password is in the log")
	}
	pay := map[string]any{"payments": []any{map[string]any{"address": payee, "amount": 10_000}}, "fee_rate": 2000}
	mp := h.api("POST", "/api/node/propose", pay, cookie, csrf).json(t)
	if mp["need_password"] != true {
		t.Fatalf("propose: %v", mp)
	}
	wantError(t, h.api("POST", "/api/node/send", map[string]string{"proposal": mp["id"].(string)}, cookie, csrf), 401, "admin password")
	wantStatus(t, h.api("POST", "/api/node/send", map[string]string{"proposal": mp["id"].(string), "password": testPassword}, cookie, csrf), 200)

	// The API in a fresh session: propose, send, and only once.
	cookie, csrf = h.login()
	mp = h.api("POST", "/api/node/propose", pay, cookie, csrf).json(t)
	if mp["kind"] != "send" || mp["fee_rate"].(float64) < 2000 || mp["fee_rate"].(float64) >= 3000 || mp["need_password"] != false ||
		len(mp["outputs"].([]any)) != 2 || mp["psbt"] == "" {
		t.Fatalf("proposal: %v", mp)
	}
	res = h.api("POST", "/api/node/send", map[string]string{"proposal": mp["id"].(string)}, cookie, csrf)
	wantStatus(t, res, http.StatusOK)
	if txid, _ := res.json(t)["txid"].(string); !inMempool(node, txid) {
		t.Errorf("send: %s is not in the node's mempool", res.body)
	}
	wantError(t, h.api("POST", "/api/node/send", map[string]string{"proposal": mp["id"].(string)}, cookie, csrf), 410, "no such proposal")
}

// TestNodeHistoryOnChain: the history of a wallet that follows a real node, with
// payments in (confirmed and not) and out, a fee bump (RBF) and a child paying for its
// parent (CPFP) made on the pages, and the wallet's refusals.
func TestNodeHistoryOnChain(t *testing.T) {
	t.Parallel()
	node := startBtcd(t)
	// Payments in, two confirmed and one not, before the wallet follows the node, which
	// finds them all on its first catch-up.
	inA, coinA := fundWallet(t, node, regtestAddress(t, 0, 0), 150_000_000)
	inB, coinB := fundWallet(t, node, regtestAddress(t, 0, 1), 50_000_000)
	node.Generate(3)
	inC, _ := fundWallet(t, node, regtestAddress(t, 0, 2), 20_000_000)
	pending := inC.TxHash().String()
	h := newNodeHarness(t, nodeOpts{})
	cookie, csrf := h.setup()
	useBtcd(t, h, cookie, csrf, node)
	waitSynced(t, h, node)
	waitWallet(t, h, "the payments", func(w *wallet.Wallet) bool {
		b, _ := w.Balance()
		return b.Confirmed == 200_000_000 && b.Unconfirmed == 20_000_000
	})
	w := h.node.wallet(t)
	payee := node.MiningAddress().EncodeAddress()

	// Two payments out, each from its own coin, through the API.
	send := func(coin string, amount int64, rate int) (txid string, fee int64) {
		m := h.api("POST", "/api/node/propose", map[string]any{"payments": []any{map[string]any{"address": payee, "amount": amount}},
			"fee_rate": rate, "coins": []string{coin}}, cookie, csrf).json(t)
		res := h.api("POST", "/api/node/send", map[string]string{"proposal": m["id"].(string)}, cookie, csrf)
		wantStatus(t, res, http.StatusOK)
		return res.json(t)["txid"].(string), int64(m["fee"].(float64))
	}
	out, outFee := send(coinA, 100_000, 5000)
	slow, _ := send(coinB, 10_000, 2000)
	// The payment's fee rate, from the transaction the node has.
	outHash, _ := chainhash.NewHashFromStr(out)
	outTx, err := node.RPC().GetRawTransaction(outHash)
	if err != nil {
		t.Fatal(err)
	}
	outRate := outFee * 1000 / regtest.VSize(outTx.MsgTx())

	res := h.do(req("GET", "/node/history", "", cookie, ""))
	wantStatus(t, res, http.StatusOK)
	body := html.UnescapeString(res.body)
	for _, want := range []string{"−" + btc(100_000+outFee) + " BTC", "+1.50000000 BTC", "+0.50000000 BTC", "+0.20000000 BTC",
		"3 confirmations", "unconfirmed", grouped(outFee) + " sat · " + satVB(chain.FeeRate(outRate)) + " sat/vB",
		`href="/node/bump?txid=` + out + `"`, `href="/node/bump?txid=` + slow + `"`,
		`href="/node/cpfp?txid=` + out + `"`, `href="/node/cpfp?txid=` + pending + `"`, `id="tx-` + inA.TxHash().String() + `"`} {
		if !strings.Contains(body, want) {
			t.Errorf("history lacks %q", want)
		}
	}
	if strings.Index(body, out) > strings.Index(body, inA.TxHash().String()) {
		t.Error("history is not newest first")
	}
	if strings.Contains(body, `/node/bump?txid=`+pending) {
		t.Error("a payment in (not the wallet's inputs) offers a bump")
	}
	wantCleanPage(t, "history", res.body)

	// Bump: the form prefills a rate above the old one (and at least the estimate).
	suggested := outRate + 1000
	if est, _ := w.EstimateFee(context.Background(), 3); int64(est.Rate) > suggested {
		suggested = int64(est.Rate)
	}
	res = h.do(req("GET", "/node/bump?txid="+out, "", cookie, ""))
	wantStatus(t, res, http.StatusOK)
	wantBody(t, res, `value="`+satVB(chain.FeeRate(suggested))+`"`, "Fee rate now", satVB(chain.FeeRate(outRate))+" sat/vB")
	wantCleanPage(t, "bump", res.body)
	// The wallet's refusals, next to the rate or above the form.
	res = h.form("/node/bump", url.Values{"txid": {out}, "fee_rate": {"2"}}, cookie, csrf)
	wantStatus(t, res, http.StatusBadRequest)
	wantElem(t, res, "fee-error", "below what the network relays")
	res = h.form("/node/bump", url.Values{"txid": {out}, "fee_rate": {"x"}}, cookie, csrf)
	wantStatus(t, res, http.StatusBadRequest)
	wantElem(t, res, "fee-error", "in sat/vB")
	res = h.form("/node/bump", url.Values{"txid": {pending}, "fee_rate": {"9"}}, cookie, csrf)
	wantStatus(t, res, http.StatusConflict)
	wantElem(t, res, "speedup-alert", "This transaction cannot be replaced (")
	res = h.form("/node/bump", url.Values{"txid": {inB.TxHash().String()}, "fee_rate": {"9"}}, cookie, csrf)
	wantStatus(t, res, http.StatusConflict)
	wantElem(t, res, "speedup-alert", "already confirmed")
	wantStatus(t, h.do(req("GET", "/node/bump?txid="+strings.Repeat("09", 32), "", cookie, "")), http.StatusNotFound)
	wantStatus(t, h.do(req("GET", "/node/cpfp?txid=nothex", "", cookie, "")), http.StatusBadRequest)

	// The bump, reviewed and confirmed: the node has the replacement instead.
	res = h.form("/node/bump", url.Values{"txid": {out}, "fee_rate": {"8"}}, cookie, csrf)
	wantStatus(t, res, http.StatusOK)
	wantBody(t, res, "Review the fee bump", "This replaces your transaction", out, "Confirm and replace")
	wantCleanPage(t, "bump review", res.body)
	id := regexp.MustCompile(`name="proposal" value="([^"]+)"`).FindStringSubmatch(res.body)[1]
	res = h.form("/node/confirm", url.Values{"proposal": {id}}, cookie, csrf)
	wantStatus(t, res, http.StatusOK)
	wantBody(t, res, "Replacement sent")
	bump := elemText(res.body, "sent-txid")
	if !inMempool(node, bump) || inMempool(node, out) {
		t.Fatalf("the node's mempool %v: want the replacement %s instead of %s", node.Mempool(), bump, out)
	}
	res = h.do(req("GET", "/node/history", "", cookie, ""))
	body = html.UnescapeString(res.body)
	for _, want := range []string{`<s>` + out + `</s>`, `Replaced by <a class="mono addr" href="#tx-` + bump + `">`,
		`href="/node/bump?txid=` + bump + `"`} {
		if !strings.Contains(body, want) {
			t.Errorf("history after the bump lacks %q", want)
		}
	}
	if strings.Contains(body, `/node/bump?txid=`+out) {
		t.Error("a replaced transaction offers a bump")
	}

	// CPFP: the child's review, with the package's rate; the node takes both.
	res = h.do(req("GET", "/node/cpfp?txid="+pending, "", cookie, ""))
	wantStatus(t, res, http.StatusOK)
	wantCleanPage(t, "cpfp", res.body)
	res = h.form("/node/cpfp", url.Values{"txid": {slow}, "fee_rate": {"20"}}, cookie, csrf)
	wantStatus(t, res, http.StatusOK)
	wantBody(t, res, "Review the child transaction", slow)
	pm := regexp.MustCompile(`so miners take both together at ([0-9.]+) sat/vB`).FindStringSubmatch(html.UnescapeString(res.body))
	if pm == nil {
		t.Fatalf("no package rate in the review:\n%.3000s", res.body)
	}
	if r, _ := strconv.ParseFloat(pm[1], 64); r < 20 || r >= 21 {
		t.Errorf("package rate %v sat/vB for 20 asked", r)
	}
	wantCleanPage(t, "cpfp review", res.body)
	id = regexp.MustCompile(`name="proposal" value="([^"]+)"`).FindStringSubmatch(res.body)[1]
	res = h.form("/node/confirm", url.Values{"proposal": {id}}, cookie, csrf)
	wantStatus(t, res, http.StatusOK)
	if child := elemText(res.body, "sent-txid"); !inMempool(node, child) || !inMempool(node, slow) {
		t.Errorf("the node's mempool %v lacks the child %s or its parent %s", node.Mempool(), child, slow)
	}

	// The API.
	var entries []map[string]any
	res = h.api("GET", "/api/node/history", nil, cookie, "")
	if err := json.Unmarshal([]byte(res.body), &entries); err != nil {
		t.Fatal(err)
	}
	replacedBy := ""
	for _, e := range entries {
		if e["txid"] == out {
			replacedBy, _ = e["replaced_by"].(string)
		}
	}
	if len(entries) != 7 || replacedBy != bump { // 3 in, 2 out, the bump, the child
		t.Errorf("GET /api/node/history: %d entries, %s replaced by %q: %s", len(entries), out, replacedBy, res.body)
	}
	m := h.api("POST", "/api/node/bump", map[string]any{"txid": bump, "fee_rate": 12_000}, cookie, csrf).json(t)
	if m["kind"] != "bump" || m["replaces"] != bump || m["psbt"] == "" {
		t.Errorf("POST /api/node/bump: %v", m)
	}
	wantError(t, h.api("POST", "/api/node/cpfp", map[string]any{"txid": "zz", "fee_rate": 0}, cookie, csrf), 400, "txid")
}
