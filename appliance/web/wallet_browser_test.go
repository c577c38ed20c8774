package web

import (
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/anya-edge/anya/appliance/internal/browsertest"
	"github.com/anya-edge/anya/hsm"
	"github.com/anya-edge/anya/hsm/sign"
	"github.com/chromedp/chromedp"
)

// TestBrowserWallet walks the wallet pages in headless Chromium at a phone's size: the admin
// password, a new 12-word wallet, the confirmation of three of its words read from the page,
// passphrase protection, the status page with the descriptors, lock and unlock, and the
// signing of a PSBT. It saves screenshots named wallet-*.png to $ANYA_ARTIFACTS and checks
// that no page is wider than the phone.
func TestBrowserWallet(t *testing.T) {
	artifacts := browsertest.Artifacts(t)
	h := newWalletHarness(t, sign.Policy{MaxFeePercent: 5})
	ts := httptest.NewServer(h.srv.Handler())
	defer ts.Close()
	b := browsertest.Start(t, ts.URL, artifacts, nil)
	main := chromedp.CSS("main")

	// Step 1, the admin password, leads to step 2, the wallet.
	b.Step("open the box",
		chromedp.Navigate(ts.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.SendKeys(chromedp.ID("confirm"), testPassword),
		chromedp.Click(chromedp.CSS(`form[action="/setup"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/wallet/create"]`)),
	)
	b.WantPath("/wallet/setup")
	b.FitsWidth("wallet step")
	b.Screenshot("wallet-setup.png")

	// A new wallet of 12 words (the default), shown once.
	b.Step("create", chromedp.Click(chromedp.CSS(`form[action="/wallet/create"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("mnemonic")))
	b.WantPath("/wallet/words")
	words := browsertest.Run(b, "read the words", chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll("#mnemonic .mnemonic-w"), e => e.textContent)`))
	if len(words) != 12 {
		t.Fatalf("the page shows %d words: %q", len(words), words)
	}
	if text := b.Run("words page", chromedp.Text(main)); !strings.Contains(text, "These words are your wallet") {
		t.Errorf("no warning on the words page:\n%s", text)
	}
	b.FitsWidth("words")
	b.Screenshot("wallet-mnemonic.png")

	// Three words, at positions the page chooses.
	b.Step("to the confirmation", chromedp.Click(chromedp.ID("written")),
		chromedp.WaitVisible(chromedp.CSS("input[data-position]")))
	positions := browsertest.Run(b, "read the positions", chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll("input[data-position]"), e => e.dataset.position)`))
	if len(positions) != confirmWords {
		t.Fatalf("the confirmation asks for %q", positions)
	}
	for _, p := range positions {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > len(words) {
			t.Fatalf("position %q", p)
		}
		b.Step("type word "+p, chromedp.SendKeys(chromedp.ID("word-"+p), words[n-1]))
	}
	b.FitsWidth("confirm")
	b.Screenshot("wallet-confirm.png")
	b.Step("confirm", chromedp.Click(chromedp.CSS(`form[action="/wallet/confirm"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name=protection]`)))
	b.WantPath("/wallet/protect")

	// Passphrase protection.
	b.Step("protect",
		chromedp.Click(chromedp.CSS(`input[name=protection][value=passphrase]`)),
		chromedp.WaitVisible(chromedp.ID("passphrase")),
		chromedp.SendKeys(chromedp.ID("passphrase"), walletPassphrase),
		chromedp.SendKeys(chromedp.ID("confirm"), walletPassphrase),
	)
	b.FitsWidth("protect")
	b.Screenshot("wallet-protect.png")
	b.Step("finish", chromedp.Click(chromedp.CSS(`form[action="/wallet/protect"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("wallet")))
	b.WantPath("/")

	// The status page: the descriptors, each with a working copy button.
	st, err := h.custody.Status()
	if err != nil || st.State != hsm.StateUnlocked {
		t.Fatalf("wallet after setup: %+v %v", st, err)
	}
	card := b.Run("wallet card", chromedp.Text(chromedp.ID("wallet")))
	for _, want := range []string{"Unlocked", st.Fingerprint, "BIP84 (wpkh)", st.Accounts[0].Descriptor, st.Accounts[0].FirstAddress,
		"BIP48 cosigner key", "Audit log", "seal"} {
		if !strings.Contains(strings.ToLower(card), strings.ToLower(want)) {
			t.Errorf("wallet card lacks %q:\n%s", want, card)
		}
	}
	if !strings.HasPrefix(st.Accounts[0].Descriptor, "wpkh([") {
		t.Errorf("BIP84 descriptor %q", st.Accounts[0].Descriptor)
	}
	copies := browsertest.Run(b, "copy buttons", chromedp.Evaluate[int](`document.querySelectorAll("#wallet button[data-copy]:not([hidden])").length`))
	if copies != len(st.Accounts) {
		t.Errorf("%d copy buttons shown, want %d", copies, len(st.Accounts))
	}
	b.Step("copy", chromedp.Click(chromedp.CSS(`button[data-copy="account-0"]`)))
	label := browsertest.Run(b, "copy label", chromedp.Evaluate[string](`new Promise(r => setTimeout(() => r(document.querySelector('button[data-copy="account-0"]').textContent), 1000))`, chromedp.EvalAwaitPromise))
	t.Logf("copy button: %q", label)
	if label != "Copied" && label != "Select and copy" {
		t.Errorf("copy button says %q after a click", label)
	}
	b.FitsWidth("status")
	b.Screenshot("wallet-status.png")

	// Lock, then unlock with the passphrase.
	b.Step("lock", chromedp.Click(chromedp.CSS(`form[action="/wallet/lock"] button`)),
		chromedp.WaitVisible(chromedp.ID("unlock-passphrase")))
	if card := b.Run("locked card", chromedp.Text(chromedp.ID("wallet"))); !strings.Contains(card, "Locked") || !strings.Contains(card, st.Accounts[0].Descriptor) {
		t.Errorf("locked wallet card:\n%s", card)
	}
	b.FitsWidth("locked")
	b.Screenshot("wallet-locked.png")
	b.Step("unlock",
		chromedp.SendKeys(chromedp.ID("unlock-passphrase"), walletPassphrase),
		chromedp.Click(chromedp.CSS(`form[action="/wallet/unlock"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/wallet/lock"]`)),
	)
	if st, _ := h.custody.Status(); st.State != hsm.StateUnlocked {
		t.Fatalf("after unlock: %s", st.State)
	}

	// Sign a PSBT: paste, review, sign.
	b.Step("sign page", chromedp.Click(chromedp.CSS(`a[href="/wallet/sign"]`)), chromedp.WaitVisible(chromedp.ID("psbt")),
		chromedp.SetValue(chromedp.ID("psbt"), b64(buildPSBTFor(t, strings.Join(words, " "), 500))),
		chromedp.Click(chromedp.CSS(`form[action="/wallet/review"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(".txlist")))
	if text := b.Run("review", chromedp.Text(main)); !strings.Contains(text, "0.00050000 BTC") || !strings.Contains(text, "change") {
		t.Errorf("review:\n%s", text)
	}
	b.FitsWidth("review")
	b.Screenshot("wallet-review.png")
	b.Step("sign", chromedp.Click(chromedp.CSS(`form[action="/wallet/sign"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("signed-psbt")))
	if text := b.Run("signed", chromedp.Text(main)); !strings.Contains(text, "Signed and complete") {
		t.Errorf("result:\n%s", text)
	}
	if tx := b.Run("raw tx", chromedp.Value(chromedp.ID("raw-tx"))); len(tx) < 100 {
		t.Errorf("raw transaction %q", tx)
	}
	b.FitsWidth("signed")
	b.Screenshot("wallet-signed.png")

	// The audit log verifies.
	b.Step("verify", chromedp.Navigate(ts.URL+"/"), chromedp.WaitVisible(chromedp.ID("wallet")),
		chromedp.Click(chromedp.CSS(`form.verify button`)), chromedp.WaitVisible(chromedp.ID("verify-result")))
	if res := b.Run("verify result", chromedp.Text(chromedp.ID("verify-result"))); !strings.HasPrefix(res, "Chain intact: ") {
		t.Errorf("verify says %q", res)
	}
}
