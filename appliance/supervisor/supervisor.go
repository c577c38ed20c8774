package supervisor

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/anya-edge/anya/appliance/control"
	"github.com/anya-edge/anya/appliance/reaper"
	"golang.org/x/sys/unix"
)

// Starter starts a process and reports its exit once.
type Starter interface {
	Start(cmd *exec.Cmd) (<-chan reaper.Exit, error)
}

// ExecStarter starts processes with os/exec and waits for them itself. Use it where no
// reaper runs (development mode, tests).
type ExecStarter struct{}

// Start implements [Starter].
func (ExecStarter) Start(cmd *exec.Cmd) (<-chan reaper.Exit, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ch := make(chan reaper.Exit, 1)
	go func() {
		cmd.Wait()
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		ch <- reaper.Exit{PID: cmd.Process.Pid, Status: unix.WaitStatus(ws)}
	}()
	return ch, nil
}

// Service is one supervised process.
type Service struct {
	Name string
	// Command returns a fresh command for each start.
	Command func() *exec.Cmd
}

// Backoff bounds the delay between restarts.
type Backoff struct {
	Min, Max time.Duration
	Reset    time.Duration // a run at least this long resets the delay to Min
}

// DefaultBackoff is used when Supervisor.Backoff is zero.
var DefaultBackoff = Backoff{Min: 500 * time.Millisecond, Max: 30 * time.Second, Reset: time.Minute}

// Supervisor runs services. Set the fields, then call Run.
type Supervisor struct {
	Starter  Starter
	Log      *slog.Logger
	Backoff  Backoff
	StopWait time.Duration // how long services get between SIGTERM and SIGKILL; default 10s

	mu     sync.Mutex
	states map[string]*control.ServiceStatus
	order  []string
}

// Status returns the state of every service, in the order they were given to Run.
func (s *Supervisor) Status() []control.ServiceStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]control.ServiceStatus, 0, len(s.order))
	for _, n := range s.order {
		out = append(out, *s.states[n])
	}
	return out
}

func (s *Supervisor) set(name string, f func(st *control.ServiceStatus)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s.states[name])
}

// Restart stops a running service with SIGTERM; the supervisor starts it again after its
// back-off (for example pcscd, to see a smart-card reader plugged in after it started).
func (s *Supervisor) Restart(name string) error {
	s.mu.Lock()
	st, ok := s.states[name]
	pid := 0
	if ok {
		pid = st.PID
	}
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("restart %s: no such service", name)
	}
	if pid == 0 {
		return nil // not running: it will be started anyway
	}
	s.Log.Info("restarting service", "service", name, "pid", pid)
	return syscall.Kill(pid, syscall.SIGTERM)
}

// Run starts the services and keeps them running until ctx is done; then it stops them all
// and returns when every one has exited.
func (s *Supervisor) Run(ctx context.Context, services ...Service) {
	if s.Backoff == (Backoff{}) {
		s.Backoff = DefaultBackoff
	}
	if s.StopWait == 0 {
		s.StopWait = 10 * time.Second
	}
	s.mu.Lock()
	s.states = map[string]*control.ServiceStatus{}
	s.order = nil
	for _, svc := range services {
		s.states[svc.Name] = &control.ServiceStatus{Name: svc.Name, State: control.ServiceStarting, Since: time.Now()}
		s.order = append(s.order, svc.Name)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, svc := range services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.keep(ctx, svc)
		}()
	}
	wg.Wait()
}

// keep runs one service until ctx is done.
func (s *Supervisor) keep(ctx context.Context, svc Service) {
	delay := s.Backoff.Min
	for {
		cmd := svc.Command()
		started := time.Now()
		exit, err := s.Starter.Start(cmd)
		if err != nil {
			s.Log.Error("start service", "service", svc.Name, "err", err)
			s.set(svc.Name, func(st *control.ServiceStatus) {
				st.State, st.PID, st.LastExit, st.Since = control.ServiceBackoff, 0, "start failed: "+err.Error(), time.Now()
			})
		} else {
			pid := cmd.Process.Pid
			s.Log.Info("service started", "service", svc.Name, "pid", pid)
			s.set(svc.Name, func(st *control.ServiceStatus) {
				st.State, st.PID, st.Since = control.ServiceRunning, pid, started
			})
			var e reaper.Exit
			select {
			case e = <-exit:
			case <-ctx.Done():
				e = s.stop(svc.Name, pid, exit)
				s.set(svc.Name, func(st *control.ServiceStatus) {
					st.State, st.PID, st.LastExit, st.Since = control.ServiceStopped, 0, e.String(), time.Now()
				})
				return
			}
			s.Log.Warn("service exited", "service", svc.Name, "pid", pid, "exit", e.String(), "ran", time.Since(started).Round(time.Millisecond))
			if time.Since(started) >= s.Backoff.Reset {
				delay = s.Backoff.Min
			}
			s.set(svc.Name, func(st *control.ServiceStatus) {
				st.State, st.PID, st.LastExit, st.Since = control.ServiceBackoff, 0, e.String(), time.Now()
			})
		}
		select {
		case <-ctx.Done():
			s.set(svc.Name, func(st *control.ServiceStatus) { st.State = control.ServiceStopped })
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, s.Backoff.Max)
		s.set(svc.Name, func(st *control.ServiceStatus) { st.Restarts++ })
	}
}

// stop sends SIGTERM, waits StopWait, then SIGKILL.
func (s *Supervisor) stop(name string, pid int, exit <-chan reaper.Exit) reaper.Exit {
	s.Log.Info("stopping service", "service", name, "pid", pid)
	syscall.Kill(pid, syscall.SIGTERM)
	select {
	case e := <-exit:
		return e
	case <-time.After(s.StopWait):
	}
	s.Log.Warn("service did not stop in time, killing it", "service", name, "pid", pid, "waited", s.StopWait)
	syscall.Kill(pid, syscall.SIGKILL)
	return <-exit
}
