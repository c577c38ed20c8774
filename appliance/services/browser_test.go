package services

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/chromedp/chromedp"

	"github.com/anya-edge/anya/appliance/control"
	"github.com/anya-edge/anya/appliance/internal/browsertest"
	"github.com/anya-edge/anya/appliance/logring"
	"github.com/anya-edge/anya/hsm/keys"
	"github.com/anya-edge/anya/hsm/seal"
	"github.com/anya-edge/anya/node/regtest"
	"github.com/anya-edge/anya/node/wallet"
)

const (
	testPassword   = "correct horse battery staple"
	testPassphrase = "wallet passphrase for the test"
	// testMnemonic is the BIP84 test vector's mnemonic: a wallet restored from it.
	testMnemonic = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
)

// box is the services of one box, running in the test on a temporary data directory, on
// the regtest network.
type box struct {
	addr string
	dir  string // the data directory
	usb  string // where the test "mounts" USB sticks (Config.StickRoot)
	logs *browsertest.LockedBuffer
	stop func()
}

// startBox runs the services as anyad does, with the passphrase protection only (cheap
// argon2 parameters) and a wallet service that polls its backend often.
func startBox(t *testing.T) *box {
	t.Helper()
	dir := t.TempDir()
	logs := &browsertest.LockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ring := logring.New(1000)
	host := &control.Host{Version: "browser-test", DataDir: dir, Logs: ring, Started: time.Now()}
	pass, err := seal.NewPassphrase(seal.WithArgon2(seal.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{
			DataDir: dir, Listen: "127.0.0.1:0", System: host, Log: log, Version: "browser-test", Network: keys.Regtest,
			Ready: func(a net.Addr) { ready <- a }, StickRoot: filepath.Join(dir, "usb"),
			sealers: func(map[string]seal.Sealer) map[string]seal.Sealer {
				return map[string]seal.Sealer{seal.KindPassphrase: pass}
			},
			walletConfig: func(c *wallet.Config) {
				c.RetryDelay, c.StatusInterval = 300*time.Millisecond, time.Second
			},
		})
	}()
	b := &box{logs: logs, dir: dir, usb: filepath.Join(dir, "usb")}
	select {
	case a := <-ready:
		b.addr = a.String()
	case err := <-done:
		cancel()
		t.Fatalf("services: %v\n%s", err, logs)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("services not ready:\n%s", logs)
	}
	stopped := false
	b.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("services: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("services did not stop")
		}
	}
	t.Cleanup(b.stop)
	return b
}

