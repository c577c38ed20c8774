package services

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"

	"github.com/anya-edge/anya/hsm"
	"github.com/anya-edge/anya/node/regtest"
)

// apiClient speaks the page's JSON API with a session.
type apiClient struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

func newAPIClient(t *testing.T, base string) *apiClient {
	jar, _ := cookiejar.New(nil)
	return &apiClient{t: t, base: base, c: &http.Client{Jar: jar, Timeout: time.Minute}}
}

// call sends body (nil: none) and decodes the answer into a map; it returns the status.
func (a *apiClient) call(method, path string, body any) (int, map[string]any) {
	a.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.base+path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.csrf != "" {
		req.Header.Set("X-CSRF-Token", a.csrf)
	}
	res, err := a.c.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		m = map[string]any{"_body": string(data)}
	}
	return res.StatusCode, m
}

func (a *apiClient) want(method, path string, body any, status int) map[string]any {
	a.t.Helper()
	got, m := a.call(method, path, body)
	if got != status {
		a.t.Fatalf("%s %s: %d %v, want %d", method, path, got, m, status)
	}
	return m
}

// waitAPI polls GET path until ok says the answer is what the test waits for.
func (a *apiClient) waitAPI(what, path string, ok func(m map[string]any) bool) map[string]any {
	a.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		_, m := a.call("GET", path, nil)
		if ok(m) {
			return m
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("%s: still %v", what, m)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestNodeAPIRefusals drives the real services through the JSON API against a real btcd: a
// wallet restored and funded, then each refusal of the wallet and of the custody must come
// back with the status and the field the pages rely on.
func TestNodeAPIRefusals(t *testing.T) {
	if testing.Short() {
		t.Skip("starts btcd")
	}
	// btcd on regtest relays non-standard transactions, and it counts a transaction whose
	// locktime has not passed as one: --rejectnonstd makes it refuse them, as on mainnet.
	node := regtest.Start(t, regtest.Args("--rejectnonstd"))
	node.Generate(101)
	bx := startBox(t)
	a := newAPIClient(t, "http://"+bx.addr)
	a.csrf = a.want("POST", "/api/setup", map[string]string{"password": testPassword}, 200)["csrf"].(string)

	// Before the wallet exists the node pages say so; the backend can be chosen already.
	if m := a.want("GET", "/api/node", nil, 409); !strings.Contains(m["error"].(string), "No wallet") {
		t.Errorf("GET /api/node without a wallet: %v", m)
	}
	rpc := map[string]any{"kind": "rpc", "host": node.RPCAddr, "user": node.User, "pass": node.Pass, "cert": string(node.Cert)}
	bad := map[string]any{"kind": "rpc", "host": "localhost", "user": "u", "cert": "nope"}
	if m := a.want("POST", "/api/node/backend", bad, 400); m["fields"].(map[string]any)["host"] == nil ||
		m["fields"].(map[string]any)["pass"] == nil || m["fields"].(map[string]any)["cert"] == nil {
		t.Errorf("invalid settings: %v", m)
	}
	a.want("POST", "/api/node/backend", rpc, 200)
	a.want("POST", "/api/wallet/setup", map[string]string{"mnemonic": testMnemonic, "protection": "passphrase",
		"passphrase": testPassphrase}, 200)

	// The wallet service starts on its own, follows the saved backend and syncs.
	_, height := node.Best()
	a.waitAPI("sync", "/api/node", func(m map[string]any) bool {
		s, _ := m["sync"].(map[string]any)
		w, _ := s["wallet"].(map[string]any)
		return s["state"] == "synced" && w["height"] == float64(height)
	})
	addr := a.want("POST", "/api/node/address", map[string]any{}, 200)["address"].(string)
	dest, _ := btcutil.DecodeAddress(addr, node.Params)
	node.SendTo(dest, 50_000_000)
	node.Generate(1)
	a.waitAPI("balance", "/api/node", func(m map[string]any) bool {
		b, _ := m["balance"].(map[string]any)
		return b["confirmed"] == float64(50_000_000)
	})

	btcd := node.MiningAddress().EncodeAddress()
	pay := func(address string, amount int64, extra map[string]any) map[string]any {
		req := map[string]any{"payments": []any{map[string]any{"address": address, "amount": amount}}}
		for k, v := range extra {
			req[k] = v
		}
		return req
	}
	tests := []struct {
		name   string
		req    map[string]any
		status int
		field  string
		want   string
	}{
		{"invalid address", pay("bcrt1qnotanaddress", 10_000, nil), 400, "address", "not a valid Bitcoin address"},
		{"mainnet address", pay("bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", 10_000, nil), 400, "address", "another Bitcoin network"},
		{"dust", pay(btcd, 100, nil), 400, "amount", "dust"},
		{"too much", pay(btcd, 80_000_000, nil), 422, "amount", "Not enough spendable bitcoin"},
		{"fee too low", pay(btcd, 10_000, map[string]any{"fee_rate": 500}), 400, "fee_rate", "below what the network relays"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, m := a.call("POST", "/api/node/propose", tt.req)
			fields, _ := m["fields"].(map[string]any)
			msg, _ := fields[tt.field].(string)
			if status != tt.status || !strings.Contains(msg, tt.want) {
				t.Fatalf("got %d %v, want %d with %s: %q", status, m, tt.status, tt.field, tt.want)
			}
		})
	}

	// The signing policy (at most 1000 sat/vB) refuses at confirmation, with its reasons.
	p := a.want("POST", "/api/node/propose", pay(btcd, 10_000_000, map[string]any{"fee_rate": 1_500_000}), 200)
	if m := a.want("POST", "/api/node/send", map[string]any{"proposal": p["id"]}, 422); len(m["violations"].([]any)) == 0 {
		t.Errorf("policy refusal without reasons: %v", m)
	}
	// A locked wallet cannot send; unlocked again it can.
	p = a.want("POST", "/api/node/propose", pay(btcd, 10_000_000, nil), 200)
	a.want("POST", "/api/wallet/lock", nil, 200)
	if m := a.want("POST", "/api/node/send", map[string]any{"proposal": p["id"]}, 409); !strings.Contains(m["error"].(string), "locked") {
		t.Errorf("send while locked: %v", m)
	}
	if st := a.want("POST", "/api/wallet/unlock", map[string]string{"passphrase": testPassphrase}, 200); st["state"] != hsm.StateUnlocked {
		t.Fatalf("unlock: %v", st)
	}
	// A locktime in the future: the node refuses it until then.
	p = a.want("POST", "/api/node/propose", pay(btcd, 10_000_000, map[string]any{"lock_time": height + 100}), 200)
	if m := a.want("POST", "/api/node/send", map[string]any{"proposal": p["id"]}, 409); m["fields"].(map[string]any)["lock_time"] == nil {
		t.Errorf("future locktime: %v", m)
	}
	// And a payment that is fine goes out.
	p = a.want("POST", "/api/node/propose", pay(btcd, 10_000_000, nil), 200)
	txid := a.want("POST", "/api/node/send", map[string]any{"proposal": p["id"]}, 200)["txid"].(string)
	a.want("POST", "/api/node/send", map[string]any{"proposal": p["id"]}, 410)
	node.Generate(1)
	a.waitAPI("confirmed", "/api/node", func(m map[string]any) bool {
		s, _ := m["sync"].(map[string]any)
		w, _ := s["wallet"].(map[string]any)
		return w["height"] == float64(height+2)
	})
	req, _ := http.NewRequest("GET", a.base+"/api/node/history", nil)
	res, err := a.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var hist []map[string]any
	if err := json.NewDecoder(res.Body).Decode(&hist); err != nil || len(hist) < 2 || hist[0]["txid"] != txid ||
		hist[0]["confirmations"] != float64(1) {
		t.Errorf("history: %v %v", err, hist)
	}
}
