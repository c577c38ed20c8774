package p2p

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/wire"

	"github.com/anya-edge/anya/node/regtest"
	"github.com/anya-edge/anya/storage"
)

func openDB(t testing.TB, dir string) *storage.DB {
	t.Helper()
	db, err := storage.Open(filepath.Join(dir, "anya.db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// run starts a manager and returns it with a stop function that waits for it to end.
func run(t testing.TB, cfg Config) (*Manager, func()) {
	t.Helper()
	if cfg.Params == nil {
		cfg.Params = &chaincfg.RegressionNetParams
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = m.Run(ctx); close(done) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return m, stop
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSyncHeadersAndFiltersResume(t *testing.T) {
	n := regtest.Start(t)
	n.Generate(300)
	best, height := n.Best()
	dir := t.TempDir()

	db := openDB(t, dir)
	m, stop := run(t, Config{Peers: []string{n.P2PAddr}, DB: db})
	waitFor(t, "headers and filters at the tip", func() bool {
		return m.Chain().Tip().Hash == *best && m.FilterTip().Hash == *best
	})
	if got := m.Chain().Tip().Height; got != height {
		t.Fatalf("tip height %d, want %d", got, height)
	}
	// Every filter header we derived matches btcd's.
	for _, h := range []int32{0, 1, 150, 300} {
		hash, _ := m.Chain().HashAt(h)
		want, err := n.RPC().GetCFilterHeader(&hash, wire.GCSFilterRegular)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := m.FilterHeader(hash)
		if got != want.PrevFilterHeader {
			t.Fatalf("filter header at %d: %v, btcd %v", h, got, want.PrevFilterHeader)
		}
	}
	st := m.Stats()
	t.Logf("first sync: %+v", st)
	if st.Headers != 300 || st.CFilters != 301 {
		t.Fatalf("first sync received %d headers, %d filters; want 300, 301", st.Headers, st.CFilters)
	}
	stop()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openDB(t, dir)
	defer db.Close()
	m2, stop2 := run(t, Config{Peers: []string{n.P2PAddr}, DB: db})
	defer stop2()
	if m2.Chain().Tip().Hash != *best {
		t.Fatalf("restart: tip %v, want stored %v", m2.Chain().Tip(), best)
	}
	waitFor(t, "handshake and an empty headers reply", func() bool { return m2.Stats().HeadersMsgs >= 1 })
	time.Sleep(300 * time.Millisecond)
	st = m2.Stats()
	t.Logf("after restart: %+v", st)
	if st.Headers != 0 || st.CFHeadersMsgs != 0 || st.CFilters != 0 {
		t.Fatalf("restart re-downloaded: %+v", st)
	}
	// New blocks are followed from the announcement.
	n.Generate(5)
	best, _ = n.Best()
	waitFor(t, "new blocks", func() bool { return m2.FilterTip().Hash == *best })
	if st := m2.Stats(); st.Headers != 5 || st.CFilters != 5 {
		t.Fatalf("after 5 new blocks: %+v", st)
	}
}
