package p2p

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/anya-edge/anya/node/regtest"
)

// dnsServer is a tiny DNS server on 127.0.0.1 (UDP) that answers A queries for the names
// in zone with their addresses, empty answers for other types, and NXDOMAIN otherwise.
type dnsServer struct {
	pc   net.PacketConn
	mu   sync.Mutex
	zone map[string][][4]byte // fully qualified, lower case
	qs   []string             // names asked (A queries)
}

func startDNS(t *testing.T, zone map[string][][4]byte) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{pc: pc, zone: zone}
	t.Cleanup(func() { pc.Close() })
	go s.serve()
	return s
}

func (s *dnsServer) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp, ok := s.answer(buf[:n]); ok {
			_, _ = s.pc.WriteTo(resp, from)
		}
	}
}

func (s *dnsServer) answer(req []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	hdr, err := p.Start(req)
	if err != nil {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	name := strings.ToLower(q.Name.String())
	s.mu.Lock()
	addrs, known := s.zone[name]
	// Names the system's search domains produce (seed.anya.test.example.com.) are
	// answered but not recorded: the tests look at the names the client asks for.
	if q.Type == dnsmessage.TypeA && strings.HasSuffix(name, ".anya.test.") {
		s.qs = append(s.qs, name)
	}
	s.mu.Unlock()
	rcode := dnsmessage.RCodeSuccess
	if !known {
		rcode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: hdr.ID, Response: true, Authoritative: true,
		RecursionDesired: hdr.RecursionDesired, RCode: rcode})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, false
	}
	if err := b.Question(q); err != nil {
		return nil, false
	}
	if err := b.StartAnswers(); err != nil {
		return nil, false
	}
	if q.Type == dnsmessage.TypeA {
		for _, a := range addrs {
			rh := dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 1}
			if err := b.AResource(rh, dnsmessage.AResource{A: a}); err != nil {
				return nil, false
			}
		}
	}
	resp, err := b.Finish()
	return resp, err == nil
}

// queries returns the A queries received so far.
func (s *dnsServer) queries() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.qs)
}

// resolver sends every query to the server, whatever the system's configuration.
func (s *dnsServer) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", s.pc.LocalAddr().String())
	}}
}

func TestResolveSeeds(t *testing.T) {
	loop := [4]byte{127, 0, 0, 1}
	dns := startDNS(t, map[string][][4]byte{
		"seed.anya.test.":       {loop, loop, {127, 0, 0, 2}},
		"x49.filter.anya.test.": {{127, 0, 0, 3}},
		"nofilter.anya.test.":   {{127, 0, 0, 4}}, // claims filtering, only answers plainly
	})
	for _, tc := range []struct {
		name    string
		seeds   []chaincfg.DNSSeed
		want    []string
		queries []string
		err     bool
	}{
		{"plain seed, duplicates dropped", []chaincfg.DNSSeed{{Host: "seed.anya.test"}},
			[]string{"127.0.0.1:1234", "127.0.0.2:1234"}, []string{"seed.anya.test."}, false},
		{"filtering seed asked for filter peers", []chaincfg.DNSSeed{{Host: "filter.anya.test", HasFiltering: true}},
			[]string{"127.0.0.3:1234"}, []string{"x49.filter.anya.test."}, false},
		{"filtering seed falls back to the plain name", []chaincfg.DNSSeed{{Host: "nofilter.anya.test", HasFiltering: true}},
			[]string{"127.0.0.4:1234"}, []string{"x49.nofilter.anya.test.", "nofilter.anya.test."}, false},
		{"one seed down, another answers", []chaincfg.DNSSeed{{Host: "gone.anya.test"}, {Host: "seed.anya.test"}},
			[]string{"127.0.0.1:1234", "127.0.0.2:1234"}, []string{"gone.anya.test.", "seed.anya.test."}, false},
		{"no seed answers", []chaincfg.DNSSeed{{Host: "gone.anya.test"}}, nil, []string{"gone.anya.test."}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			params := chaincfg.RegressionNetParams
			params.DNSSeeds = tc.seeds
			params.DefaultPort = "1234"
			m, err := New(Config{Params: &params, Logger: quiet, Resolver: dns.resolver()})
			if err != nil {
				t.Fatal(err)
			}
			before := len(dns.queries())
			got, err := m.resolveSeeds(context.Background())
			if tc.err != (err != nil) {
				t.Fatalf("err %v", err)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("addresses %v, want %v", got, tc.want)
			}
			qs := dns.queries()[before:]
			if !slices.Equal(qs, tc.queries) {
				t.Fatalf("queries %v, want %v", qs, tc.queries)
			}
		})
	}
}

// TestDNSSeedsAgainstBtcd: with no peers configured, the light client finds a btcd node
// through a DNS seed (a local DNS server answering 127.0.0.1, the node listening on the
// network's default port), syncs from it, and asks the seed again once the node is gone,
// which lets it reconnect when the node is back.
func TestDNSSeedsAgainstBtcd(t *testing.T) {
	n := regtest.Start(t, regtest.Simnet()) // simnet keeps its chain across Restart
	n.Generate(20)
	_, port, err := net.SplitHostPort(n.P2PAddr)
	if err != nil {
		t.Fatal(err)
	}
	dns := startDNS(t, map[string][][4]byte{"seed.anya.test.": {{127, 0, 0, 1}}})
	params := *n.Params
	params.DNSSeeds = []chaincfg.DNSSeed{{Host: "seed.anya.test"}}
	params.DefaultPort = port

	m, _ := run(t, Config{Params: &params, Logger: quiet, Resolver: dns.resolver(),
		BackoffMin: 100 * time.Millisecond, BackoffMax: 500 * time.Millisecond})
	best, _ := n.Best()
	waitFor(t, "sync through the seed", func() bool { return m.FilterTip().Hash == *best })
	if got := m.Connected(); !slices.Equal(got, []string{"127.0.0.1:" + port}) {
		t.Fatalf("connected to %v", got)
	}
	lookups := m.Stats().SeedLookups
	if lookups != 1 {
		t.Fatalf("%d seed lookups, want 1", lookups)
	}

	n.Stop()
	waitFor(t, "the peer to go", func() bool { return len(m.Connected()) == 0 })
	waitFor(t, "the seed to be asked again", func() bool { return len(dns.queries()) >= 2 })
	n.Restart()
	more := n.Generate(3)
	waitFor(t, "reconnect and sync the new blocks", func() bool { return m.FilterTip().Hash == *more[2] })
	t.Logf("DNS queries: %d, seed lookups with addresses: %d", len(dns.queries()), m.Stats().SeedLookups)
}
