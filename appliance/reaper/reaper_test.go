package reaper

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The reaper calls wait4(-1), which would steal the exit statuses of anything else the test
// binary runs, so each scenario runs in a child process of its own that makes itself a child
// subreaper (orphans are re-parented to it, as they are to PID 1).
func TestMain(m *testing.M) {
	if mode := os.Getenv("REAPER_HELPER"); mode != "" {
		os.Exit(helper(mode))
	}
	os.Exit(m.Run())
}

func runHelper(t *testing.T, mode string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "REAPER_HELPER="+mode)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper %s: %v\n%s", mode, err, out)
	}
	return string(out)
}

func helper(mode string) int {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Println("prctl:", err)
		return 1
	}
	r := New(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	switch mode {
	case "statuses":
		// Many children exiting at once, each with its own status; some exit before Start
		// returns. Every owner must get exactly its own status.
		type res struct {
			want int
			ch   <-chan Exit
		}
		var all []res
		for i := 0; i < 50; i++ {
			ch, err := r.Start(exec.Command("/bin/sh", "-c", "exit "+strconv.Itoa(i%7)))
			if err != nil {
				fmt.Println("start:", err)
				return 1
			}
			all = append(all, res{i % 7, ch})
		}
		for _, x := range all {
			select {
			case e := <-x.ch:
				if !e.Status.Exited() || e.Status.ExitStatus() != x.want {
					fmt.Printf("pid %d: got %s want exit %d\n", e.PID, e, x.want)
					return 1
				}
			case <-time.After(10 * time.Second):
				fmt.Println("timeout waiting for a child")
				return 1
			}
		}
		fmt.Println("OK statuses")
	case "orphans":
		// A shell starts 5 background sleepers and exits at once: they are re-parented to us.
		ch, err := r.Start(exec.Command("/bin/sh", "-c", "for i in 1 2 3 4 5; do sleep 0.2 & done; echo $$"))
		if err != nil {
			fmt.Println("start:", err)
			return 1
		}
		<-ch
		deadline := time.Now().Add(10 * time.Second)
		for r.Orphans() < 5 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if zombies := countZombies(); r.Orphans() < 5 || zombies > 0 {
			fmt.Printf("orphans reaped %d, zombies left %d\n", r.Orphans(), zombies)
			return 1
		}
		fmt.Println("OK orphans")
	case "signal":
		cmd := exec.Command("/bin/sleep", "30")
		ch, err := r.Start(cmd)
		if err != nil {
			fmt.Println("start:", err)
			return 1
		}
		// The pid from the Cmd: /proc/self/task/<pid>/children lists only the children
		// forked by the main thread, and Go may fork from any thread.
		unix.Kill(cmd.Process.Pid, unix.SIGKILL)
		e := <-ch
		if !e.Status.Signaled() || e.Status.Signal() != unix.SIGKILL || !strings.Contains(e.String(), "signal 9") {
			fmt.Println("got", e)
			return 1
		}
		fmt.Println("OK signal")
	}
	return 0
}

func children() []int {
	var out []int
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", os.Getpid(), os.Getpid()))
	for _, f := range strings.Fields(string(b)) {
		n, _ := strconv.Atoi(f)
		out = append(out, n)
	}
	return out
}

// countZombies counts our children in state Z.
func countZombies() int {
	n := 0
	for _, pid := range children() {
		f, err := os.Open(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := bufio.NewScanner(f)
		if s.Scan() {
			line := s.Text()
			if i := strings.LastIndexByte(line, ')'); i > 0 && strings.HasPrefix(line[i+1:], " Z") {
				n++
			}
		}
		f.Close()
	}
	return n
}

func TestReaper(t *testing.T) {
	for _, mode := range []string{"statuses", "orphans", "signal"} {
		t.Run(mode, func(t *testing.T) {
			if out := runHelper(t, mode); !strings.Contains(out, "OK "+mode) {
				t.Fatalf("helper output:\n%s", out)
			}
		})
	}
}
