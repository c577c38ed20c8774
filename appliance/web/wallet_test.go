package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anya-edge/anya/hsm"
	"github.com/anya-edge/anya/hsm/audit"
	"github.com/anya-edge/anya/hsm/keys"
	"github.com/anya-edge/anya/hsm/piv"
	"github.com/anya-edge/anya/hsm/piv/pivcard"
	"github.com/anya-edge/anya/hsm/piv/pivtest"
	"github.com/anya-edge/anya/hsm/seal"
	"github.com/anya-edge/anya/hsm/sign"
	"github.com/anya-edge/anya/hsm/tpm"
	"github.com/anya-edge/anya/hsm/tpm/tpmtest"
	"github.com/anya-edge/anya/storage"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

const (
	// abandon is the BIP84 test mnemonic: fingerprint 73c5da0a, first address known.
	abandon          = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
	abandonFP        = "73c5da0a"
	abandonFirst     = "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"
	walletPassphrase = "wallet passphrase 7f3a9c"
	recoveryPhrase   = "a long recovery passphrase"
)

// cheapPassphrase is the real passphrase sealer with argon2 parameters cheap enough for tests.
func cheapPassphrase(t *testing.T) seal.Sealer {
	t.Helper()
	p, err := seal.NewPassphrase(seal.WithArgon2(seal.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMain(m *testing.M) {
	code := m.Run()
	pivtest.Stop() // the pcscd of the YubiKey tests, if one was started
	os.Exit(code)
}

// newTPM starts swtpm for the test and returns the real TPM provider on it.
func newTPM(t *testing.T) *tpm.Sealer {
	t.Helper()
	return openTPM(t, tpmtest.Start(t))
}

// openTPM is the TPM provider anyad opens at start, on a new connection to sim, after the boot
// measured measurements into PCR 4. swtpm serves one connection at a time: the previous one
// must be closed (sim.Reboot closes them).
func openTPM(t *testing.T, sim *tpmtest.Sim, measurements ...[]byte) *tpm.Sealer {
	t.Helper()
	conn := sim.Dial()
	for _, m := range measurements {
		sim.Extend(conn, 4, m)
	}
	s, err := tpm.New(conn)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var (
	pivCAOnce sync.Once
	pivCA     *pivcard.CA
	pivCAErr  error
)

// newYubiKey plugs an emulated YubiKey with pin into the vpcd reader of the test binary's
// pcscd for the test, and returns the real PIV provider for it, trusting the card's test
// attestation root instead of Yubico's.
func newYubiKey(t *testing.T, pin string) *piv.Sealer {
	t.Helper()
	env := pivtest.Start(t)
	pivCAOnce.Do(func() { pivCA, pivCAErr = pivcard.NewCA("Test PIV Root CA") })
	if pivCAErr != nil {
		t.Fatal(pivCAErr)
	}
	card, err := pivcard.New(pivcard.Config{Serial: 13572468, PIN: pin, Attestation: pivCA})
	if err != nil {
		t.Fatal(err)
	}
	env.Insert(t, card)
	return piv.New(piv.Config{Reader: "Virtual PCD", Roots: pivCA.Pool()})
}

// newWalletHarness is a harness whose Server drives a real *hsm.Custody with the passphrase
// sealer and, optionally, device providers.
func newWalletHarness(t *testing.T, policy sign.Policy, devices ...seal.Sealer) *harness {
	t.Helper()
	return newWalletHarnessFunc(t, policy, func() []seal.Sealer { return devices })
}

// newWalletHarnessFunc is newWalletHarness with the device providers made by devices at
// every start of the Server (h.open, h.reopen), as anyad opens them when it starts.
func newWalletHarnessFunc(t *testing.T, policy sign.Policy, devices func() []seal.Sealer) *harness {
	t.Helper()
	pp := cheapPassphrase(t)
	return newHarnessWith(t, func(db *storage.DB, logger *slog.Logger) *hsm.Custody {
		sealers := map[string]seal.Sealer{seal.KindPassphrase: pp}
		for _, d := range devices() {
			sealers[d.Kind()] = d
		}
		c, err := hsm.New(hsm.Config{DB: db, Network: keys.Mainnet, Sealers: sealers, Policy: policy, Log: logger})
		if err != nil {
			t.Fatal(err)
		}
		return c
	})
}

// api sends body (nil: none) as JSON with the session's cookie and CSRF token.
func (h *harness) api(method, path string, body any, cookie *http.Cookie, csrf string) response {
	h.t.Helper()
	b := ""
	if body != nil {
		b = jsonBody(body)
	}
	return h.do(req(method, path, b, cookie, csrf))
}

// form posts values, with the CSRF token, as a page does.
func (h *harness) form(path string, values url.Values, cookie *http.Cookie, csrf string) response {
	h.t.Helper()
	v := url.Values{"csrf": {csrf}}
	for k, vs := range values {
		v[k] = vs
	}
	return h.do(req("POST", path, v.Encode(), cookie, ""))
}

func wantStatus(t *testing.T, res response, status int) {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("got %s %.400s, want %d", res.Status, res.body, status)
	}
}

func wantError(t *testing.T, res response, status int, contains string) {
	t.Helper()
	wantStatus(t, res, status)
	if msg, _ := res.json(t)["error"].(string); !strings.Contains(msg, contains) {
		t.Fatalf("error %q, want it to contain %q", msg, contains)
	}
}

func walletStatus(t *testing.T, h *harness, cookie *http.Cookie) hsm.Status {
	t.Helper()
	res := h.api("GET", "/api/wallet", nil, cookie, "")
	wantStatus(t, res, 200)
	var st hsm.Status
	if err := json.Unmarshal([]byte(res.body), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// setupAbandon sets up the abandon wallet with passphrase protection through the API.
func setupAbandon(t *testing.T, h *harness, cookie *http.Cookie, csrf string) {
	t.Helper()
	res := h.api("POST", "/api/wallet/setup", map[string]string{
		"mnemonic": abandon, "protection": "passphrase", "passphrase": walletPassphrase,
	}, cookie, csrf)
	wantStatus(t, res, 200)
}

// buildPSBT returns a PSBT, as hsm's tests build it, spending 100,000 sat from the abandon
// wallet's first receive address: 50,000 to a foreign address, the rest less fee back to
// its first change address.
func buildPSBT(t *testing.T, fee int64) []byte {
	t.Helper()
	return buildPSBTFor(t, abandon, fee)
}

// buildPSBTFor is buildPSBT for the wallet of another mnemonic.
func buildPSBTFor(t *testing.T, mnemonic string, fee int64) []byte {
	t.Helper()
	seed, err := keys.SeedFromMnemonic(mnemonic, nil)
	if err != nil {
		t.Fatal(err)
	}
	master, _ := keys.NewMasterKey(seed, keys.Mainnet)
	acct, _ := keys.NewAccount(master, keys.PurposeBIP84, keys.Mainnet, 0)
	recv, _ := acct.Address(keys.Receive, 0)
	change, _ := acct.Address(keys.Change, 0)
	fp, _ := master.Fingerprint()
	fpU32 := uint32(fp[0]) | uint32(fp[1])<<8 | uint32(fp[2])<<16 | uint32(fp[3])<<24
	const hard = 0x80000000
	const in = 100_000
	dest, _ := btcutil.DecodeAddress("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", keys.Mainnet.Params())
	destScript, _ := txscript.PayToAddrScript(dest)
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&chainhash.Hash{1}, 0), nil, nil))
	tx.AddTxOut(wire.NewTxOut(50_000, destScript))
	tx.AddTxOut(wire.NewTxOut(in-50_000-fee, change.ScriptPubKey))
	p, err := psbt.NewFromUnsignedTx(tx)
	if err != nil {
		t.Fatal(err)
	}
	p.Inputs[0].WitnessUtxo = wire.NewTxOut(in, recv.ScriptPubKey)
	p.Inputs[0].Bip32Derivation = []*psbt.Bip32Derivation{{PubKey: recv.PubKeys[0], MasterKeyFingerprint: fpU32, Bip32Path: []uint32{84 + hard, hard, hard, 0, 0}}}
	p.Outputs[1].Bip32Derivation = []*psbt.Bip32Derivation{{PubKey: change.PubKeys[0], MasterKeyFingerprint: fpU32, Bip32Path: []uint32{84 + hard, hard, hard, 1, 0}}}
	var buf bytes.Buffer
	if err := p.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func b64(data []byte) string { return base64.StdEncoding.EncodeToString(data) }

func TestWalletAPICreate(t *testing.T) {
	h := newWalletHarness(t, sign.Policy{})
	cookie, csrf := h.setup()

	st := walletStatus(t, h, cookie)
	if st.State != hsm.StateNone || !slices.Equal(st.Available, []string{"passphrase"}) || st.Network != "mainnet" {
		t.Fatalf("new box: %+v", st)
	}
	for _, words := range []int{0, 13, 25} {
		wantError(t, h.api("POST", "/api/wallet/mnemonic", map[string]int{"words": words}, cookie, csrf), 400, "words must be 12 or 24")
	}
	var mnemonic string
	for _, words := range []int{24, 12} {
		res := h.api("POST", "/api/wallet/mnemonic", map[string]int{"words": words}, cookie, csrf)
		wantStatus(t, res, 200)
		mnemonic, _ = res.json(t)["mnemonic"].(string)
		if n := len(strings.Fields(mnemonic)); n != words {
			t.Fatalf("asked for %d words, got %d", words, n)
		}
		if err := keys.ValidateMnemonic(mnemonic); err != nil {
			t.Fatalf("mnemonic does not validate: %v", err)
		}
	}
	if walletStatus(t, h, cookie).State != hsm.StateNone {
		t.Fatal("a mnemonic alone set up a wallet")
	}

	// Validation, before anything is sealed.
	wantError(t, h.api("POST", "/api/wallet/setup", map[string]string{"mnemonic": mnemonic, "protection": "passphrase", "passphrase": "short"}, cookie, csrf),
		400, "passphrase: The passphrase is too short: use at least 12 characters")
	wantError(t, h.api("POST", "/api/wallet/setup", map[string]string{"mnemonic": mnemonic, "protection": "tpm", "recovery": recoveryPhrase}, cookie, csrf),
		400, `protection: "tpm" is not available on this box.`)
	wantError(t, h.api("POST", "/api/wallet/setup", map[string]string{"mnemonic": mnemonic, "passphrase": walletPassphrase}, cookie, csrf),
		400, "protection: Choose how to protect the wallet.")
	wantError(t, h.api("POST", "/api/wallet/setup", map[string]string{"protection": "passphrase", "passphrase": walletPassphrase}, cookie, csrf),
		400, "mnemonic: Enter the words of the mnemonic.")

	res := h.api("POST", "/api/wallet/setup", map[string]string{
		"mnemonic": mnemonic, "protection": "passphrase", "passphrase": walletPassphrase,
	}, cookie, csrf)
	wantStatus(t, res, 200)
	st = walletStatus(t, h, cookie)
	if st.State != hsm.StateUnlocked || st.Protection != "passphrase" || len(st.Fingerprint) != 8 || len(st.Accounts) != 5 {
		t.Fatalf("after setup: %+v", st)
	}
	var purposes []string
	for _, a := range st.Accounts {
		purposes = append(purposes, strings.Fields(a.Purpose)[0])
		if !strings.Contains(a.Descriptor, "["+st.Fingerprint+"/") {
			t.Errorf("%s descriptor %q lacks the fingerprint", a.Purpose, a.Descriptor)
		}
	}
	if !slices.Equal(purposes, []string{"BIP84", "BIP86", "BIP49", "BIP44", "BIP48"}) {
		t.Fatalf("accounts %v", purposes)
	}
	if d := st.Accounts[0].Descriptor; !strings.HasPrefix(d, "wpkh([") || !strings.HasPrefix(st.Accounts[0].FirstAddress, "bc1q") {
		t.Fatalf("BIP84 account: %+v", st.Accounts[0])
	}

	// Once.
	wantError(t, h.api("POST", "/api/wallet/setup", map[string]string{"mnemonic": abandon, "protection": "passphrase", "passphrase": walletPassphrase}, cookie, csrf),
		409, "A wallet is already set up")
	wantError(t, h.api("POST", "/api/wallet/mnemonic", map[string]int{"words": 12}, cookie, csrf), 409, "already set up")
}

func TestWalletAPIRestoreErrors(t *testing.T) {
	h := newWalletHarness(t, sign.Policy{})
	cookie, csrf := h.setup()
	words := strings.Fields(abandon)
	words[2] = "abandom"
	tests := []struct {
		name, mnemonic, bip39, want string
	}{
		{"unknown word", strings.Join(words, " "), "", "Word 3 of the mnemonic is not in the BIP39 English wordlist."},
		{"checksum", strings.Repeat("abandon ", 12), "", "Mnemonic checksum does not match"},
		{"word count", "abandon abandon abandon", "", "A BIP39 mnemonic has 12, 15, 18, 21 or 24 words"},
		{"non-ASCII BIP39 passphrase", abandon, "pässphrase", "The BIP39 passphrase must be ASCII"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.api("POST", "/api/wallet/setup", map[string]string{"mnemonic": tt.mnemonic, "bip39_passphrase": tt.bip39,
				"protection": "passphrase", "passphrase": walletPassphrase}, cookie, csrf)
			wantError(t, res, 400, tt.want)
			if strings.Contains(res.body, "abandom") || strings.Contains(res.body, "pässphrase") {
				t.Fatalf("the error repeats a secret: %s", res.body)
			}
		})
	}
	if st := walletStatus(t, h, cookie); st.State != hsm.StateNone {
		t.Fatalf("a failed restore left state %s", st.State)
	}

	// Restored with a BIP39 passphrase: another wallet than without.
	res := h.api("POST", "/api/wallet/setup", map[string]string{"mnemonic": abandon, "bip39_passphrase": "TREZOR",
		"protection": "passphrase", "passphrase": walletPassphrase}, cookie, csrf)
	wantStatus(t, res, 200)
	if st := walletStatus(t, h, cookie); st.State != hsm.StateUnlocked || st.Fingerprint == abandonFP {
		t.Fatalf("restore with a BIP39 passphrase: %+v", st)
	}
}

func TestWalletAPIUnlock(t *testing.T) {
	h := newWalletHarness(t, sign.Policy{})
	cookie, csrf := h.setup()
	wantError(t, h.api("POST", "/api/wallet/unlock", map[string]string{"passphrase": walletPassphrase}, cookie, csrf), 409, "No wallet has been set up")
	wantError(t, h.api("POST", "/api/wallet/lock", nil, cookie, csrf), 409, "No wallet")
	setupAbandon(t, h, cookie, csrf)

	res := h.api("POST", "/api/wallet/lock", nil, cookie, csrf)
	wantStatus(t, res, 200)
	if st := walletStatus(t, h, cookie); st.State != hsm.StateLocked || st.Fingerprint != abandonFP || len(st.Accounts) != 5 {
		t.Fatalf("locked wallet: %+v", st)
	}
	wantError(t, h.api("POST", "/api/wallet/unlock", map[string]string{}, cookie, csrf), 400, "Enter the wallet's passphrase")
	res = h.api("POST", "/api/wallet/unlock", map[string]string{"passphrase": "not the passphrase"}, cookie, csrf)
	wantError(t, res, 401, "Wrong passphrase or PIN.")
	if strings.Contains(res.body, "not the passphrase") {
		t.Fatal("the error repeats the passphrase")
	}
	if st := walletStatus(t, h, cookie); st.State != hsm.StateLocked || st.LastError == "" {
		t.Fatalf("after a wrong passphrase: %+v", st)
	}
	wantStatus(t, h.api("POST", "/api/wallet/unlock", map[string]string{"passphrase": walletPassphrase}, cookie, csrf), 200)
	if st := walletStatus(t, h, cookie); st.State != hsm.StateUnlocked {
		t.Fatalf("after unlock: %s", st.State)
	}
	// Unlocking an unlocked wallet is a no-op, whatever is sent.
	wantStatus(t, h.api("POST", "/api/wallet/unlock", map[string]string{"passphrase": "anything"}, cookie, csrf), 200)

	// Wrong passphrases count with wrong admin passwords, per client.
	t.Run("rate limit", func(t *testing.T) {
		wantStatus(t, h.api("POST", "/api/wallet/lock", nil, cookie, csrf), 200)
		for i := 1; i <= freeAttempts; i++ {
			wantStatus(t, h.api("POST", "/api/wallet/unlock", map[string]string{"passphrase": "wrong " + strconv.Itoa(i)}, cookie, csrf), 401)
		}
		res := h.api("POST", "/api/wallet/unlock", map[string]string{"passphrase": walletPassphrase}, cookie, csrf)
		wantError(t, res, 429, "Too many wrong attempts")
		if res.Header.Get("Retry-After") != "2" {
			t.Fatalf("Retry-After %q", res.Header.Get("Retry-After"))
		}
		if res := h.do(req("POST", "/api/login", jsonBody(map[string]string{"password": testPassword}), nil, "")); res.StatusCode != 429 {
			t.Fatalf("admin login after wrong wallet passphrases: %s", res.Status)
		}
		other := req("POST", "/api/wallet/unlock", jsonBody(map[string]string{"passphrase": "wrong"}), cookie, csrf)
		other.RemoteAddr = "192.0.2.77:4000"
		if res := h.do(other); res.StatusCode != 401 {
			t.Fatalf("another client: %s", res.Status)
		}
		if st := walletStatus(t, h, cookie); st.State != hsm.StateLocked {
			t.Fatalf("state %s", st.State)
		}
		h.clock.Advance(3 * time.Second)
		wantStatus(t, h.api("POST", "/api/wallet/unlock", map[string]string{"passphrase": walletPassphrase}, cookie, csrf), 200)
		if n := h.srv.limiter.count(limitKey(req("GET", "/", "", nil, ""))); n != 0 {
			t.Fatalf("a successful unlock left %d attempts counted", n)
		}
	})
}

func TestWalletAPIChangeProtection(t *testing.T) {
	h := newWalletHarness(t, sign.Policy{})
	cookie, csrf := h.setup()
	setupAbandon(t, h, cookie, csrf)
	const newPassphrase = "another wallet passphrase"
	wantError(t, h.api("POST", "/api/wallet/protection", map[string]string{"protection": "passphrase", "passphrase": "short"}, cookie, csrf),
		400, "too short")
	wantStatus(t, h.api("POST", "/api/wallet/protection", map[string]string{"protection": "passphrase", "passphrase": newPassphrase}, cookie, csrf), 200)
	wantStatus(t, h.api("POST", "/api/wallet/lock", nil, cookie, csrf), 200)
	wantError(t, h.api("POST", "/api/wallet/protection", map[string]string{"protection": "passphrase", "passphrase": newPassphrase}, cookie, csrf),
		409, "The wallet is locked: unlock it first.")
	wantStatus(t, h.api("POST", "/api/wallet/unlock", map[string]string{"passphrase": walletPassphrase}, cookie, csrf), 401)
	wantStatus(t, h.api("POST", "/api/wallet/unlock", map[string]string{"passphrase": newPassphrase}, cookie, csrf), 200)
	if st := walletStatus(t, h, cookie); st.Fingerprint != abandonFP {
		t.Fatalf("fingerprint changed: %+v", st)
	}
}

// A TPM-protected wallet after a different boot: the custody refuses with the boot state, the
// page asks for the recovery passphrase, which opens and re-seals the wallet.
func TestWalletRecovery(t *testing.T) {
	sim := tpmtest.Start(t)
	var boot [][]byte // what the last boot measured into PCR 4 before anyad started
	h := newWalletHarnessFunc(t, sign.Policy{}, func() []seal.Sealer { return []seal.Sealer{openTPM(t, sim, boot...)} })
	cookie, csrf := h.setup()
	wantError(t, h.api("POST", "/api/wallet/setup", map[string]string{"mnemonic": abandon, "protection": "tpm"}, cookie, csrf),
		400, "recovery: Choose a recovery passphrase.")
	wantError(t, h.api("POST", "/api/wallet/setup", map[string]string{"mnemonic": abandon, "protection": "tpm", "recovery": "too short"}, cookie, csrf),
		400, "recovery: The recovery passphrase is too short")
	wantStatus(t, h.api("POST", "/api/wallet/setup", map[string]string{"mnemonic": abandon, "protection": "tpm", "recovery": recoveryPhrase}, cookie, csrf), 200)
	st := walletStatus(t, h, cookie)
	if st.Protection != "tpm" || !st.Recovery {
		t.Fatalf("status %+v", st)
	}
	wantStatus(t, h.api("POST", "/api/wallet/lock", nil, cookie, csrf), 200)

	// Same boot: the TPM unlocks without anything typed.
	page := h.do(req("GET", "/", "", cookie, ""))
	if !strings.Contains(page.body, `action="/wallet/unlock"`) || strings.Contains(page.body, "booted differently") {
		t.Fatalf("locked TPM wallet page: %s", page.body)
	}
	if res := h.form("/wallet/unlock", nil, cookie, csrf); res.StatusCode != 303 || walletStatus(t, h, cookie).State != hsm.StateUnlocked {
		t.Fatalf("TPM unlock: %s", res.Status)
	}
	h.custody.Lock()

	// The box restarts into another kernel: the TPM is rebooted (closing the custody's
	// connection), PCR 4 measures differently, and anyad starts again.
	boot = [][]byte{bytes.Repeat([]byte{7}, 32)}
	sim.Reboot()
	h.reopen()
	res := h.form("/wallet/unlock", nil, cookie, csrf)
	wantStatus(t, res, http.StatusConflict)
	for _, want := range []string{"This system booted differently than when the seed was sealed — enter the recovery passphrase",
		`action="/wallet/recover"`} {
		if !strings.Contains(html.UnescapeString(res.body), want) {
			t.Fatalf("page after a changed boot lacks %q", want)
		}
	}
	if strings.Contains(res.body, `action="/wallet/unlock"`) {
		t.Fatal("the page still offers the usual unlock")
	}
	res = h.form("/wallet/recover", url.Values{"recovery": {"not the recovery passphrase"}}, cookie, csrf)
	wantStatus(t, res, http.StatusUnauthorized)
	if !strings.Contains(res.body, "Wrong passphrase or PIN.") || strings.Contains(res.body, "not the recovery passphrase") {
		t.Fatalf("wrong recovery passphrase page: %s", res.body)
	}
	wantError(t, h.api("POST", "/api/wallet/recover", map[string]string{"recovery": "still not it"}, cookie, csrf), 401, "Wrong passphrase")
	if res := h.form("/wallet/recover", url.Values{"recovery": {recoveryPhrase}}, cookie, csrf); res.StatusCode != 303 {
		t.Fatalf("recovery: %s %s", res.Status, res.body)
	}
	if st := walletStatus(t, h, cookie); st.State != hsm.StateUnlocked || st.Fingerprint != abandonFP || st.LastError != "" {
		t.Fatalf("after recovery: %+v", st)
	}
	// Re-sealed for this boot: it opens by itself again, also after the next start in it.
	h.custody.Lock()
	wantStatus(t, h.api("POST", "/api/wallet/unlock", map[string]string{}, cookie, csrf), 200)
	h.custody.Lock()
	sim.Reboot()
	h.reopen()
	wantStatus(t, h.api("POST", "/api/wallet/unlock", map[string]string{}, cookie, csrf), 200)
}

func TestWalletAPISign(t *testing.T) {
	h := newWalletHarness(t, sign.Policy{MaxFeePercent: 5})
	cookie, csrf := h.setup()
	setupAbandon(t, h, cookie, csrf)
	good, greedy := buildPSBT(t, 500), buildPSBT(t, 5_000)

	res := h.api("POST", "/api/wallet/summary", map[string]string{"psbt": b64(good)}, cookie, csrf)
	wantStatus(t, res, 200)
	var sum summaryView
	if err := json.Unmarshal([]byte(res.body), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Fee != 500 || sum.Sent != 50_000 || sum.Change != 49_500 || len(sum.Violations) != 0 ||
		len(sum.Inputs) != 1 || !sum.Inputs[0].Ours || sum.Inputs[0].Address != abandonFirst ||
		len(sum.Outputs) != 2 || sum.Outputs[0].Change || !sum.Outputs[1].Change || sum.FeeRate <= 0 {
		t.Fatalf("summary: %s", res.body)
	}

	res = h.api("POST", "/api/wallet/summary", map[string]string{"psbt": b64(greedy)}, cookie, csrf)
	wantStatus(t, res, 200)
	if !strings.Contains(res.body, `"rule":"fee-percent"`) {
		t.Fatalf("summary of an over-fee PSBT: %s", res.body)
	}

	// Line-wrapped base64 is fine.
	wrapped := regexp.MustCompile(`.{1,64}`).ReplaceAllString(b64(good), "$0\n")
	res = h.api("POST", "/api/wallet/sign", map[string]any{"psbt": wrapped, "finalize": true}, cookie, csrf)
	wantStatus(t, res, 200)
	var signed signedView
	if err := json.Unmarshal([]byte(res.body), &signed); err != nil {
		t.Fatal(err)
	}
	raw, err := hex.DecodeString(signed.Tx)
	if !signed.Complete || err != nil || len(raw) == 0 || signed.PSBT == "" || len(signed.TxID) != 64 {
		t.Fatalf("sign: %s", res.body)
	}
	var tx wire.MsgTx
	if err := tx.Deserialize(bytes.NewReader(raw)); err != nil || len(tx.TxIn[0].Witness) != 2 || tx.TxHash().String() != signed.TxID {
		t.Fatalf("signed transaction: %v %+v", err, tx)
	}

	res = h.api("POST", "/api/wallet/sign", map[string]any{"psbt": b64(good), "finalize": false}, cookie, csrf)
	wantStatus(t, res, 200)
	if res.json(t)["complete"] != false || res.json(t)["tx"] != nil {
		t.Fatalf("sign without finalize: %s", res.body)
	}

	res = h.api("POST", "/api/wallet/sign", map[string]any{"psbt": b64(greedy), "finalize": true}, cookie, csrf)
	wantError(t, res, http.StatusUnprocessableEntity, "Refused by policy: ")
	if v, _ := res.json(t)["violations"].([]any); len(v) != 1 || !strings.Contains(res.body, "5% limit") {
		t.Fatalf("policy refusal: %s", res.body)
	}

	wantError(t, h.api("POST", "/api/wallet/summary", map[string]string{"psbt": "bm90IGEgcHNidA=="}, cookie, csrf), 400, "Malformed PSBT")
	wantError(t, h.api("POST", "/api/wallet/sign", map[string]any{"psbt": ""}, cookie, csrf), 400, "psbt:")
	// The PSBT routes take bodies beyond the usual 64 KiB.
	big := h.api("POST", "/api/wallet/summary", map[string]string{"psbt": strings.Repeat("A", 100_000)}, cookie, csrf)
	wantError(t, big, 400, "Malformed PSBT")

	wantStatus(t, h.api("POST", "/api/wallet/lock", nil, cookie, csrf), 200)
	wantError(t, h.api("POST", "/api/wallet/summary", map[string]string{"psbt": b64(good)}, cookie, csrf), 409, "locked")
	wantError(t, h.api("POST", "/api/wallet/sign", map[string]any{"psbt": b64(good)}, cookie, csrf), 409, "locked")
}

func TestWalletAPIAudit(t *testing.T) {
	h := newWalletHarness(t, sign.Policy{MaxFeePercent: 5})
	cookie, csrf := h.setup()
	setupAbandon(t, h, cookie, csrf)
	wantStatus(t, h.api("POST", "/api/wallet/sign", map[string]any{"psbt": b64(buildPSBT(t, 500)), "finalize": true}, cookie, csrf), 200)
	wantStatus(t, h.api("POST", "/api/wallet/sign", map[string]any{"psbt": b64(buildPSBT(t, 5_000))}, cookie, csrf), 422)
	wantStatus(t, h.api("POST", "/api/wallet/lock", nil, cookie, csrf), 200)
	wantStatus(t, h.api("POST", "/api/wallet/unlock", map[string]string{"passphrase": "wrong passphrase"}, cookie, csrf), 401)
	wantStatus(t, h.api("POST", "/api/wallet/unlock", map[string]string{"passphrase": walletPassphrase}, cookie, csrf), 200)

	list := func(query string) []audit.Record {
		t.Helper()
		res := h.api("GET", "/api/wallet/audit"+query, nil, cookie, "")
		wantStatus(t, res, 200)
		var recs []audit.Record
		if err := json.Unmarshal([]byte(res.body), &recs); err != nil || recs == nil {
			t.Fatalf("audit: %v %s", err, res.body)
		}
		return recs
	}
	var events []string
	for _, r := range list("") {
		events = append(events, r.Event)
	}
	want := []string{audit.EventSeal, audit.EventSign, audit.EventRefuse, audit.EventUnseal, audit.EventUnseal}
	if !slices.Equal(events, want) {
		t.Fatalf("events %v, want %v", events, want)
	}
	if recs := list("?after=3&max=1"); len(recs) != 1 || recs[0].Seq != 4 {
		t.Fatalf("after=3&max=1: %+v", recs)
	}
	if recs := list("?after=5"); len(recs) != 0 {
		t.Fatalf("after the last: %+v", recs)
	}
	wantError(t, h.api("GET", "/api/wallet/audit?max=0", nil, cookie, ""), 400, "max must be an integer from 1 to 1000")
	wantError(t, h.api("GET", "/api/wallet/audit?after=x", nil, cookie, ""), 400, "after must be")

	res := h.api("POST", "/api/wallet/audit/verify", nil, cookie, csrf)
	wantStatus(t, res, 200)
	if res.json(t)["records"] != 5.0 {
		t.Fatalf("verify: %s", res.body)
	}

	// The status page shows the newest records first, and verifies on demand.
	page := h.do(req("GET", "/?verify=audit", "", cookie, "")).body
	if i, j := strings.Index(page, ">#5<"), strings.Index(page, ">#1<"); i < 0 || j < i || !strings.Contains(page, "Chain intact: 5 records") {
		t.Fatalf("audit on the status page:\n%s", page)
	}

	// An edited record breaks the chain.
	records := storage.NewTable[audit.Record](h.db, audit.Subsystem, "records")
	key := string([]byte{0, 0, 0, 0, 0, 0, 0, 2})
	rec, ok, err := records.Get(key)
	if err != nil || !ok {
		t.Fatalf("read record 2: %v %v", ok, err)
	}
	rec.Detail = "nothing to see"
	if err := records.Put(key, rec); err != nil {
		t.Fatal(err)
	}
	res = h.api("POST", "/api/wallet/audit/verify", nil, cookie, csrf)
	wantError(t, res, 409, "Audit chain broken: record 2 was modified.")
	if !strings.Contains(h.do(req("GET", "/?verify=audit", "", cookie, "")).body, "record 2 was modified") {
		t.Fatal("the status page does not show the broken chain")
	}
}

// TestWalletNone checks that a box without a wallet does not show it.
func TestWalletNone(t *testing.T) {
	h := newHarness(t)
	cookie, csrf := h.setup()
	if page := h.do(req("GET", "/", "", cookie, "")).body; strings.Contains(page, `id="wallet"`) || strings.Contains(page, "/wallet/") {
		t.Fatal("the status page of a box without a wallet mentions it")
	}
	wantError(t, h.api("GET", "/api/wallet", nil, cookie, ""), 404, "this box has no wallet")
	wantError(t, h.api("POST", "/api/wallet/lock", nil, cookie, csrf), 404, "this box has no wallet")
	if res := h.do(req("GET", "/wallet/setup", "", cookie, "")); res.StatusCode != 404 || !strings.Contains(res.body, "This box has no wallet.") {
		t.Fatalf("wallet page: %s", res.Status)
	}
}

var (
	wordsRe    = regexp.MustCompile(`<span class="mnemonic-n">(\d+)</span><span class="mnemonic-w">([a-z]+)</span>`)
	positionRe = regexp.MustCompile(`name="word-(\d+)"`)
)

// createThroughPages runs the first setup and the new-wallet pages up to the protection page
// and returns the session and the words shown.
func createThroughPages(t *testing.T, h *harness) (*http.Cookie, string, []string) {
	t.Helper()
	res := h.do(req("POST", "/setup", url.Values{"password": {testPassword}, "confirm": {testPassword}}.Encode(), nil, ""))
	if res.StatusCode != 303 || res.Header.Get("Location") != "/wallet/setup" {
		t.Fatalf("setup goes to %s %q, want the wallet step", res.Status, res.Header.Get("Location"))
	}
	cookie := res.sessionCookie()
	csrf := h.do(req("GET", "/api/session", "", cookie, "")).json(t)["csrf"].(string)
	page := h.do(req("GET", "/wallet/setup", "", cookie, ""))
	if page.StatusCode != 200 || !strings.Contains(page.body, "Skip for now") {
		t.Fatalf("wallet step: %s", page.Status)
	}
	wantStatus(t, h.form("/wallet/create", url.Values{"words": {"13"}}, cookie, csrf), 400)
	res = h.form("/wallet/create", url.Values{"words": {"12"}}, cookie, csrf)
	if res.StatusCode != 303 || res.Header.Get("Location") != "/wallet/words" {
		t.Fatalf("create: %s %q", res.Status, res.Header.Get("Location"))
	}
	page = h.do(req("GET", "/wallet/words", "", cookie, ""))
	var words []string
	for i, m := range wordsRe.FindAllStringSubmatch(page.body, -1) {
		if m[1] != strconv.Itoa(i+1) {
			t.Fatalf("word %d numbered %s", i+1, m[1])
		}
		words = append(words, m[2])
	}
	if len(words) != 12 || keys.ValidateMnemonic(strings.Join(words, " ")) != nil || page.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("words page shows %q", words)
	}
	return cookie, csrf, words
}

// confirmWords answers the confirmation page; wrong makes every answer wrong.
func confirmWordsForm(t *testing.T, h *harness, cookie *http.Cookie, csrf string, words []string, wrong bool) response {
	t.Helper()
	page := h.do(req("GET", "/wallet/confirm", "", cookie, ""))
	wantStatus(t, page, 200)
	v := url.Values{}
	matches := positionRe.FindAllStringSubmatch(page.body, -1)
	if len(matches) != confirmWords {
		t.Fatalf("confirmation asks %d words", len(matches))
	}
	for _, m := range matches {
		pos, _ := strconv.Atoi(m[1])
		w := strings.ToUpper(words[pos-1]) // case does not matter
		if wrong {
			w = "zoo"
			if words[pos-1] == "zoo" {
				w = "abandon"
			}
		}
		v.Set("word-"+m[1], " "+w+" ")
	}
	return h.form("/wallet/confirm", v, cookie, csrf)
}

func TestWalletPagesCreate(t *testing.T) {
	h := newWalletHarness(t, sign.Policy{})
	cookie, csrf, words := createThroughPages(t, h)

	// The words belong to this session only.
	other, _ := h.login()
	if res := h.do(req("GET", "/wallet/words", "", other, "")); res.StatusCode != 303 || res.Header.Get("Location") != "/wallet/setup" {
		t.Fatalf("another session sees the words: %s", res.Status)
	}
	if res := h.do(req("GET", "/wallet/protect", "", cookie, "")); res.Header.Get("Location") != "/wallet/confirm" {
		t.Fatalf("protect before confirming: %s %q", res.Status, res.Header.Get("Location"))
	}
	res := confirmWordsForm(t, h, cookie, csrf, words, true)
	wantStatus(t, res, 400)
	if strings.Count(res.body, "This is not word") != confirmWords || strings.Contains(res.body, `value="zoo"`) {
		t.Fatalf("wrong words page: %s", res.body)
	}
	res = confirmWordsForm(t, h, cookie, csrf, words, false)
	if res.StatusCode != 303 || res.Header.Get("Location") != "/wallet/protect" {
		t.Fatalf("confirm: %s %s", res.Status, res.body)
	}
	if res := h.do(req("GET", "/wallet/words", "", cookie, "")); res.StatusCode != 303 {
		t.Fatalf("the words are shown after the confirmation: %s", res.Status)
	}

	page := h.do(req("GET", "/wallet/protect", "", cookie, ""))
	wantStatus(t, page, 200)
	if !strings.Contains(page.body, `value="passphrase" checked`) || strings.Contains(page.body, `value="tpm"`) {
		t.Fatalf("protect page: %s", page.body)
	}
	const typed = "typed-but-short"
	res = h.form("/wallet/protect", url.Values{"protection": {"passphrase"}, "passphrase": {walletPassphrase}, "confirm": {typed}}, cookie, csrf)
	wantStatus(t, res, 400)
	if !strings.Contains(res.body, "The two passphrases do not match.") || strings.Contains(res.body, walletPassphrase) || strings.Contains(res.body, typed) {
		t.Fatalf("protect with a mismatch: %s", res.body)
	}
	res = h.form("/wallet/protect", url.Values{"protection": {"passphrase"}, "passphrase": {walletPassphrase}, "confirm": {walletPassphrase}}, cookie, csrf)
	if res.StatusCode != 303 || res.Header.Get("Location") != "/" {
		t.Fatalf("protect: %s %s", res.Status, res.body)
	}
	if n := h.srv.pending.len(); n != 0 {
		t.Fatalf("%d pending wallets after setup", n)
	}
	st := walletStatus(t, h, cookie)
	page = h.do(req("GET", "/", "", cookie, ""))
	for _, want := range []string{"Unlocked", st.Fingerprint, "BIP84 (wpkh)", html.EscapeString(st.Accounts[0].Descriptor),
		st.Accounts[0].FirstAddress, "BIP48 cosigner key", `action="/wallet/lock"`, `href="/wallet/sign"`, `href="/wallet/protection"`, "Audit log"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("status page lacks %q", want)
		}
	}

	// Lock and unlock through the forms.
	if res := h.form("/wallet/lock", nil, cookie, csrf); res.StatusCode != 303 || walletStatus(t, h, cookie).State != hsm.StateLocked {
		t.Fatalf("lock: %s", res.Status)
	}
	res = h.form("/wallet/unlock", url.Values{"passphrase": {"a wrong passphrase"}}, cookie, csrf)
	wantStatus(t, res, 401)
	if !strings.Contains(res.body, `<p class="error" id="unlock-error">Wrong passphrase or PIN.</p>`) {
		t.Fatalf("wrong passphrase page: %s", res.body)
	}
	wantStatus(t, h.form("/wallet/unlock", nil, cookie, csrf), 400)
	if res := h.form("/wallet/unlock", url.Values{"passphrase": {walletPassphrase}}, cookie, csrf); res.StatusCode != 303 ||
		walletStatus(t, h, cookie).State != hsm.StateUnlocked {
		t.Fatalf("unlock: %s", res.Status)
	}

	// Change protection through the page.
	page = h.do(req("GET", "/wallet/protection", "", cookie, ""))
	if page.StatusCode != 200 || !strings.Contains(page.body, "Change protection") {
		t.Fatalf("change protection page: %s", page.Status)
	}
	wantStatus(t, h.form("/wallet/protection", url.Values{"protection": {"passphrase"}, "passphrase": {"short"}, "confirm": {"short"}}, cookie, csrf), 400)
	const newPassphrase = "the new wallet passphrase"
	if res := h.form("/wallet/protection", url.Values{"protection": {"passphrase"}, "passphrase": {newPassphrase}, "confirm": {newPassphrase}}, cookie, csrf); res.StatusCode != 303 {
		t.Fatalf("change protection: %s %s", res.Status, res.body)
	}
	h.custody.Lock()
	wantStatus(t, h.api("POST", "/api/wallet/unlock", map[string]string{"passphrase": newPassphrase}, cookie, csrf), 200)
}

func TestWalletPagesPending(t *testing.T) {
	h := newWalletHarness(t, sign.Policy{})
	cookie, csrf, _ := createThroughPages(t, h)

	// Forgotten after 15 minutes...
	h.clock.Advance(pendingLifetime + time.Second)
	if res := h.do(req("GET", "/wallet/words", "", cookie, "")); res.StatusCode != 303 {
		t.Fatalf("words after 15 minutes: %s", res.Status)
	}
	if n := h.srv.pending.len(); n != 0 {
		t.Fatalf("%d pending wallets after expiry", n)
	}
	res := h.form("/wallet/protect", url.Values{"protection": {"passphrase"}, "passphrase": {walletPassphrase}, "confirm": {walletPassphrase}}, cookie, csrf)
	if res.StatusCode != http.StatusGone || walletStatus(t, h, cookie).State != hsm.StateNone {
		t.Fatalf("protect after expiry: %s", res.Status)
	}

	// ... when cancelled, and at logout.
	wantStatus(t, h.form("/wallet/create", url.Values{"words": {"24"}}, cookie, csrf), 303)
	if page := h.do(req("GET", "/", "", cookie, "")).body; !strings.Contains(page, "Continue setting up the wallet") {
		t.Fatal("the status page does not offer to continue")
	}
	wantStatus(t, h.form("/wallet/cancel", nil, cookie, csrf), 303)
	if n := h.srv.pending.len(); n != 0 {
		t.Fatalf("%d pending wallets after cancel", n)
	}
	wantStatus(t, h.form("/wallet/create", url.Values{"words": {"12"}}, cookie, csrf), 303)
	wantStatus(t, h.form("/logout", nil, cookie, csrf), 303)
	if n := h.srv.pending.len(); n != 0 {
		t.Fatalf("%d pending wallets after logout", n)
	}
}

func TestWalletPagesRestore(t *testing.T) {
	h := newWalletHarness(t, sign.Policy{})
	cookie, csrf := h.setup()
	words := strings.Fields(abandon)
	words[6] = "abandonn"
	res := h.form("/wallet/restore", url.Values{"mnemonic": {strings.Join(words, " ")}}, cookie, csrf)
	wantStatus(t, res, 400)
	if !strings.Contains(res.body, "Word 7 of the mnemonic is not in the BIP39 English wordlist.") || strings.Contains(res.body, "abandonn") ||
		!strings.Contains(res.body, `spellcheck="false" autofocus`) {
		t.Fatalf("restore with a bad word: %s", res.body)
	}
	res = h.form("/wallet/restore", url.Values{"mnemonic": {abandon}, "bip39_passphrase": {"pässphrase"}}, cookie, csrf)
	wantStatus(t, res, 400)
	if !strings.Contains(res.body, "must be ASCII") || !strings.Contains(res.body, `<details class="advanced" open>`) || strings.Contains(res.body, "pässphrase") {
		t.Fatalf("restore with a non-ASCII passphrase: %s", res.body)
	}
	res = h.form("/wallet/restore", url.Values{"mnemonic": {"  ABANDON " + strings.TrimPrefix(abandon, "abandon") + "\n"}}, cookie, csrf)
	if res.StatusCode != 303 || res.Header.Get("Location") != "/wallet/protect" {
		t.Fatalf("restore: %s %s", res.Status, res.body)
	}
	if page := h.do(req("GET", "/wallet/protect", "", cookie, "")); !strings.Contains(page.body, "Setup · Restore") {
		t.Fatalf("protect page after restore: %s", page.Status)
	}
	res = h.form("/wallet/protect", url.Values{"protection": {"passphrase"}, "passphrase": {walletPassphrase}, "confirm": {walletPassphrase}}, cookie, csrf)
	wantStatus(t, res, 303)
	if st := walletStatus(t, h, cookie); st.Fingerprint != abandonFP || st.Accounts[0].FirstAddress != abandonFirst {
		t.Fatalf("restored wallet: %+v", st)
	}
	if res := h.do(req("GET", "/wallet/setup", "", cookie, "")); res.StatusCode != 303 {
		t.Fatalf("setup page of a box with a wallet: %s", res.Status)
	}
}

// TestWalletProtectOptions renders the protection page with every provider and checks the
// fields of each, and what a wrong YubiKey PIN does.
func TestWalletProtectOptions(t *testing.T) {
	h := newWalletHarness(t, sign.Policy{}, newTPM(t), newYubiKey(t, "123456"))
	cookie, csrf := h.setup()
	wantStatus(t, h.form("/wallet/restore", url.Values{"mnemonic": {abandon}}, cookie, csrf), 303)
	page := h.do(req("GET", "/wallet/protect", "", cookie, "")).body
	labels := []string{"This box's TPM</strong> <span class=\"muted\">— unlocks itself at boot", "YubiKey</strong> <span class=\"muted\">— PIN at every unlock",
		"Passphrase</strong> <span class=\"muted\">— typed after every boot"}
	last := -1
	for _, l := range labels {
		i := strings.Index(html.UnescapeString(page), l)
		if i < last {
			t.Fatalf("label %q missing or out of order", l)
		}
		last = i
	}
	for _, want := range []string{`value="tpm" checked`, `data-need="piv"`, `data-need="tpm piv"`, `data-need="passphrase"`, "Recovery passphrase", `name="recovery_confirm"`} {
		if !strings.Contains(page, want) {
			t.Errorf("protect page lacks %q", want)
		}
	}
	res := h.form("/wallet/protect", url.Values{"protection": {"piv"}, "pin": {"999999"}, "recovery": {recoveryPhrase}, "recovery_confirm": {recoveryPhrase + "x"}}, cookie, csrf)
	wantStatus(t, res, 400)
	if !strings.Contains(res.body, "The two recovery passphrases do not match.") || !strings.Contains(res.body, `value="piv" checked`) {
		t.Fatalf("mismatch: %s", res.body)
	}
	res = h.form("/wallet/protect", url.Values{"protection": {"piv"}, "pin": {"999999"}, "recovery": {recoveryPhrase}, "recovery_confirm": {recoveryPhrase}}, cookie, csrf)
	wantStatus(t, res, 401)
	// The YubiKey counts the wrong PIN, and the page says how many tries are left.
	if !strings.Contains(res.body, `<p class="error" id="pin-error">Wrong PIN: 2 tries left before the YubiKey locks.</p>`) {
		t.Fatalf("wrong PIN: %s", res.body)
	}
	res = h.form("/wallet/protect", url.Values{"protection": {"piv"}, "pin": {"123456"}, "recovery": {recoveryPhrase}, "recovery_confirm": {recoveryPhrase}}, cookie, csrf)
	wantStatus(t, res, 303)
	page = h.do(req("GET", "/", "", cookie, "")).body
	if !strings.Contains(page, "YubiKey <span class=\"muted\">· with recovery passphrase</span>") {
		t.Fatalf("status page: %s", page)
	}
	h.custody.Lock()
	page = h.do(req("GET", "/", "", cookie, "")).body
	if !strings.Contains(page, `id="unlock-pin" name="pin"`) || !strings.Contains(page, "Use the recovery passphrase") {
		t.Fatalf("locked YubiKey wallet: %s", page)
	}
}

func TestWalletPagesSign(t *testing.T) {
	h := newWalletHarness(t, sign.Policy{MaxFeePercent: 5})
	cookie, csrf := h.setup()
	setupAbandon(t, h, cookie, csrf)
	good, greedy := buildPSBT(t, 500), buildPSBT(t, 5_000)

	page := h.do(req("GET", "/wallet/sign", "", cookie, ""))
	if page.StatusCode != 200 || !strings.Contains(page.body, `enctype="multipart/form-data"`) {
		t.Fatalf("sign page: %s", page.Status)
	}
	res := h.form("/wallet/review", url.Values{"psbt": {"not a psbt"}}, cookie, csrf)
	wantStatus(t, res, 400)
	if !strings.Contains(res.body, "Malformed PSBT") || !strings.Contains(res.body, ">not a psbt</textarea>") {
		t.Fatalf("review of garbage: %s", res.body)
	}
	wantStatus(t, h.form("/wallet/review", url.Values{"psbt": {""}}, cookie, csrf), 400)

	// Pasted.
	res = h.form("/wallet/review", url.Values{"psbt": {b64(good)}}, cookie, csrf)
	wantStatus(t, res, 200)
	for _, want := range []string{"0.00050000 BTC", "0.00049500 BTC", ">change<", ">sent<", "500 sat", "sat/vB", "% of the amount sent",
		abandonFirst, `action="/wallet/sign"`} {
		if !strings.Contains(res.body, want) {
			t.Errorf("review lacks %q", want)
		}
	}

	// Uploaded as a binary file.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("csrf", csrf)
	mw.WriteField("psbt", "")
	fw, _ := mw.CreateFormFile("file", "tx.psbt")
	fw.Write(good)
	mw.Close()
	r := req("POST", "/wallet/review", body.String(), cookie, "")
	r.Header.Set("Content-Type", mw.FormDataContentType())
	res = h.do(r)
	wantStatus(t, res, 200)
	if !strings.Contains(html.UnescapeString(res.body), `name="psbt" value="`+b64(good)+`"`) {
		t.Fatalf("review of an upload: %s", res.body)
	}

	res = h.form("/wallet/sign", url.Values{"psbt": {b64(good)}, "finalize": {"1"}}, cookie, csrf)
	wantStatus(t, res, 200)
	for _, want := range []string{"Signed and complete", `id="signed-psbt"`, `id="raw-tx"`, `data-copy="signed-psbt"`, `action="/wallet/download"`} {
		if !strings.Contains(res.body, want) {
			t.Errorf("result lacks %q", want)
		}
	}
	signed := regexp.MustCompile(`id="signed-psbt" class="mono" rows="6" readonly>([^<]+)<`).FindStringSubmatch(res.body)
	if signed == nil {
		t.Fatal("no signed PSBT on the result page")
	}
	res = h.form("/wallet/download", url.Values{"psbt": {html.UnescapeString(signed[1])}}, cookie, csrf)
	wantStatus(t, res, 200)
	if !strings.HasPrefix(res.body, "psbt\xff") || !strings.Contains(res.Header.Get("Content-Disposition"), `attachment; filename=signed-`) {
		t.Fatalf("download: %q %q", res.Header.Get("Content-Disposition"), res.body[:min(10, len(res.body))])
	}
	wantStatus(t, h.form("/wallet/download", url.Values{"psbt": {b64([]byte("not a psbt"))}}, cookie, csrf), 400)

	// Over the policy: shown in red, no Sign button; signing anyway is refused with the reasons.
	res = h.form("/wallet/review", url.Values{"psbt": {b64(greedy)}}, cookie, csrf)
	wantStatus(t, res, 200)
	if !strings.Contains(res.body, "This transaction breaks your policy") || !strings.Contains(res.body, "5% limit") || strings.Contains(res.body, `action="/wallet/sign"`) {
		t.Fatalf("review over the policy: %s", res.body)
	}
	res = h.form("/wallet/sign", url.Values{"psbt": {b64(greedy)}, "finalize": {"1"}}, cookie, csrf)
	wantStatus(t, res, http.StatusUnprocessableEntity)
	if !strings.Contains(res.body, "Not signed") || !strings.Contains(res.body, "Refused by policy") {
		t.Fatalf("sign over the policy: %s", res.body)
	}

	// Only when unlocked.
	h.custody.Lock()
	page = h.do(req("GET", "/wallet/sign", "", cookie, ""))
	if !strings.Contains(page.body, "The wallet is locked") || strings.Contains(page.body, `action="/wallet/review"`) {
		t.Fatalf("sign page of a locked wallet: %s", page.body)
	}
	wantStatus(t, h.form("/wallet/review", url.Values{"psbt": {b64(good)}}, cookie, csrf), 409)
	wantStatus(t, h.form("/wallet/sign", url.Values{"psbt": {b64(good)}}, cookie, csrf), 409)
}

func TestWalletPagesHaveNoInlineCode(t *testing.T) {
	h := newWalletHarness(t, sign.Policy{MaxFeePercent: 5}, newTPM(t))
	pages := map[string]string{}
	cookie, csrf, words := createThroughPages(t, h)
	pages["setup"] = h.do(req("GET", "/wallet/setup", "", cookie, "")).body
	pages["words"] = h.do(req("GET", "/wallet/words", "", cookie, "")).body
	pages["confirm"] = h.do(req("GET", "/wallet/confirm", "", cookie, "")).body
	pages["confirm errors"] = confirmWordsForm(t, h, cookie, csrf, words, true).body
	pages["restore"] = h.do(req("GET", "/wallet/restore", "", cookie, "")).body
	pages["restore errors"] = h.form("/wallet/restore", url.Values{"mnemonic": {"x"}}, cookie, csrf).body
	pages["status none"] = h.do(req("GET", "/", "", cookie, "")).body
	confirmWordsForm(t, h, cookie, csrf, words, false)
	pages["protect"] = h.do(req("GET", "/wallet/protect", "", cookie, "")).body
	pages["protect errors"] = h.form("/wallet/protect", url.Values{"protection": {"tpm"}}, cookie, csrf).body
	wantStatus(t, h.form("/wallet/protect", url.Values{"protection": {"passphrase"}, "passphrase": {walletPassphrase}, "confirm": {walletPassphrase}}, cookie, csrf), 303)
	pages["status unlocked"] = h.do(req("GET", "/?verify=audit", "", cookie, "")).body
	pages["protection"] = h.do(req("GET", "/wallet/protection", "", cookie, "")).body
	pages["sign"] = h.do(req("GET", "/wallet/sign", "", cookie, "")).body
	pages["review"] = h.form("/wallet/review", url.Values{"psbt": {b64(buildPSBT(t, 5_000))}}, cookie, csrf).body
	pages["signed"] = h.form("/wallet/sign", url.Values{"psbt": {b64(buildPSBT(t, 500))}}, cookie, csrf).body
	h.custody.Lock()
	pages["status locked"] = h.form("/wallet/unlock", url.Values{"passphrase": {"wrong passphrase"}}, cookie, csrf).body
	for name, body := range pages {
		if !strings.Contains(body, "Anya Edge") {
			t.Errorf("%s: page does not look rendered: %.200q", name, body)
		}
		if strings.Contains(body, "<no value>") {
			t.Errorf("%s: template printed <no value>", name)
		}
		if m := inlineCode.FindString(body); m != "" {
			t.Errorf("%s: inline code %q would be blocked by the Content-Security-Policy", name, m)
		}
		if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
			t.Errorf("%s: page refers to an external resource", name)
		}
	}
}

