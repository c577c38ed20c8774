package control

import (
	"context"
	"errors"
	"net"
	"os"
	"sort"
	"time"

	"golang.org/x/sys/unix"
)

// LogSource is where [Host] reads the recent log from (a logring.Ring).
type LogSource interface {
	Since(after uint64, max int) []LogEntry
}

// Host is the [System] of development mode: anyad runs as an ordinary process on a host,
// its data in a directory. Reboot restarts the services; PowerOff stops the process.
type Host struct {
	Version  string
	DataDir  string
	Logs     LogSource
	Started  time.Time
	Services func() []ServiceStatus // may be nil
	Restart  func()                 // called by Reboot; may be nil
	Stop     func()                 // called by PowerOff; may be nil
}

// Status implements [System].
func (h *Host) Status(ctx context.Context) (Status, error) {
	name, _ := os.Hostname()
	st := Status{
		Version:  h.Version,
		Mode:     "dev",
		Hostname: name,
		Uptime:   time.Since(h.Started),
		Data:     DataStatus{Path: h.DataDir, State: DataHost},
		Network:  Links(),
	}
	st.Data.TotalBytes, st.Data.FreeBytes, _ = DiskUsage(h.DataDir)
	st.Memory = ReadMemory(map[string]int{"anyad": os.Getpid()})
	if h.Services != nil {
		st.Services = h.Services()
	}
	return st, nil
}

// Log implements [System].
func (h *Host) Log(ctx context.Context, after uint64, max int) ([]LogEntry, error) {
	if h.Logs == nil {
		return nil, nil
	}
	return h.Logs.Since(after, max), nil
}

// Reboot implements [System].
func (h *Host) Reboot(ctx context.Context) error {
	if h.Restart == nil {
		return errors.New("reboot: not supported here")
	}
	time.AfterFunc(ShutdownGrace, h.Restart)
	return nil
}

// PowerOff implements [System].
func (h *Host) PowerOff(ctx context.Context) error {
	if h.Stop == nil {
		return errors.New("power off: not supported here")
	}
	time.AfterFunc(ShutdownGrace, h.Stop)
	return nil
}

// DiskUsage returns the size and free space of the filesystem holding path.
func DiskUsage(path string) (total, free uint64, err error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil {
		return 0, 0, err
	}
	return fs.Blocks * uint64(fs.Bsize), fs.Bavail * uint64(fs.Bsize), nil
}

// Links lists the network interfaces and their addresses, loopback last.
func Links() []LinkStatus {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []LinkStatus
	for _, ifc := range ifs {
		l := LinkStatus{Name: ifc.Name, Up: ifc.Flags&net.FlagUp != 0, Addrs: []string{}}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			l.Addrs = append(l.Addrs, a.String())
		}
		out = append(out, l)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name != "lo" && out[j].Name == "lo" })
	return out
}
