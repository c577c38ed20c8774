package agent_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/anya-edge/anya/appliance/update/agent"
	"github.com/anya-edge/anya/storage"
	"go.etcd.io/bbolt"
)

type gate bool

func (g gate) MigrationsAllowed() bool { return bool(g) }

func TestMigrateHoldsBreaking(t *testing.T) {
	db, err := storage.Open(filepath.Join(t.TempDir(), "anya.db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ran := map[int]int{}
	m := func(v int, breaking bool) storage.Migration {
		return storage.Migration{Version: v, Name: "m", Breaking: breaking, Up: func(*bbolt.Tx) error { ran[v]++; return nil }}
	}
	old := []storage.Migration{m(1, false), m(2, false)}
	next := append(old[:2:2], m(3, false), m(4, true), m(5, false))

	for _, c := range []struct {
		name    string
		ms      []storage.Migration
		gate    agent.Gate
		version int
		held    int
	}{
		{"the old firmware", old, gate(false), 2, 0},
		{"a trial of the new firmware: up to the breaking one", next, gate(false), 3, 2},
		{"the same trial again", next, gate(false), 3, 2},
		{"after the commit", next, gate(true), 5, 0},
		{"no gate", next, nil, 5, 0},
	} {
		held, err := agent.Migrate(db, c.gate, "wallet", c.ms)
		v, _ := db.SchemaVersion("wallet")
		if err != nil || held != c.held || v != c.version {
			t.Fatalf("%s: held %d, version %d, %v; want %d, %d", c.name, held, v, err, c.held, c.version)
		}
	}
	for v, n := range ran {
		if n != 1 {
			t.Fatalf("migration %d ran %d times", v, n)
		}
	}
	// Once the breaking migration ran, the old firmware refuses the data (storage's rule),
	// which is why it only runs after the commit.
	if _, err := agent.Migrate(db, gate(false), "wallet", old); !errors.Is(err, storage.ErrSchemaTooNew) {
		t.Fatalf("old firmware on the new schema: %v", err)
	}
}

// TestTrialKeepsDataReadable: during a trial the old firmware can still open everything the
// new one touched, the update records included.
func TestTrialKeepsDataReadable(t *testing.T) {
	b := newBox(t)
	v2 := makeRelease(t, "2.0.0", 20, 256<<10)
	installV2(t, b, v2)
	s, entry := b.sdBoot()
	run := b.start(s, v2, entry)
	if _, err := run.Boot(ctx); err != nil {
		t.Fatal(err)
	}
	ms := []storage.Migration{
		{Version: 1, Name: "table", Up: func(*bbolt.Tx) error { return nil }},
		{Version: 2, Name: "new format", Breaking: true, Up: func(*bbolt.Tx) error { return nil }},
	}
	if held, err := agent.Migrate(run.db, run, "wallet", ms); err != nil || held != 1 {
		t.Fatalf("trial migrate: held %d, %v", held, err)
	}
	run.stop()
	db, err := storage.Open(b.dbPath, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := agent.Migrate(db, agent.Allow{}, "wallet", ms[:1]); err != nil {
		t.Fatalf("old firmware after the trial: %v", err)
	}
	sch, err := db.Schema(agent.Subsystem)
	if err != nil || sch.MinReaderVersion > 1 {
		t.Fatalf("update schema %+v, %v", sch, err)
	}
}
