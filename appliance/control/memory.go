package control

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// ReadMemory returns the box's memory and the resident size of the named processes
// (name -> pid), from /proc.
func ReadMemory(procs map[string]int) MemoryStatus {
	var m MemoryStatus
	meminfo := readKB("/proc/meminfo", "MemTotal:", "MemAvailable:")
	m.TotalBytes, m.AvailableBytes = meminfo[0], meminfo[1]
	for name, pid := range procs {
		if pid <= 0 {
			continue
		}
		rss := readKB(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:")[0]
		m.Processes = append(m.Processes, ProcessMemory{Name: name, PID: pid, RSSBytes: rss})
	}
	sort.Slice(m.Processes, func(i, j int) bool { return m.Processes[i].PID < m.Processes[j].PID })
	return m
}

// readKB reads "Key: N kB" lines from a /proc file and returns the values in bytes, in the
// order of keys (0 for a key that is missing).
func readKB(path string, keys ...string) []uint64 {
	out := make([]uint64, len(keys))
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 2 {
			continue
		}
		for i, k := range keys {
			if fields[0] == k {
				n, _ := strconv.ParseUint(fields[1], 10, 64)
				out[i] = n * 1024
			}
		}
	}
	return out
}
