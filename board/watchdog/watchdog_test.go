package watchdog

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The device file is the lowest boundary: a regular file records what the driver would see.
func TestPingRunDisarm(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "watchdog")
	os.WriteFile(dev, nil, 0o600)
	w, err := Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Millisecond)
	defer cancel()
	w.Run(ctx, 10*time.Millisecond)
	if err := w.Disarm(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(dev)
	s := string(b)
	if !strings.HasSuffix(s, "V") || strings.Count(s, "\x00") < 3 {
		t.Fatalf("device saw %q: want several pings then the magic close", s)
	}
}

func TestMissingDevice(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "none")); !errors.Is(err, ErrNone) {
		t.Fatalf("got %v, want ErrNone", err)
	}
}
