package supervisor

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anya-edge/anya/appliance/control"
)

// The services under test are this test binary in helper mode, so they are real processes.
func TestMain(m *testing.M) {
	switch os.Getenv("SUPERVISOR_HELPER") {
	case "":
		os.Exit(m.Run())
	case "panic":
		appendLine(os.Getenv("RUNLOG"), "start")
		panic("service bug")
	case "sleep":
		appendLine(os.Getenv("RUNLOG"), "start")
		time.Sleep(time.Hour)
	case "graceful":
		// Catch SIGTERM before saying "start": tests signal once they read the line.
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		appendLine(os.Getenv("RUNLOG"), "start")
		<-ch
		appendLine(os.Getenv("RUNLOG"), "term")
		os.Exit(0)
	case "stubborn":
		signal.Ignore(syscall.SIGTERM)
		appendLine(os.Getenv("RUNLOG"), "start")
		time.Sleep(time.Hour)
	}
}

func appendLine(path, s string) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	fmt.Fprintln(f, s)
	f.Close()
}

func lines(path string) []string {
	b, _ := os.ReadFile(path)
	return strings.Fields(string(b))
}

func service(mode, runlog string) Service {
	return Service{Name: mode, Command: func() *exec.Cmd {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "SUPERVISOR_HELPER="+mode, "RUNLOG="+runlog)
		return cmd
	}}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRestartsCrashingServiceWithBackoff(t *testing.T) {
	runlog := filepath.Join(t.TempDir(), "runs")
	s := &Supervisor{
		Starter: ExecStarter{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Backoff: Backoff{Min: 20 * time.Millisecond, Max: 80 * time.Millisecond, Reset: time.Hour},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	start := time.Now()
	go func() { s.Run(ctx, service("panic", runlog)); close(done) }()
	waitFor(t, "5 starts", func() bool { return len(lines(runlog)) >= 5 })
	elapsed := time.Since(start)
	// Read the state before stopping: the stop itself ends the fifth run with SIGTERM.
	waitFor(t, "4 restarts recorded", func() bool { st := s.Status(); return len(st) == 1 && st[0].Restarts >= 4 })
	st := s.Status()
	cancel()
	<-done
	// Delays 20+40+80+80 ms at least between the five starts.
	if elapsed < 220*time.Millisecond {
		t.Errorf("5 starts took %v: back-off not applied", elapsed)
	}
	if len(st) != 1 || st[0].Restarts < 4 || !strings.Contains(st[0].LastExit, "exit status 2") {
		t.Errorf("status after crashes: %+v", st)
	}
}

func TestStopGracefulAndStubborn(t *testing.T) {
	dir := t.TempDir()
	graceful, stubborn := filepath.Join(dir, "g"), filepath.Join(dir, "s")
	s := &Supervisor{Starter: ExecStarter{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), StopWait: 300 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx, service("graceful", graceful), service("stubborn", stubborn)); close(done) }()
	waitFor(t, "both running", func() bool {
		st := s.Status()
		return len(lines(graceful)) == 1 && len(lines(stubborn)) == 1 &&
			st[0].State == control.ServiceRunning && st[1].State == control.ServiceRunning
	})
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if got := lines(graceful); len(got) != 2 || got[1] != "term" {
		t.Errorf("graceful service did not see SIGTERM: %v", got)
	}
	st := s.Status()
	if st[0].State != control.ServiceStopped || !strings.Contains(st[0].LastExit, "exit status 0") {
		t.Errorf("graceful: %+v", st[0])
	}
	if st[1].State != control.ServiceStopped || !strings.Contains(st[1].LastExit, "signal 9") {
		t.Errorf("stubborn should have been killed: %+v", st[1])
	}
}

func TestRestart(t *testing.T) {
	runlog := filepath.Join(t.TempDir(), "runs")
	s := &Supervisor{Starter: ExecStarter{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Backoff: Backoff{Min: 10 * time.Millisecond, Max: 10 * time.Millisecond, Reset: time.Hour}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx, service("graceful", runlog)); close(done) }()
	defer func() { cancel(); <-done }()
	running := func() bool { st := s.Status(); return len(st) == 1 && st[0].State == control.ServiceRunning }
	waitFor(t, "first start", func() bool { return len(lines(runlog)) == 1 && running() })
	if err := s.Restart("graceful"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "second start", func() bool { return len(lines(runlog)) == 3 && running() })
	if got := lines(runlog); got[1] != "term" {
		t.Fatalf("runs: %v", got)
	}
	if err := s.Restart("nosuch"); err == nil {
		t.Fatal("restart of an unknown service succeeded")
	}
}
