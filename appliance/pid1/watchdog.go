package pid1

import (
	"context"
	"log/slog"
	"os"
	"time"
)

// watchdog feeds /dev/watchdog when the box has one. If PID 1 hangs, the hardware resets the
// box. On power-off the watchdog is disarmed with the magic close ('V'); on reboot it stays
// armed, so a shutdown that hangs still ends in a reset.
type watchdog struct {
	f *os.File
}

func openWatchdog(log *slog.Logger) *watchdog {
	f, err := os.OpenFile("/dev/watchdog", os.O_WRONLY, 0)
	if err != nil {
		if !os.IsNotExist(err) {
			log.Warn("open watchdog", "err", err)
		}
		return nil
	}
	log.Info("hardware watchdog armed")
	return &watchdog{f: f}
}

func (w *watchdog) run(ctx context.Context) {
	if w == nil {
		return
	}
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		w.f.Write([]byte{0})
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (w *watchdog) disarm() {
	if w == nil {
		return
	}
	w.f.Write([]byte("V"))
	w.f.Close()
}
