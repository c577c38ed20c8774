package logring

import (
	"bytes"
	"sync"
	"time"

	"github.com/anya-edge/anya/appliance/control"
)

// maxLine bounds one entry; longer lines are cut and marked.
const maxLine = 4096

// Ring holds the last entries written to it. It is safe for concurrent use.
type Ring struct {
	mu      sync.Mutex
	entries []control.LogEntry // circular, len == capacity once full
	start   int                // index of the oldest entry once full
	seq     uint64             // sequence number of the newest entry
	partial []byte             // bytes of an unfinished line
	now     func() time.Time
}

// New returns a ring that keeps the last capacity lines.
func New(capacity int) *Ring {
	if capacity < 1 {
		capacity = 1
	}
	return &Ring{entries: make([]control.LogEntry, 0, capacity), now: time.Now}
}

// Write adds the complete lines in p; a trailing partial line waits for its newline.
func (r *Ring) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			r.partial = append(r.partial, p...)
			if len(r.partial) > maxLine {
				r.add(r.partial)
				r.partial = r.partial[:0]
			}
			break
		}
		line := p[:i]
		if len(r.partial) > 0 {
			line = append(r.partial, line...)
			r.partial = r.partial[:0]
		}
		r.add(line)
		p = p[i+1:]
	}
	return n, nil
}

func (r *Ring) add(line []byte) {
	line = bytes.TrimRight(line, "\r")
	text := string(line)
	if len(text) > maxLine {
		text = text[:maxLine] + " …(cut)"
	}
	r.seq++
	e := control.LogEntry{Seq: r.seq, Time: r.now(), Text: text}
	if len(r.entries) < cap(r.entries) {
		r.entries = append(r.entries, e)
		return
	}
	r.entries[r.start] = e
	r.start = (r.start + 1) % len(r.entries)
}

// Since returns up to max entries newer than after, oldest first. If more than max are newer,
// it returns the newest max of them.
func (r *Ring) Since(after uint64, max int) []control.LogEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]control.LogEntry, 0, min(max, len(r.entries)))
	n := len(r.entries)
	for i := 0; i < n; i++ {
		e := r.entries[(r.start+i)%n]
		if e.Seq > after {
			out = append(out, e)
		}
	}
	if max > 0 && len(out) > max {
		out = out[len(out)-max:]
	}
	return out
}

// Last returns the sequence number of the newest entry.
func (r *Ring) Last() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seq
}