// TestWalletSecretsNotLogged goes through the wallet's pages and API with the log at debug
// level and looks for the mnemonics, passphrases and PINs in the log and in error answers.
func TestWalletSecretsNotLogged(t *testing.T) {
	const (
		pass     = "Sentinel-Wallet-Pass-91c3"
		wrong    = "Sentinel-Wrong-Pass-6b2e"
		bip39    = "Sentinel-BIP39-5d7a"
		recovery = "Sentinel-Recovery-Pass-2f8e"
		pin      = "846201"
		badWord  = "zzsentinel"
	)
	h := newWalletHarness(t, sign.Policy{}, newYubiKey(t, pin))
	var answers []string
	keep := func(res response) response { answers = append(answers, res.body); return res }

	// Pages: a new wallet, confirmed, with a mismatch first.
	cookie, csrf, words := createThroughPages(t, h)
	keep(confirmWordsForm(t, h, cookie, csrf, words, true))
	keep(confirmWordsForm(t, h, cookie, csrf, words, false))
	keep(h.form("/wallet/protect", url.Values{"protection": {"passphrase"}, "passphrase": {pass}, "confirm": {wrong}}, cookie, csrf))
	wantStatus(t, keep(h.form("/wallet/protect", url.Values{"protection": {"passphrase"}, "passphrase": {pass}, "confirm": {pass}}, cookie, csrf)), 303)
	h.custody.Lock()
	keep(h.form("/wallet/unlock", url.Values{"passphrase": {wrong}}, cookie, csrf))
	wantStatus(t, keep(h.form("/wallet/unlock", url.Values{"passphrase": {pass}}, cookie, csrf)), 303)
	keep(h.form("/wallet/protection", url.Values{"protection": {"piv"}, "pin": {"000000"}, "recovery": {recovery}, "recovery_confirm": {recovery}}, cookie, csrf))
	wantStatus(t, keep(h.form("/wallet/protection", url.Values{"protection": {"piv"}, "pin": {pin}, "recovery": {recovery}, "recovery_confirm": {recovery}}, cookie, csrf)), 303)
	h.custody.Lock()
	keep(h.form("/wallet/unlock", url.Values{"pin": {"000000"}}, cookie, csrf))
	keep(h.form("/wallet/recover", url.Values{"recovery": {wrong}}, cookie, csrf))
	wantStatus(t, keep(h.form("/wallet/recover", url.Values{"recovery": {recovery}, "pin": {pin}}, cookie, csrf)), 303)
	created := strings.Join(words, " ")

	// API, on a second box: a mnemonic, a bad restore, setup, wrong and right unlocks.
	h2 := newWalletHarness(t, sign.Policy{})
	h2.logs = h.logs // one log to search
	h2.reopen()
	c2, csrf2 := h2.setup()
	mnemonic := keep(h2.api("POST", "/api/wallet/mnemonic", map[string]int{"words": 24}, c2, csrf2)).json(t)["mnemonic"].(string)
	bad := strings.Fields(mnemonic)
	bad[4] = badWord
	keep(h2.api("POST", "/api/wallet/setup", map[string]string{"mnemonic": strings.Join(bad, " "), "bip39_passphrase": bip39, "protection": "passphrase", "passphrase": pass}, c2, csrf2))
	keep(h2.api("POST", "/api/wallet/setup", map[string]string{"mnemonic": mnemonic, "bip39_passphrase": bip39, "protection": "passphrase", "passphrase": pass[:5]}, c2, csrf2))
	wantStatus(t, keep(h2.api("POST", "/api/wallet/setup", map[string]string{"mnemonic": mnemonic, "bip39_passphrase": bip39, "protection": "passphrase", "passphrase": pass}, c2, csrf2)), 200)
	wantStatus(t, keep(h2.api("POST", "/api/wallet/lock", nil, c2, csrf2)), 200)
	keep(h2.api("POST", "/api/wallet/unlock", map[string]string{"passphrase": wrong}, c2, csrf2))
	h2.do(req("POST", "/api/wallet/unlock", `{"passphrase":"`+wrong+`"`, c2, csrf2)) // malformed
	wantStatus(t, keep(h2.api("POST", "/api/wallet/unlock", map[string]string{"passphrase": pass}, c2, csrf2)), 200)
	keep(h2.api("POST", "/api/wallet/protection", map[string]string{"protection": "passphrase", "passphrase": wrong[:6]}, c2, csrf2))

	logs := h.logs.String()
	for _, want := range []string{"wallet set up", "wallet unlock failed: wrong passphrase or PIN", "wallet unlocked",
		"wallet locked", "wallet protection changed", "wallet recovery failed", "mnemonic confirmed", "level=DEBUG"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q; is the logger wired up?", want)
		}
	}
	secrets := []string{pass, wrong, bip39, recovery, pin, badWord, created, mnemonic}
	for _, phrase := range []string{created, mnemonic} { // and any three words in a row
		w := strings.Fields(phrase)
		for i := 0; i+3 <= len(w); i++ {
			secrets = append(secrets, strings.Join(w[i:i+3], " "))
		}
	}
	for _, secret := range secrets {
		if strings.Contains(logs, secret) {
			t.Errorf("secret %q appears in the log", secret)
		}
	}
	for _, a := range answers {
		if !strings.Contains(a, `"error"`) && !strings.Contains(a, `class="error"`) && !strings.Contains(a, "alert-error") {
			continue // not an error answer
		}
		for _, secret := range secrets {
			if strings.Contains(html.UnescapeString(a), secret) {
				t.Errorf("secret %q appears in an error answer: %.300s", secret, a)
			}
		}
	}
}

