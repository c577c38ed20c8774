package fleet

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	dev "github.com/anya-edge/anya/appliance/update/fleet"
)

// TestStoreRoundTrip: every record type goes in and comes out equal, lists are complete and
// ordered, and everything survives closing and reopening the database.
func TestStoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fleet.db")
	s, err := OpenBoltStore(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	tok := Token{ID: "abc", Hash: "abcdef", Label: "l", Channel: "stable", Uses: 3, Used: 1, Created: now, Expires: now.Add(time.Hour)}
	d := Device{ID: "d-000000000000000000000001", PublicKey: []byte{1, 2, 3}, Attestation: dev.AttestationTPM,
		Hardware: dev.Hardware{Arch: "arm64", Model: "m", CPUs: 4}, Channel: "beta", TokenID: "abc", Enrolled: now,
		LastSeen: now, CheckIns: 7, Offered: "beta-3", MaxTarget: 3, Floor: 5, Seen: []Seen{{TS: 9, Nonce: "n"}},
		Report: dev.Report{Version: "1", Counter: 2, Slot: "b", Arch: "arm64", Health: dev.HealthDegraded, LastError: "e",
			Target: &dev.Target{Version: "3", Counter: 3, State: dev.TargetRolledBack}}}
	var rels []Release
	for _, c := range []struct {
		ch string
		n  uint64
	}{{"stable", 2}, {"stable", 10}, {"beta", 3}, {"stable", 9}} {
		r := rel(c.ch, c.n, 25, StateActive)
		r.Sizes = map[string]int64{"amd64": 100}
		r.Added, r.Expires = now, now.Add(time.Hour)
		r.Rollout.History = []Event{{At: now, What: "added"}}
		rels = append(rels, r)
	}
	o := Outcome{Release: "beta-3", Device: d.ID, State: OutcomeFailed, Window: 1, At: now, Error: "boom"}
	err = s.Update(ctx, func(tx Tx) error {
		if err := tx.PutToken(tok); err != nil {
			return err
		}
		if err := tx.PutDevice(d); err != nil {
			return err
		}
		for _, r := range rels {
			if err := tx.PutRelease(r); err != nil {
				return err
			}
		}
		return tx.PutOutcome(o)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx Tx) error { return tx.PutRelease(Release{ID: "x-1", Channel: "stable", Counter: 1}) }); err == nil {
		t.Fatal("release with a mismatched id stored")
	}
	check := func(s *BoltStore) {
		t.Helper()
		err := s.View(ctx, func(tx Tx) error {
			if got, ok, err := tx.Token(tok.Hash); err != nil || !ok || !reflect.DeepEqual(got, tok) {
				return fmt.Errorf("token %+v %v %v", got, ok, err)
			}
			if got, ok, err := tx.Device(d.ID); err != nil || !ok || !reflect.DeepEqual(got, d) {
				return fmt.Errorf("device %+v %v %v", got, ok, err)
			}
			if got, ok, err := tx.Release("stable-10"); err != nil || !ok || !reflect.DeepEqual(got, rels[1]) {
				return fmt.Errorf("release %+v %v %v", got, ok, err)
			}
			if _, ok, err := tx.Release("garbage"); ok || err != nil {
				return fmt.Errorf("garbage release id: %v %v", ok, err)
			}
			if got, ok, err := tx.Outcome("beta-3", d.ID); err != nil || !ok || !reflect.DeepEqual(got, o) {
				return fmt.Errorf("outcome %+v %v %v", got, ok, err)
			}
			st, err := tx.Releases("stable", 0)
			if err != nil || len(st) != 3 || st[0].Counter != 10 || st[1].Counter != 9 || st[2].Counter != 2 {
				return fmt.Errorf("stable releases %v %v", st, err)
			}
			if rs, err := tx.Releases("stable", 9); err != nil || len(rs) != 2 || rs[1].Counter != 9 {
				return fmt.Errorf("stable releases from 9: %v %v", rs, err)
			}
			if rs, err := tx.Releases("stable", 11); err != nil || len(rs) != 0 {
				return fmt.Errorf("stable releases from 11: %v %v", rs, err)
			}
			if rs, err := tx.Releases("nope", 0); err != nil || len(rs) != 0 {
				return fmt.Errorf("missing channel: %v %v", rs, err)
			}
			all, err := tx.Releases("", 0)
			if err != nil || len(all) != 4 {
				return fmt.Errorf("all releases %d %v", len(all), err)
			}
			if os, err := tx.Outcomes("beta-3"); err != nil || len(os) != 1 {
				return fmt.Errorf("outcomes %v %v", os, err)
			}
			if ts, err := tx.Tokens(); err != nil || len(ts) != 1 {
				return fmt.Errorf("tokens %v %v", ts, err)
			}
			if ds, err := tx.Devices(); err != nil || len(ds) != 1 {
				return fmt.Errorf("devices %v %v", ds, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(Tx) error { return nil }); !errors.Is(err, errClosed) {
		t.Fatalf("update after close: %v", err)
	}
	s, err = OpenBoltStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check(s)
	if err := s.Update(ctx, func(tx Tx) error {
		if err := tx.DeleteToken(tok.Hash); err != nil {
			return err
		}
		return tx.DeleteDevice(d.ID)
	}); err != nil {
		t.Fatal(err)
	}
	s.View(ctx, func(tx Tx) error {
		if _, ok, _ := tx.Device(d.ID); ok {
			t.Error("device not deleted")
		}
		if _, ok, _ := tx.Token(tok.Hash); ok {
			t.Error("token not deleted")
		}
		return nil
	})
}

// TestGroupCommit: concurrent updates are committed in groups; one that fails or panics gets
// its own error and rolls back only itself.
func TestGroupCommit(t *testing.T) {
	ctx := context.Background()
	s, err := OpenBoltStore(filepath.Join(t.TempDir(), "fleet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 200
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = s.Update(ctx, func(tx Tx) error {
				id := fmt.Sprintf("d-%024d", i)
				if err := tx.PutDevice(Device{ID: id}); err != nil {
					return err
				}
				switch i % 50 {
				case 7:
					return errors.New("refused")
				case 13:
					panic("bad update")
				}
				return nil
			})
		})
	}
	wg.Wait()
	var stored int
	s.View(ctx, func(tx Tx) error {
		ds, _ := tx.Devices()
		stored = len(ds)
		return nil
	})
	for i, err := range errs {
		switch i % 50 {
		case 7, 13:
			if err == nil {
				t.Errorf("update %d: no error", i)
			}
		default:
			if err != nil {
				t.Errorf("update %d: %v", i, err)
			}
		}
	}
	if want := n - 2*n/50; stored != want {
		t.Fatalf("%d devices stored, want %d", stored, want)
	}
}