// TestBrowserNode walks the owner's wallet pages in headless Chromium at a phone's size,
// against the real services (custody, wallet service, chain backend) and a real btcd in
// regtest: the wallet restored on the setup pages, the node chosen on the backend page
// (first with a wrong password, refused next to the field), the dashboard following the
// sync by itself, a receive address paid by btcd, the balance, a payment to btcd through
// the review screen, and the history. Screenshots named node-*.png go to $ANYA_ARTIFACTS.
func TestBrowserNode(t *testing.T) {
	artifacts := browsertest.Artifacts(t)
	node := regtest.Start(t)
	node.Generate(101) // a mature coinbase to pay the wallet from
	bx := startBox(t)
	base := "http://" + bx.addr
	// Expected in the console: the answers 401 and 422 of the refused forms.
	b := browsertest.Start(t, base, artifacts, func(m chromedp.ConsoleMessage) bool {
		return strings.Contains(m.Text, "status of 422") || strings.Contains(m.Text, "status of 401")
	})
	b.Log = func() string { return "services' log:\n" + tail(bx.logs.String(), 60) }
	main := chromedp.CSS("main")
	text := func(what string, sel any) string {
		t.Helper()
		switch s := sel.(type) {
		case string:
			return strings.TrimSpace(b.Run(what, chromedp.Text(chromedp.ID(s))))
		default:
			return strings.TrimSpace(b.Run(what, chromedp.Text(main)))
		}
	}
	// waitFor polls a JavaScript condition for up to limit.
	waitFor := func(what, cond string, limit time.Duration) {
		t.Helper()
		ctx, cancel := context.WithTimeout(b.Ctx, limit)
		defer cancel()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(250*time.Millisecond))); err != nil {
			shot := strings.ReplaceAll(what, " ", "-") + "-failed.png"
			b.Screenshot(shot)
			t.Fatalf("%s: %v (screenshot %s)\nservices' log:\n%s", what, err, shot, tail(bx.logs.String(), 80))
		}
	}
	start := time.Now()

	// Setup: the admin password, then the wallet restored from its words.
	b.Step("setup",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.SendKeys(chromedp.ID("confirm"), testPassword),
		chromedp.Click(chromedp.CSS(`form[action="/setup"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/wallet/restore"]`)),
		chromedp.Click(chromedp.CSS(`a[href="/wallet/restore"]`)),
		chromedp.WaitVisible(chromedp.ID("mnemonic")),
		chromedp.SendKeys(chromedp.ID("mnemonic"), testMnemonic),
		chromedp.Click(chromedp.CSS(`form[action="/wallet/restore"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name=protection][value=passphrase]`)),
		chromedp.Click(chromedp.CSS(`input[name=protection][value=passphrase]`)),
		chromedp.SendKeys(chromedp.ID("passphrase"), testPassphrase),
		chromedp.SendKeys(chromedp.ID("confirm"), testPassphrase),
		chromedp.Click(chromedp.CSS(`form[action="/wallet/protect"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`form.backend`)),
	)
	// Step 3 of the setup: the chain backend.
	b.WantPath("/node/backend?setup=1")
	if txt := strings.ToLower(text("backend page", nil)); !strings.Contains(txt, "setup · step 3") || !strings.Contains(txt, "skip for now") {
		t.Errorf("backend step:\n%s", txt)
	}
	b.Step("choose the node",
		chromedp.Click(chromedp.CSS(`input[name=kind][value=rpc]`)),
		chromedp.WaitVisible(chromedp.ID("host")),
		chromedp.SendKeys(chromedp.ID("host"), node.RPCAddr),
		chromedp.SendKeys(chromedp.ID("user"), node.User),
		chromedp.SendKeys(chromedp.ID("pass"), "not the password"),
		chromedp.SetValue(chromedp.ID("cert"), string(node.Cert)),
	)
	b.FitsWidth("backend form")
	b.Screenshot("node-backend.png")
	b.Step("check a wrong password", chromedp.Click(chromedp.CSS(`form.backend button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("pass-error")))
	if msg := text("password error", "pass-error"); !strings.Contains(msg, "refused the credentials") {
		t.Errorf("wrong password: %q", msg)
	}
	if n := browsertest.Run(b, "save anyway offered", chromedp.Evaluate[int](`document.querySelectorAll("#save-anyway").length`)); n != 1 {
		t.Error("no Save anyway after a failed check")
	}
	b.FitsWidth("backend refused")
	b.Screenshot("node-backend-refused.png")
	b.Step("the right password",
		chromedp.SendKeys(chromedp.ID("pass"), node.Pass),
		chromedp.Click(chromedp.CSS(`form.backend button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("sync-state")),
	)
	b.WantPath("/node")

	// The dashboard follows the sync by itself (no reload by the test).
	_, height := node.Best()
	waitFor("in sync", fmt.Sprintf(`(() => { const s = document.getElementById("sync-state"), w = document.getElementById("sync-wallet");
		return !!s && s.dataset.state === "synced" && !!w && w.textContent.trim() === "%d"; })()`, height), time.Minute)
	waitFor("the dashboard refreshes itself", `!!document.getElementById("node-live").dataset.updated`, 20*time.Second)
	if txt := text("dashboard", nil); !strings.Contains(txt, "btcd") || !strings.Contains(txt, "0.00000000") {
		t.Errorf("dashboard:\n%s", txt)
	}
	b.FitsWidth("dashboard")
	b.Screenshot("node-dashboard-synced.png")

	// Receive: the address the page gives, paid by btcd.
	b.Step("receive", chromedp.Click(chromedp.CSS(`.subnav a[href="/node/receive"]`)), chromedp.WaitVisible(chromedp.ID("receive-qr")))
	address := text("address", "receive-address")
	if uri := text("uri", "receive-uri"); uri != "bitcoin:"+address || !strings.HasPrefix(address, "bcrt1q") {
		t.Fatalf("receive: address %q, URI %q", address, uri)
	}
	b.Step("amount and label", chromedp.SendKeys(chromedp.ID("amount"), "1"), chromedp.SendKeys(chromedp.ID("label"), "from btcd"))
	// Mark this page, to wait for the next one, which has the same elements.
	browsertest.Run(b, "mark the page", chromedp.Evaluate[bool](`document.documentElement.dataset.stale = "1"; true`))
	b.Step("update the code", chromedp.Click(chromedp.CSS(`form[action="/node/receive"][method=get] button`)),
		chromedp.WaitVisible(chromedp.CSS(`html:not([data-stale]) #receive-qr`)))
	if uri := text("uri with amount", "receive-uri"); uri != "bitcoin:"+address+"?amount=1&label=from%20btcd" {
		t.Errorf("URI %q", uri)
	}
	if again := text("address after the amount", "receive-address"); again != address {
		t.Errorf("the address changed with the amount: %q, then %q", address, again)
	}
	b.FitsWidth("receive")
	b.Screenshot("node-receive.png")
	addr, err := btcutil.DecodeAddress(address, node.Params)
	if err != nil {
		t.Fatal(err)
	}
	node.SendTo(addr, btcutil.SatoshiPerBitcoin)
	node.Generate(1)

	// The balance, on the dashboard, without a reload.
	b.Step("dashboard", chromedp.Click(chromedp.CSS(`.subnav a[href="/node"]`)), chromedp.WaitVisible(chromedp.ID("balance-confirmed")))
	waitFor("balance", `(() => { const e = document.getElementById("balance-confirmed"); return !!e && e.textContent.trim() === "1.00000000"; })()`, time.Minute)
	b.Screenshot("node-dashboard-funded.png")

	// Send 0.25 BTC to btcd's address through the review screen.
	dest := node.MiningAddress().EncodeAddress()
	b.Step("send form", chromedp.Click(chromedp.CSS(`.subnav a[href="/node/send"]`)), chromedp.WaitVisible(chromedp.ID("address")),
		chromedp.SendKeys(chromedp.ID("address"), dest),
		chromedp.SendKeys(chromedp.ID("amount"), "0.25"),
	)
	// Another target puts its suggested fee rate in the field.
	b.Step("target", chromedp.Click(chromedp.CSS(`input[name=target][value="144"]`)))
	if same := browsertest.Run(b, "fee of the target", chromedp.Evaluate[bool](
		`document.getElementById("fee_rate").value === document.querySelector('input[name=target][value="144"]').dataset.rate`)); !same {
		t.Error("the fee rate did not follow the target")
	}
	b.FitsWidth("send")
	b.Screenshot("node-send.png")
	b.Step("review", chromedp.Click(chromedp.CSS(`form.send button[type=submit]`)), chromedp.WaitVisible(chromedp.ID("review")))
	review := text("review", nil)
	for _, want := range []string{"Review the payment", dest, "0.25000000 BTC", "change", "Confirm and send"} {
		if !strings.Contains(review, want) {
			t.Errorf("review lacks %q:\n%s", want, review)
		}
	}
	b.FitsWidth("review")
	b.Screenshot("node-review.png")
	b.Step("confirm", chromedp.Click(chromedp.ID("confirm-send")), chromedp.WaitVisible(chromedp.ID("sent-txid")))
	txid := text("txid", "sent-txid")
	h, err := chainhash.NewHashFromStr(txid)
	if err != nil {
		t.Fatalf("sent page: txid %q", txid)
	}
	b.Screenshot("node-sent.png")
	inMempool := false
	for _, m := range node.Mempool() {
		inMempool = inMempool || *m == *h
	}
	if !inMempool {
		t.Fatalf("btcd's mempool lacks %s", txid)
	}

	// Before it confirms, bump its fee from the history: the review, then the replacement.
	b.Step("history before mining", chromedp.Click(chromedp.CSS(`a[href="/node/history#tx-`+txid+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/node/bump?txid=`+txid+`"]`)))
	if st := text("unconfirmed", "tx-"+txid); !strings.Contains(st, "unconfirmed") {
		t.Errorf("the payment before mining: %q", st)
	}
	b.Screenshot("node-history-unconfirmed.png")
	b.Step("bump", chromedp.Click(chromedp.CSS(`a[href="/node/bump?txid=`+txid+`"]`)), chromedp.WaitVisible(chromedp.ID("fee_rate")),
		chromedp.SetValue(chromedp.ID("fee_rate"), "20"))
	b.FitsWidth("bump")
	b.Screenshot("node-bump.png")
	b.Step("bump review", chromedp.Click(chromedp.CSS(`form[action="/node/bump"] button[type=submit]`)), chromedp.WaitVisible(chromedp.ID("review")))
	if review := text("bump review", nil); !strings.Contains(review, "Review the fee bump") || !strings.Contains(review, txid) ||
		!strings.Contains(review, "20 sat/vB") {
		t.Errorf("bump review:\n%s", review)
	}
	b.Screenshot("node-bump-review.png")
	b.Step("confirm the bump", chromedp.Click(chromedp.ID("confirm-send")), chromedp.WaitVisible(chromedp.ID("sent-txid")))
	oldTxid := txid
	txid = text("replacement txid", "sent-txid")
	if h, err = chainhash.NewHashFromStr(txid); err != nil || txid == oldTxid {
		t.Fatalf("replacement txid %q (replaces %s)", txid, oldTxid)
	}
	mempool := map[chainhash.Hash]bool{}
	for _, m := range node.Mempool() {
		mempool[*m] = true
	}
	if old, _ := chainhash.NewHashFromStr(oldTxid); !mempool[*h] || mempool[*old] {
		t.Fatalf("btcd's mempool after the bump: has the replacement %v, the original %v", mempool[*h], mempool[*old])
	}
	node.Generate(1)

	// The history: the payment out with its fee, the payment in, both confirmed.
	b.Step("history", chromedp.Click(chromedp.CSS(`.subnav a[href="/node/history"]`)), chromedp.WaitVisible(chromedp.ID("history")))
	waitFor("history confirmed", fmt.Sprintf(`(async () => {
		const r = await fetch("/node/history", {cache: "no-store"}); const d = new DOMParser().parseFromString(await r.text(), "text/html");
		const e = d.getElementById("tx-%s"); return !!e && e.querySelector(".tx-conf").textContent.trim() === "1 confirmation"; })()`, txid), time.Minute)
	b.Step("reload history", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("tx-"+txid)))
	hist := text("history", nil)
	for _, want := range []string{"−0.25", "+1.00000000 BTC", "1 confirmation", "2 confirmations", "fee", txid,
		"Replaced by " + txid} {
		if !strings.Contains(hist, want) {
			t.Errorf("history lacks %q:\n%s", want, hist)
		}
	}
	if n := browsertest.Run(b, "struck out", chromedp.Evaluate[int](`document.querySelectorAll("#tx-`+oldTxid+`.is-replaced s").length`)); n == 0 {
		t.Error("the replaced payment is not struck out")
	}
	if strings.Index(hist, txid) > strings.Index(hist, "+1.00000000") {
		t.Error("history is not newest first")
	}
	b.FitsWidth("history")
	b.Screenshot("node-history.png")
	b.Step("balance after", chromedp.Click(chromedp.CSS(`.subnav a[href="/node"]`)), chromedp.WaitVisible(chromedp.ID("balance-confirmed")))
	waitFor("balance after the payment", `(() => { const e = document.getElementById("balance-confirmed"); return !!e && e.textContent.trim().startsWith("0.749"); })()`, time.Minute)
	b.Screenshot("node-dashboard-after.png")
	t.Logf("walked the wallet pages in %v", time.Since(start).Round(time.Millisecond))
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}
