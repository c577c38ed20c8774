package control

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

type ringStub []LogEntry

func (r ringStub) Since(after uint64, max int) []LogEntry {
	var out []LogEntry
	for _, e := range r {
		if e.Seq > after {
			out = append(out, e)
		}
	}
	return out
}

// TestSocketRoundTrip serves a Host over a real unix socket and drives it with Client.
func TestSocketRoundTrip(t *testing.T) {
	dir := t.TempDir()
	rebooted := make(chan struct{}, 1)
	h := &Host{
		Version: "v-test", DataDir: dir, Started: time.Now(),
		Logs:    ringStub{{Seq: 1, Text: "one"}, {Seq: 2, Text: "two"}},
		Restart: func() { rebooted <- struct{}{} },
	}
	sock := filepath.Join(dir, "c.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: Handler(h)}
	go srv.Serve(ln)
	defer srv.Close()

	c := NewClient(sock)
	ctx := context.Background()
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != "v-test" || st.Mode != "dev" || st.Data.Path != dir || st.Data.TotalBytes == 0 ||
		st.Memory.TotalBytes == 0 || len(st.Memory.Processes) != 1 || st.Memory.Processes[0].RSSBytes == 0 {
		t.Fatalf("status: %+v", st)
	}
	log, err := c.Log(ctx, 1, 10)
	if err != nil || len(log) != 1 || log[0].Text != "two" {
		t.Fatalf("log: %v %+v", err, log)
	}
	if err := c.Reboot(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rebooted:
	case <-time.After(5 * time.Second):
		t.Fatal("reboot not delivered")
	}
	if err := c.PowerOff(ctx); err == nil {
		t.Fatal("power off without Stop should fail")
	}
}
