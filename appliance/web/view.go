package web

import (
	"fmt"
	"strings"
	"time"

	"github.com/anya-edge/anya/appliance/control"
	"github.com/anya-edge/anya/storage"
)

// statusLogLines is how many log lines the status page shows.
const statusLogLines = 200

// statusView is what the status page shows, formatted for people.
type statusView struct {
	StatusErr string // why the box's status could not be read; the rest is then empty
	Version   string
	Mode      string
	Slot      string
	Uptime    string
	Hostname  string
	Data      dataView
	Memory    memoryView
	DB        dbView
	Services  []serviceView
	Links     []linkView
	Log       []logLine
	LogErr    string
	LastSeq   uint64
}

type dataView struct {
	Path, Device string
	State        string // label of the state
	StateClass   string // ok, warn or bad
	Detail       string
	Alert        string // title of the red warning; "" when there is none
	usageView
}

// usageView is a used/total pair shown as text and a bar.
type usageView struct {
	HasSize     bool // false when the total is unknown
	Used, Total string
	Fraction    float64 // used / total
	Percent     int
}

func newUsageView(used, total uint64) usageView {
	if total == 0 {
		return usageView{}
	}
	used = min(used, total)
	f := float64(used) / float64(total)
	return usageView{HasSize: true, Used: humanBytes(used), Total: humanBytes(total), Fraction: f, Percent: int(f*100 + 0.5)}
}

// memoryView is the memory of the box and the resident size of anyad's processes.
type memoryView struct {
	usageView
	Processes []processView
}

type processView struct {
	Name string
	PID  int
	RSS  string // "unknown" when it could not be read
}

type dbView struct {
	Err     string
	Size    string
	Path    string
	Content string // "43 keys in 2 buckets"
}

type serviceView struct {
	Name       string
	State      string
	StateClass string
	Since      string
	Restarts   int
	LastExit   string
}

type linkView struct {
	Name   string
	Up     bool
	Method string
	Addrs  string
}

type logLine struct {
	Time     string // HH:MM:SS in UTC
	DateTime string // RFC 3339
	Text     string
}

// newStatusView formats what the status page shows. Each part may have failed on its own.
func newStatusView(now time.Time, st control.Status, stErr error, stats storage.Stats, statsErr error,
	entries []control.LogEntry, logErr error) statusView {
	v := statusView{}
	if stErr != nil {
		v.StatusErr = stErr.Error()
	} else {
		v.Version = st.Version
		v.Mode = st.Mode
		v.Slot = slotLabel(st)
		v.Uptime = humanDuration(st.Uptime)
		v.Hostname = st.Hostname
		v.Data = newDataView(st.Data)
		v.Memory = newMemoryView(st.Memory)
		for _, svc := range st.Services {
			sv := serviceView{Name: svc.Name, State: svc.State, StateClass: serviceClass(svc.State),
				Restarts: svc.Restarts, LastExit: svc.LastExit}
			if !svc.Since.IsZero() {
				sv.Since = "for " + humanDuration(now.Sub(svc.Since))
			}
			v.Services = append(v.Services, sv)
		}
		for _, l := range st.Network {
			v.Links = append(v.Links, linkView{Name: l.Name, Up: l.Up, Method: l.Method,
				Addrs: strings.Join(l.Addrs, ", ")})
		}
	}
	if statsErr != nil {
		v.DB.Err = statsErr.Error()
	} else {
		v.DB.Size = humanBytes(uint64(max(stats.FileBytes, 0)))
		v.DB.Path = stats.Path
		keys := 0
		for _, b := range stats.Buckets {
			keys += b.Keys
		}
		v.DB.Content = plural(int64(keys), "key") + " in " + plural(int64(len(stats.Buckets)), "bucket")
	}
	if logErr != nil {
		v.LogErr = logErr.Error()
	}
	for _, e := range entries {
		v.Log = append(v.Log, logLine{
			Time:     e.Time.UTC().Format(time.TimeOnly),
			DateTime: e.Time.UTC().Format(time.RFC3339),
			Text:     e.Text,
		})
		v.LastSeq = e.Seq
	}
	return v
}

func slotLabel(st control.Status) string {
	switch {
	case st.Slot != "":
		return strings.ToUpper(st.Slot)
	case st.Mode == "dev":
		return "dev"
	}
	return "unknown"
}

func newDataView(d control.DataStatus) dataView {
	v := dataView{Path: d.Path, Device: d.Device, Detail: d.Detail}
	switch d.State {
	case control.DataOK:
		v.State, v.StateClass = "OK", "ok"
	case control.DataFormatted:
		v.State, v.StateClass = "Formatted on this boot", "ok"
	case control.DataHost:
		v.State, v.StateClass = "Host directory", "ok"
	case control.DataDamaged:
		v.State, v.StateClass = "Damaged", "bad"
		v.Alert = "The data partition is damaged"
	case control.DataMissing:
		v.State, v.StateClass = "Missing", "bad"
		v.Alert = "The data partition is missing"
	default:
		v.State, v.StateClass = d.State, "warn"
	}
	v.usageView = newUsageView(d.TotalBytes-min(d.FreeBytes, d.TotalBytes), d.TotalBytes)
	return v
}

func newMemoryView(m control.MemoryStatus) memoryView {
	v := memoryView{usageView: newUsageView(m.TotalBytes-min(m.AvailableBytes, m.TotalBytes), m.TotalBytes)}
	for _, p := range m.Processes {
		pv := processView{Name: p.Name, PID: p.PID, RSS: "unknown"}
		if p.RSSBytes > 0 {
			pv.RSS = humanBytes(p.RSSBytes)
		}
		v.Processes = append(v.Processes, pv)
	}
	return v
}

func serviceClass(state string) string {
	switch state {
	case control.ServiceRunning:
		return "ok"
	case control.ServiceStarting:
		return "info"
	case control.ServiceBackoff:
		return "warn"
	}
	return "muted"
}

// humanBytes formats n in binary units: "0 B", "512 B", "1.5 KiB", "19.2 GiB".
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	if v >= 1023.95 && exp < 5 { // would print as "1024.0"
		v /= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTPE"[exp])
}

// humanDuration formats d with its two largest units: "45 seconds", "12 minutes",
// "3 hours 5 minutes", "2 days 4 hours".
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	secs := int64(d / time.Second)
	days, hours, mins := secs/86400, secs/3600%24, secs/60%60
	switch {
	case days > 0:
		return joinUnits(days, "day", hours, "hour")
	case hours > 0:
		return joinUnits(hours, "hour", mins, "minute")
	case mins > 0:
		return plural(mins, "minute")
	}
	return plural(secs, "second")
}

func joinUnits(a int64, aUnit string, b int64, bUnit string) string {
	if b == 0 {
		return plural(a, aUnit)
	}
	return plural(a, aUnit) + " " + plural(b, bUnit)
}

func plural(n int64, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
