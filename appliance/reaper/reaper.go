package reaper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Exit is how a child ended.
type Exit struct {
	PID    int
	Status unix.WaitStatus
}

// String describes the exit the way a person reads it: "exit status 2", "killed by signal 9".
func (e Exit) String() string {
	switch {
	case e.Status.Exited():
		return fmt.Sprintf("exit status %d", e.Status.ExitStatus())
	case e.Status.Signaled():
		return fmt.Sprintf("killed by signal %d (%s)", int(e.Status.Signal()), e.Status.Signal())
	default:
		return fmt.Sprintf("wait status %#x", uint32(e.Status))
	}
}

// Success reports whether the child exited with status 0.
func (e Exit) Success() bool { return e.Status.Exited() && e.Status.ExitStatus() == 0 }

// Reaper reaps every child of the process. Create it with [New] and run [Reaper.Run].
type Reaper struct {
	log     *slog.Logger
	mu      sync.Mutex
	waiters map[int]chan Exit
	cmds    map[int]*exec.Cmd
	orphans int
}

// New returns a reaper that logs reaped orphans to log.
func New(log *slog.Logger) *Reaper {
	return &Reaper{log: log, waiters: map[int]chan Exit{}, cmds: map[int]*exec.Cmd{}}
}

// Start starts cmd and returns a channel that receives its exit exactly once. The caller must
// not call cmd.Wait.
func (r *Reaper) Start(cmd *exec.Cmd) (<-chan Exit, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ch := make(chan Exit, 1)
	r.waiters[cmd.Process.Pid] = ch
	r.cmds[cmd.Process.Pid] = cmd
	return ch, nil
}

// Orphans returns how many processes nobody started through Start have been reaped.
func (r *Reaper) Orphans() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.orphans
}

// Run reaps children until ctx is done.
func (r *Reaper) Run(ctx context.Context) {
	sig := make(chan os.Signal, 16)
	signal.Notify(sig, syscall.SIGCHLD)
	defer signal.Stop(sig)
	for {
		r.ReapAll()
		select {
		case <-ctx.Done():
			return
		case <-sig:
		}
	}
}

// ReapAll reaps every child that has exited, without blocking.
func (r *Reaper) ReapAll() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return // ECHILD: no children; 0: none exited yet
		}
		r.deliver(Exit{PID: pid, Status: ws})
	}
}

func (r *Reaper) deliver(e Exit) {
	r.mu.Lock()
	ch, ok := r.waiters[e.PID]
	cmd := r.cmds[e.PID]
	delete(r.waiters, e.PID)
	delete(r.cmds, e.PID)
	if !ok {
		r.orphans++
	}
	r.mu.Unlock()
	if !ok {
		r.log.Debug("reaped orphan", "pid", e.PID, "exit", e.String())
		return
	}
	// The process is gone; release the pidfd os/exec may hold for it.
	cmd.Process.Release()
	ch <- e
}
