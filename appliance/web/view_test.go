package web

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/anya-edge/anya/appliance/control"
	"github.com/anya-edge/anya/storage"
)

func TestHumanBytes(t *testing.T) {
	tests := []struct {
		n    uint64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{1<<20 - 1, "1.0 MiB"},
		{19 << 20, "19.0 MiB"},
		{500107862016, "465.8 GiB"},
		{1 << 40, "1.0 TiB"},
		{1<<64 - 1, "16.0 EiB"},
	}
	for _, tt := range tests {
		if got := humanBytes(tt.n); got != tt.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0 seconds"},
		{0, "0 seconds"},
		{time.Second, "1 second"},
		{59 * time.Second, "59 seconds"},
		{time.Minute, "1 minute"},
		{61 * time.Minute, "1 hour 1 minute"},
		{3*time.Hour + 25*time.Minute + 10*time.Second, "3 hours 25 minutes"},
		{5 * time.Hour, "5 hours"},
		{24 * time.Hour, "1 day"},
		{50 * time.Hour, "2 days 2 hours"},
	}
	for _, tt := range tests {
		if got := humanDuration(tt.d); got != tt.want {
			t.Errorf("humanDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestValidBoxName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"living-room", true},
		{"box-2", true},
		{"0", true},
		{strings.Repeat("a", 63), true},
		{"", false},
		{strings.Repeat("a", 64), false},
		{"-box", false},
		{"box-", false},
		{"Box", false},
		{"my_box", false},
		{"my box", false},
		{"bøx", false},
		{"box.local", false},
	}
	for _, tt := range tests {
		if got := validBoxName(tt.name); got != tt.ok {
			t.Errorf("validBoxName(%q) = %v, want %v", tt.name, got, tt.ok)
		}
	}
}

// TestStatusView renders the status page for states a development host cannot produce,
// such as a damaged data partition on an appliance.
func TestStatusView(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	appliance := control.Status{
		Version: "v1.2.3", Mode: "appliance", Slot: "b", Hostname: "anya", Uptime: 50 * time.Hour,
		Data: control.DataStatus{Path: "/data", Device: "/dev/sda4", State: control.DataOK,
			TotalBytes: 100 << 30, FreeBytes: 75 << 30},
		Services: []control.ServiceStatus{
			{Name: "services", State: control.ServiceRunning, PID: 312, Restarts: 2, LastExit: "exit status 1", Since: now.Add(-90 * time.Minute)},
		},
		Network: []control.LinkStatus{{Name: "eth0", Up: true, Method: "dhcp", Addrs: []string{"192.168.1.20/24", "fe80::1/64"}}},
		Memory: control.MemoryStatus{TotalBytes: 4 << 30, AvailableBytes: 3 << 30, Processes: []control.ProcessMemory{
			{Name: "anyad (pid 1)", PID: 1, RSSBytes: 9 << 20},
			{Name: "anyad services", PID: 312, RSSBytes: 31 << 20},
		}},
	}
	backoff := appliance
	backoff.Services = []control.ServiceStatus{{Name: "services", State: control.ServiceBackoff, Restarts: 7, LastExit: "signal: killed"}}
	backoff.Memory = control.MemoryStatus{Processes: []control.ProcessMemory{{Name: "anyad (pid 1)", PID: 1}}}
	damaged := appliance
	damaged.Data = control.DataStatus{Path: "/data", Device: "/dev/sda4", State: control.DataDamaged,
		Detail: "ext4 superblock checksum mismatch"}
	missing := appliance
	missing.Data = control.DataStatus{State: control.DataMissing, Detail: "no partition labelled anya-data"}
	stats := storage.Stats{Path: "/data/anya.db", FileBytes: 96 << 10,
		Buckets: []storage.BucketStats{{Name: "web", Keys: 3}, {Name: "wallet", Keys: 40}}}
	log := []control.LogEntry{
		{Seq: 41, Time: now.Add(-time.Minute), Text: `level=WARN msg="refused cross-origin request" origin="http://x.example/<b>&"`},
		{Seq: 42, Time: now, Text: `level=INFO msg="logged in" client=192.168.1.7`},
	}

	tests := []struct {
		name     string
		st       control.Status
		stErr    error
		statsErr error
		want     []string
		absent   []string
	}{
		{"appliance", appliance, nil, nil,
			[]string{"v1.2.3", ">B<", "2 days 2 hours", "25.0 GiB</strong> used of 100.0 GiB", `value="0.25"`, "25%",
				"/dev/sda4", "96.0 KiB", "43 keys in 2 buckets", ">services<", "badge-ok", "for 1 hour 30 minutes",
				"exit status 1", "eth0", "192.168.1.20/24, fe80::1/64", "dhcp",
				">Memory<", "1.0 GiB</strong> used of 4.0 GiB", `value="0.25"`, `aria-label="Memory usage"`,
				"anyad (pid 1)", "pid 1<", "9.0 MiB", "anyad services", "pid 312<", "31.0 MiB",
				`data-last="42"`, "x.example/&lt;b&gt;&amp;", "12:00:00", "Reboot", "Power off"},
			[]string{"alert-danger", "<b>", "badge-warn"}},
		{"backoff", backoff, nil, nil,
			[]string{"badge-warn", ">backoff<", "signal: killed", ">Memory<", "anyad (pid 1)", "unknown"},
			[]string{">running<", "Memory usage", "used of 4.0 GiB"}},
		{"damaged", damaged, nil, nil,
			[]string{`class="alert alert-danger"`, "The data partition is damaged", "ext4 superblock checksum mismatch", "badge-bad"},
			[]string{"Data usage"}},
		{"missing", missing, nil, nil,
			[]string{`class="alert alert-danger"`, "The data partition is missing", "no partition labelled anya-data"},
			nil},
		{"status unavailable", control.Status{}, errors.New("control GET /status: connection refused"), errors.New("stats failed"),
			[]string{"status could not be read", "connection refused", "stats failed", "Reboot"},
			[]string{"alert-danger", ">Memory<"}},
	}
	h := newHarness(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newStatusView(now, tt.st, tt.stErr, stats, tt.statsErr, log, nil)
			rec := httptest.NewRecorder()
			r := httptest.NewRequest("GET", "/", nil)
			h.srv.render(rec, 200, "status", statusData{layoutData: h.srv.layout(r, "Status", false), statusView: v})
			body := rec.Body.String()
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(body, a) {
					t.Errorf("page contains %q", a)
				}
			}
			if t.Failed() {
				t.Log(body)
			}
		})
	}
}

func TestSlotLabel(t *testing.T) {
	tests := []struct {
		st   control.Status
		want string
	}{
		{control.Status{Mode: "appliance", Slot: "a"}, "A"},
		{control.Status{Mode: "appliance", Slot: "b"}, "B"},
		{control.Status{Mode: "dev"}, "dev"},
		{control.Status{Mode: "appliance"}, "unknown"},
	}
	for _, tt := range tests {
		if got := slotLabel(tt.st); got != tt.want {
			t.Errorf("slotLabel(%+v) = %q, want %q", tt.st, got, tt.want)
		}
	}
}
