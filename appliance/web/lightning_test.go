package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/anya-edge/anya/node/lightning"
	"github.com/anya-edge/anya/node/lightning/connmgr"
	"github.com/anya-edge/anya/node/lightning/graph"
	"github.com/anya-edge/anya/node/lightning/route"
)

// fakeLightning is a Lightning node whose answers the test sets.
type fakeLightning struct {
	running bool
	peers   []string
	queries []lightning.RouteQuery
}

func (f *fakeLightning) LightningStatus() (lightning.Status, bool, string) {
	if !f.running {
		return lightning.Status{}, false, "Unlock the wallet: the node key comes from its seed."
	}
	st := lightning.Status{PubKey: "03aa", Graph: graph.Stats{Nodes: 3, Channels: 2, Policies: 4}, LastSync: time.Date(2026, 11, 26, 17, 0, 0, 0, time.UTC)}
	for _, p := range f.peers {
		st.Peers = append(st.Peers, connmgr.PeerStatus{ID: p, Addr: "127.0.0.1:9735", Connected: true})
	}
	return st, true, ""
}

func (f *fakeLightning) AddLightningPeer(uri string) error {
	t, err := lightning.ParseURI(uri)
	if err != nil {
		return err
	}
	f.peers = append(f.peers, t.ID)
	return nil
}

func (f *fakeLightning) QueryRoute(q lightning.RouteQuery) (lightning.RouteAnswer, error) {
	f.queries = append(f.queries, q)
	switch q.Target {
	case "bad":
		return lightning.RouteAnswer{}, fmt.Errorf("%w: target", lightning.ErrBadQuery)
	case "far":
		return lightning.RouteAnswer{}, fmt.Errorf("%w: far away", route.ErrNoRoute)
	}
	id, _ := graph.ParseNodeID("02" + strings.Repeat("22", 32))
	r := route.Route{Hops: []route.Hop{{ChannelID: 7, PubKey: id, AmtToForward: q.AmountSat * 1000}}, TotalAmount: q.AmountSat * 1000, Probability: 0.9}
	return lightning.RouteAnswer{Parts: []route.Route{r}, AmountMsat: q.AmountSat * 1000, Probability: 0.9, BuildRoute: []string{"lncli buildroute --amt=1 --hops=02"}}, nil
}

func TestLightningAbsent(t *testing.T) {
	h := newHarness(t)
	c, _ := h.setup()
	for _, p := range []string{"/api/lightning", "/lightning"} {
		if res := h.do(req("GET", p, "", c, "")); res.StatusCode != http.StatusNotFound {
			t.Fatalf("%s without a Lightning node: %s", p, res.Status)
		}
	}
	if res := h.do(req("GET", "/", "", c, "")); strings.Contains(res.body, `href="/lightning"`) {
		t.Fatal("the nav links to a Lightning page the box does not have")
	}
}

func TestLightningAPI(t *testing.T) {
	h := newHarness(t)
	f := &fakeLightning{}
	h.srv.ln = f
	c, csrf := h.setup()

	res := h.do(req("GET", "/api/lightning", "", c, ""))
	if res.StatusCode != http.StatusOK || res.json(t)["running"] != false || !strings.Contains(res.body, "Unlock") {
		t.Fatalf("stopped node: %s %s", res.Status, res.body)
	}
	f.running = true
	pub := "03c3fec33a6929cef9428891c871592029b5ad2205396140273ccf71d6a7f7e3b6"
	tests := []struct {
		name   string
		r      *http.Request
		status int
		want   string
	}{
		{"status", req("GET", "/api/lightning", "", c, ""), 200, `"channels":2`},
		{"add peer", req("POST", "/api/lightning/peer", jsonBody(map[string]string{"uri": pub + "@127.0.0.1:9735"}), c, csrf), 200, "connecting"},
		{"bad peer", req("POST", "/api/lightning/peer", jsonBody(map[string]string{"uri": "nonsense"}), c, csrf), 400, "pubkey@host:port"},
		{"peer without CSRF", req("POST", "/api/lightning/peer", jsonBody(map[string]string{"uri": pub + "@127.0.0.1:1"}), c, ""), 403, ""},
		{"route", req("GET", "/api/lightning/route?source=a&target=b&amt_sat=1000&mpp=1", "", c, ""), 200, `"buildroute"`},
		{"route without amount", req("GET", "/api/lightning/route?source=a&target=b", "", c, ""), 400, "amt_sat"},
		{"bad route query", req("GET", "/api/lightning/route?source=a&target=bad&amt_sat=1", "", c, ""), 400, "bad route query"},
		{"no route", req("GET", "/api/lightning/route?source=a&target=far&amt_sat=1", "", c, ""), 404, "no route"},
		{"route without session", req("GET", "/api/lightning/route?source=a&target=b&amt_sat=1", "", nil, ""), 401, ""},
	}
	for _, tt := range tests {
		res := h.do(tt.r)
		if res.StatusCode != tt.status || !strings.Contains(res.body, tt.want) {
			t.Errorf("%s: %s %s; want %d with %q", tt.name, res.Status, res.body, tt.status, tt.want)
		}
	}
	if len(f.peers) != 1 || f.peers[0] != pub {
		t.Fatalf("peers %v", f.peers)
	}
	if q := f.queries[0]; q.Source != "a" || q.Target != "b" || q.AmountSat != 1000 || !q.MPP {
		t.Fatalf("query %+v", q)
	}
}

func TestLightningPage(t *testing.T) {
	h := newHarness(t)
	f := &fakeLightning{running: true}
	h.srv.ln = f
	c, csrf := h.setup()

	res := h.do(req("GET", "/lightning", "", c, ""))
	if res.StatusCode != 200 || !strings.Contains(res.body, "3 nodes, 2 channels, 4 policies") || !strings.Contains(res.body, `href="/lightning" aria-current="page"`) {
		t.Fatalf("page: %s\n%s", res.Status, res.body)
	}
	const peer = "03c3fec33a6929cef9428891c871592029b5ad2205396140273ccf71d6a7f7e3b6"
	form := url.Values{"csrf": {csrf}, "uri": {peer + "@127.0.0.1:9735"}}.Encode()
	res = h.do(req("POST", "/lightning/peer", form, c, ""))
	if res.StatusCode != 200 || !strings.Contains(res.body, "Connecting to the peer") || !strings.Contains(res.body, peer) {
		t.Fatalf("add peer: %s\n%s", res.Status, res.body)
	}
	res = h.do(req("GET", "/lightning?source=a&target=b&amt_sat=5", "", c, ""))
	if res.StatusCode != 200 || !strings.Contains(res.body, `id="ln-answer"`) || !strings.Contains(res.body, "lncli buildroute") {
		t.Fatalf("route page: %s\n%s", res.Status, res.body)
	}
	res = h.do(req("GET", "/lightning?source=a&target=far&amt_sat=5", "", c, ""))
	if res.StatusCode != 404 || !strings.Contains(res.body, `id="ln-route-problem"`) {
		t.Fatalf("no route page: %s", res.Status)
	}
	f.running = false
	res = h.do(req("GET", "/lightning", "", c, ""))
	if !strings.Contains(res.body, "Unlock the wallet") || strings.Contains(res.body, `id="ln-route"`) {
		t.Fatalf("stopped page:\n%s", res.body)
	}
}
