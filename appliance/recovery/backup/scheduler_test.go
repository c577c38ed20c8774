package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anya-edge/anya/hsm"
	"github.com/anya-edge/anya/storage"
)

func listBackups(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestScheduler(t *testing.T) {
	b := openBox(t, tempPath(t, "box.db"))
	b.setup(abandon)
	b.fill(20)
	dir := t.TempDir()
	// A file of another kind and another wallet's backup are never touched.
	foreign := []string{"notes.txt", "anya-backup-deadbeef-0123456789abcdef-20200101T000000.000Z.anyabak"}
	for _, name := range foreign {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	opts := b.options()
	opts.Accounts = nil
	s, err := NewScheduler(SchedulerConfig{DB: b.db, Custody: b.c, Dir: dir, Keep: 2,
		Debounce: 100 * time.Millisecond, MaxDelay: 400 * time.Millisecond, Interval: time.Hour, Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	defer func() { cancel(); <-done }()

	own := func() []string {
		var out []string
		for _, n := range listBackups(t, dir) {
			if strings.HasPrefix(n, "anya-backup-73c5da0a-") {
				out = append(out, n)
			}
		}
		return out
	}
	waitFor(t, "the start-up backup", func() bool { return len(own()) == 1 })
	if r := s.Last(); !r.Written || r.Reason != "start" || r.Err != nil {
		t.Fatalf("start: %+v", r)
	}

	// Unchanged content: no new file, however asked.
	if r := s.BackupNow("request"); r.Written || r.Err != nil || !strings.Contains(r.Note, "no change") {
		t.Fatalf("unchanged: %+v", r)
	}
	// A change to something backups leave out (a session) makes no backup either.
	mustPut(t, storage.NewTable[map[string]string](b.db, "web", "sessions"), "abc", map[string]string{"csrf": "x"})
	time.Sleep(300 * time.Millisecond)
	if n := len(own()); n != 1 {
		t.Fatalf("a session change made a backup: %d files", n)
	}

	// A burst of changes makes one backup after it is quiet, or after MaxDelay.
	labels := storage.NewTable[string](b.db, "wallet", "labels")
	start := time.Now()
	for i := range 8 {
		mustPut(t, labels, "burst", strings.Repeat("x", i))
		time.Sleep(20 * time.Millisecond)
	}
	waitFor(t, "a backup after the burst", func() bool { return s.Last().Reason == "change" && s.Last().Written })
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Fatalf("backup after %v: not debounced", took)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(own()); n != 2 {
		t.Fatalf("%d backups after one burst, want 2 in all", n)
	}

	// A steady stream of changes still gets a backup within MaxDelay.
	stop := time.Now().Add(900 * time.Millisecond)
	before := s.Last().Time
	for time.Now().Before(stop) {
		mustPut(t, labels, "stream", time.Now().String())
		time.Sleep(30 * time.Millisecond)
	}
	if r := s.Last(); !r.Time.After(before) || !r.Written {
		t.Fatalf("no backup during a steady stream of changes: %+v", r)
	}

	// Rotation kept the newest two; every file verifies; no temporary file is left.
	waitFor(t, "the last backup", func() bool {
		time.Sleep(200 * time.Millisecond)
		return s.BackupNow("request").Note != ""
	})
	files := own()
	if len(files) != 2 {
		t.Fatalf("files %v", listBackups(t, dir))
	}
	if got := listBackups(t, dir); len(got) != 4 {
		t.Fatalf("directory holds %v", got)
	}
	key, _ := b.c.BackupKey()
	defer key.Zero()
	for _, name := range files {
		data, _ := os.ReadFile(filepath.Join(dir, name))
		if _, err := Verify(bytes.NewReader(data), key, readOptions()); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	newest, _ := os.ReadFile(filepath.Join(dir, files[1]))
	m, _ := Verify(bytes.NewReader(newest), key, readOptions())
	if len(m.Accounts) == 0 {
		t.Fatal("the scheduler's backups carry no accounts")
	}
}

// fakeCustody fails as a locked custody whose wallet predates backups does.
type fakeCustody struct{ err error }

func (f fakeCustody) BackupRecipient() (hsm.BackupRecipient, error) {
	return hsm.BackupRecipient{}, f.err
}
func (f fakeCustody) Status() (hsm.Status, error) { return hsm.Status{}, nil }

func TestSchedulerNoKey(t *testing.T) {
	b := openBox(t, tempPath(t, "box.db"))
	dir := t.TempDir()
	for _, tc := range []struct {
		err     error
		wantErr bool
	}{{hsm.ErrNoWallet, false}, {hsm.ErrLocked, true}} {
		s, err := NewScheduler(SchedulerConfig{DB: b.db, Custody: fakeCustody{tc.err}, Dir: dir, Options: Options{Policy: testPolicy(), Network: "mainnet"}})
		if err != nil {
			t.Fatal(err)
		}
		r := s.BackupNow("request")
		if r.Written || (r.Err != nil) != tc.wantErr || (tc.wantErr && !errors.Is(r.Err, hsm.ErrLocked)) {
			t.Fatalf("%v: %+v", tc.err, r)
		}
	}
	if files := listBackups(t, dir); len(files) != 0 {
		t.Fatalf("files %v", files)
	}
	if _, err := NewScheduler(SchedulerConfig{DB: b.db, Custody: b.c, Dir: dir, Options: Options{Policy: Policy{}, Network: "mainnet"}}); err == nil {
		t.Fatal("empty policy accepted")
	}
}

// TestSchedulerCopiesToSticks: a stick that arrives gets a copy of the newest backup at once,
// a later change reaches every stick, a stick with an unreadable directory reports the
// error without stopping the backup, and each stick keeps its own newest Keep backups.
func TestSchedulerCopiesToSticks(t *testing.T) {
	b := openBox(t, tempPath(t, "box.db"))
	b.setup(abandon)
	b.fill(2)
	dir, stick := t.TempDir(), t.TempDir()
	var mu sync.Mutex
	var sticks []string
	setSticks := func(d ...string) { mu.Lock(); sticks = d; mu.Unlock() }
	opts := b.options()
	opts.Accounts = nil
	s, err := NewScheduler(SchedulerConfig{DB: b.db, Custody: b.c, Dir: dir, Keep: 2, Debounce: 50 * time.Millisecond,
		MaxDelay: 200 * time.Millisecond, Interval: time.Hour, CopyPoll: 20 * time.Millisecond, Options: opts,
		Copies: func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(sticks) }})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "the start-up backup", func() bool { return s.Last().Reason == "start" && s.Last().Written })

	setSticks(stick)
	waitFor(t, "a copy on the stick that arrived", func() bool { return s.Last().Reason == "usb stick" })
	local, onStick := listBackups(t, dir)[0], listBackups(t, stick)[0]
	a, _ := os.ReadFile(filepath.Join(dir, local))
	c, _ := os.ReadFile(filepath.Join(stick, onStick))
	if local != onStick || !bytes.Equal(a, c) {
		t.Fatalf("the stick's copy differs: %s vs %s", local, onStick)
	}
	if r := s.Last(); r.Reason != "usb stick" || r.Written || len(r.Copies) != 1 || !r.Copies[0].Written {
		t.Fatalf("stick arrival: %+v", r)
	}
	// Asked again with nothing changed: nothing is written anywhere.
	if r := s.BackupNow("test"); r.Written || r.Copies[0].Written || r.Copies[0].Error != "" {
		t.Fatalf("unchanged: %+v", r)
	}

	// Changes reach the stick too, which keeps its newest two.
	labels := storage.NewTable[string](b.db, "wallet", "labels")
	for i := range 3 {
		mustPut(t, labels, "copied", fmt.Sprint(i))
		waitFor(t, fmt.Sprintf("change %d copied", i), func() bool {
			r := s.Last()
			return r.Reason == "change" && r.Written && len(r.Copies) == 1 && r.Copies[0].Written
		})
		time.Sleep(time.Millisecond) // distinct file names
	}
	if got := listBackups(t, stick); len(got) != 2 || !slices.Equal(got, listBackups(t, dir)) {
		t.Fatalf("stick %v, local %v", got, listBackups(t, dir))
	}

	// A stick whose directory is gone: the local backup is still written, the copy's error
	// is reported.
	setSticks(filepath.Join(stick, "missing"))
	mustPut(t, labels, "copied", "gone")
	if r := s.BackupNow("test"); !r.Written || len(r.Copies) != 1 || r.Copies[0].Error == "" {
		t.Fatalf("missing stick dir: %+v", r)
	}
	list, err := List(stick)
	if err != nil || len(list) != 2 || list[0].Fingerprint != "73c5da0a" || list[0].Problem != "" {
		t.Fatalf("List: %+v %v", list, err)
	}
}
