package control

import (
	"context"
	"time"
)

// Data partition states reported in [DataStatus.State].
const (
	DataOK        = "ok"        // mounted read-write
	DataFormatted = "formatted" // was blank, formatted on this boot, mounted
	DataDamaged   = "damaged"   // present but unusable; left untouched, see Detail
	DataMissing   = "missing"   // no partition with the expected label
	DataHost      = "host"      // development mode: a directory on the host
)

// Service states reported in [ServiceStatus.State].
const (
	ServiceStarting = "starting"
	ServiceRunning  = "running"
	ServiceBackoff  = "backoff" // exited, waiting before the next start
	ServiceStopped  = "stopped"
)

// Status is what PID 1 knows about the box.
type Status struct {
	Version  string          `json:"version"`
	Mode     string          `json:"mode"` // "appliance" when anyad is PID 1, "dev" otherwise
	Slot     string          `json:"slot"` // booted system slot, "a" or "b"; empty in dev mode
	Hostname string          `json:"hostname"`
	Uptime   time.Duration   `json:"uptime_ns"` // since kernel boot (CLOCK_BOOTTIME), or process start in dev mode
	Data     DataStatus      `json:"data"`
	Services []ServiceStatus `json:"services"`
	Network  []LinkStatus    `json:"network"`
	Memory   MemoryStatus    `json:"memory"`
}

// MemoryStatus is the memory of the box and of anyad's processes.
type MemoryStatus struct {
	TotalBytes     uint64          `json:"total_bytes"`
	AvailableBytes uint64          `json:"available_bytes"`
	Processes      []ProcessMemory `json:"processes"`
}

// ProcessMemory is the resident memory of one process.
type ProcessMemory struct {
	Name     string `json:"name"`
	PID      int    `json:"pid"`
	RSSBytes uint64 `json:"rss_bytes"`
}

// DataStatus describes the data partition (or directory) holding the box's state.
type DataStatus struct {
	Path       string `json:"path"`
	Device     string `json:"device,omitempty"`
	State      string `json:"state"`
	Detail     string `json:"detail,omitempty"`
	TotalBytes uint64 `json:"total_bytes"`
	FreeBytes  uint64 `json:"free_bytes"`
}

// ServiceStatus is the supervisor's view of one service.
type ServiceStatus struct {
	Name     string    `json:"name"`
	State    string    `json:"state"`
	PID      int       `json:"pid,omitempty"`
	Restarts int       `json:"restarts"`
	LastExit string    `json:"last_exit,omitempty"`
	Since    time.Time `json:"since"`
}

// LinkStatus describes one network interface.
type LinkStatus struct {
	Name   string   `json:"name"`
	Up     bool     `json:"up"`
	Method string   `json:"method,omitempty"` // "dhcp", "static" or "" (not configured)
	Addrs  []string `json:"addrs"`
}

// LogEntry is one line of the box's log, numbered in order of arrival.
type LogEntry struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Text string    `json:"text"`
}

// ShutdownGrace is how long Reboot and PowerOff wait before acting, so the page that confirms
// the request (and its stylesheet and script) still reaches the browser.
const ShutdownGrace = time.Second

// System is what the services may ask of PID 1.
type System interface {
	Status(ctx context.Context) (Status, error)
	// Log returns up to max entries with a sequence number greater than after, oldest first.
	Log(ctx context.Context, after uint64, max int) ([]LogEntry, error)
	// Reboot and PowerOff start an orderly shutdown ShutdownGrace from now and return at once.
	Reboot(ctx context.Context) error
	PowerOff(ctx context.Context) error
}
