// Package watchdog feeds a Linux hardware watchdog (/dev/watchdog).
//
// Once the device is opened the hardware resets the box unless it is written to within its
// timeout, so a hung init ends in a reboot instead of a dead box. Closing it after writing the
// magic character 'V' disarms it (drivers with "nowayout" ignore that, which is fine).
package watchdog

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// DefaultPath is the first watchdog device.
const DefaultPath = "/dev/watchdog"

// Watchdog is an armed watchdog device.
type Watchdog struct {
	f *os.File
}

// ErrNone means the box has no watchdog device.
var ErrNone = errors.New("no watchdog device")

// Open arms the watchdog at path.
func Open(path string) (*Watchdog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open watchdog %s: %w", path, ErrNone)
	}
	if err != nil {
		return nil, fmt.Errorf("open watchdog %s: %w", path, err)
	}
	return &Watchdog{f: f}, nil
}

// Ping restarts the watchdog's countdown.
func (w *Watchdog) Ping() error {
	if _, err := w.f.Write([]byte{0}); err != nil {
		return fmt.Errorf("ping watchdog: %w", err)
	}
	return nil
}

// Run pings every interval until ctx is done. It leaves the watchdog armed: if what follows
// (a reboot) hangs, the hardware still resets the box.
func (w *Watchdog) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		w.Ping()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Disarm stops the watchdog with the magic close, for a deliberate power-off.
func (w *Watchdog) Disarm() error {
	if _, err := w.f.Write([]byte("V")); err != nil {
		w.f.Close()
		return fmt.Errorf("disarm watchdog: %w", err)
	}
	return w.f.Close()
}