func TestClassifyWalletError(t *testing.T) {
	tests := []struct {
		err    error
		status int
		msg    string
		field  string
	}{
		{fmt.Errorf("set up wallet: %w", &keys.WordError{Position: 5, Word: "secret"}), 400, "Word 5 of the mnemonic is not in the BIP39 English wordlist.", "mnemonic"},
		{fmt.Errorf("set up wallet: %w", keys.ErrChecksum), 400, "Mnemonic checksum does not match: a word is wrong, missing or out of order.", "mnemonic"},
		{fmt.Errorf("set up wallet: %w", keys.ErrPassphraseNotASCII), 400, "The BIP39 passphrase must be ASCII", "bip39_passphrase"},
		{fmt.Errorf("unlock: seal: passphrase: authentication failed: %w", seal.ErrWrongAuth), 401, "Wrong passphrase or PIN.", ""},
		{fmt.Errorf("unlock: piv: verify PIN: wrong PIN (2 tries left before the YubiKey locks): %w", seal.ErrWrongAuth), 401,
			"Wrong PIN: 2 tries left before the YubiKey locks.", ""},
		{fmt.Errorf("unlock: piv: verify PIN: the PIN is blocked; unblock it with the PUK: %w", seal.ErrLocked), 423, "The YubiKey is locked", ""},
		{fmt.Errorf("unlock: piv: open: %w", seal.ErrDeviceMissing), 503, "not present", ""},
		{fmt.Errorf("unlock: %w", seal.ErrBootState), 409, "booted differently", ""},
		{fmt.Errorf("set up wallet: %w", hsm.ErrWalletExists), 409, "already set up", ""},
		{fmt.Errorf("unlock: %w", hsm.ErrNoWallet), 409, "No wallet", ""},
		{fmt.Errorf("sign: %w", hsm.ErrLocked), 409, "The wallet is locked", ""},
		{fmt.Errorf("recover: %w", hsm.ErrNotRecoverable), 409, "no recovery copy", ""},
		{fmt.Errorf("set up wallet: %w: %q", hsm.ErrNoSuchSealer, "piv"), 400, "not available", "protection"},
		{fmt.Errorf("set up wallet: %w", hsm.ErrWeakRecovery), 400, "at least 12 characters", "recovery"},
		{fmt.Errorf("set up wallet: %w", hsm.ErrNeedsRecovery), 400, "needs a recovery passphrase", "recovery"},
		{&sign.PolicyError{Violations: []sign.Violation{{Rule: sign.RuleFeeRate, Reason: "fee rate too high"}}}, 422, "Refused by policy: fee rate too high.", ""},
		{&sign.InputError{Index: 1, Err: sign.ErrNotOurs}, 400, "Input 1: no key of this wallet.", "psbt"},
		{fmt.Errorf("%w: truncated", sign.ErrMalformed), 400, "Malformed PSBT: truncated.", "psbt"},
	}
	for _, tt := range tests {
		f, ok := classifyWalletError(tt.err)
		if !ok || f.status != tt.status || !strings.Contains(f.msg, tt.msg) || f.field != tt.field {
			t.Errorf("%v: got %v %d %q %q, want %d %q %q", tt.err, ok, f.status, f.msg, f.field, tt.status, tt.msg, tt.field)
		}
		if strings.Contains(f.msg, "secret") {
			t.Errorf("%v: message %q repeats the word", tt.err, f.msg)
		}
	}
	if _, ok := classifyWalletError(fmt.Errorf("store: %w", context.DeadlineExceeded)); ok {
		t.Error("an unexpected error was classified")
	}
}
