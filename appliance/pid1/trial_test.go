package pid1

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/anya-edge/anya/appliance/update/agent"
	"github.com/anya-edge/anya/appliance/update/slot"
)

// espWith makes a directory ESP holding the named boot entries.
func espWith(t *testing.T, entries ...string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, slot.EntriesDir), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.WriteFile(filepath.Join(dir, slot.EntriesDir, e), []byte("title Anya\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func entriesIn(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(filepath.Join(dir, slot.EntriesDir))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range des {
		out = append(out, d.Name())
	}
	slices.Sort(out)
	return out
}

// TestMarkEntryBad: PID 1's fallback when the agent cannot mark an expired trial bad renames
// the running slot's counting entry to its bad name, and only when the other slot can boot.
func TestMarkEntryBad(t *testing.T) {
	for _, tt := range []struct {
		name    string
		entries []string
		running string // the slot booted
		loader  string
		want    []string
		err     error
	}{
		{"trial", []string{"anya-a.conf", "anya-b+2-1.conf"}, "b", "anya-b+2-1.conf", []string{"anya-a.conf", "anya-b+0-1.conf"}, nil},
		{"trial, entry unknown", []string{"anya-a.conf", "anya-b+1-2.conf"}, "b", "", []string{"anya-a.conf", "anya-b+0-2.conf"}, nil},
		{"committed", []string{"anya-a.conf", "anya-b.conf"}, "b", "anya-b.conf", []string{"anya-a.conf", "anya-b.conf"}, nil},
		{"no fallback", []string{"anya-a+0-3.conf", "anya-b+2-1.conf"}, "b", "", []string{"anya-a+0-3.conf", "anya-b+2-1.conf"}, agent.ErrNoFallback},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := espWith(t, tt.entries...)
			esp, err := slot.OpenDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			cur, other, err := slotEntries(esp, tt.running, tt.loader)
			esp.Close()
			if err != nil || cur == nil || other == nil {
				t.Fatalf("slotEntries: %v %v %v", cur, other, err)
			}
			err = markEntryBad(agent.Config{Slot: tt.running, LoaderEntry: tt.loader, OpenESP: slot.DirOpener(dir)})
			if !errors.Is(err, tt.err) {
				t.Fatalf("markEntryBad: %v, want %v", err, tt.err)
			}
			if got := entriesIn(t, dir); !slices.Equal(got, tt.want) {
				t.Fatalf("entries %v, want %v", got, tt.want)
			}
		})
	}
}
