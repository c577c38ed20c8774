//go:build unix

package storage

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Environment of the helper process started by TestKillDurability.
const (
	envHelperDB    = "STORAGE_TEST_HELPER_DB"
	envHelperStart = "STORAGE_TEST_HELPER_START"
)

// crashRecord is the value the helper writes. Pad varies the size, and every
// 17th record is large enough to need overflow pages.
type crashRecord struct {
	N   int
	Pad string
}

func crashValue(n int) crashRecord {
	size := 50 + n%300
	if n%17 == 0 {
		size = 10_000
	}
	return crashRecord{N: n, Pad: strings.Repeat("p", size)}
}

func crashKey(n int) string { return fmt.Sprintf("k%09d", n) }

// TestHelperWriter is not a test: TestKillDurability runs the test binary
// with -test.run=^TestHelperWriter$ and the environment set, and this
// function then commits one key per transaction forever, printing each key
// only after Update has returned nil.
func TestHelperWriter(t *testing.T) {
	path := os.Getenv(envHelperDB)
	if path == "" {
		t.Skip("helper process for TestKillDurability")
	}
	start, err := strconv.Atoi(os.Getenv(envHelperStart))
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad start:", err)
		os.Exit(2)
	}
	db, err := Open(path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	tbl := NewTable[crashRecord](db, "crash", "acked")
	for n := start; ; n++ {
		if err := tbl.Put(crashKey(n), crashValue(n)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		// One write of a short line to a pipe is atomic.
		if _, err := fmt.Fprintf(os.Stdout, "ack %s\n", crashKey(n)); err != nil {
			os.Exit(4)
		}
	}
}

// TestKillDurability kills a writing process with SIGKILL at a random moment
// and checks that the database is consistent and holds every acknowledged
// key. SIGKILL leaves the page cache intact, so this tests bbolt's commit
// protocol against process death, not against power loss.
func TestKillDurability(t *testing.T) {
	rounds := 10
	if testing.Short() {
		rounds = 3
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	acked := map[int]bool{}
	inFlight := map[int]bool{} // keys each earlier round may have committed without an acknowledgement
	for round := range rounds {
		start := round * 1_000_000
		delay := time.Duration(50+rand.IntN(251)) * time.Millisecond
		got := runAndKill(t, path, start, delay)
		if len(got) < 3 {
			t.Fatalf("round %d: only %d keys acknowledged", round, len(got))
		}
		for _, n := range got {
			acked[n] = true
		}

		db, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		if err := db.Check(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		tbl := NewTable[crashRecord](db, "crash", "acked")
		for n := range acked {
			v, ok, err := tbl.Get(crashKey(n))
			if err != nil || !ok {
				t.Fatalf("round %d: acknowledged key %s lost (ok=%v, err=%v)", round, crashKey(n), ok, err)
			}
			if want := crashValue(n); v != want {
				t.Fatalf("round %d: key %s has a damaged value", round, crashKey(n))
			}
		}
		// The only key of a round that may exist without an acknowledgement is
		// the one committed just before the kill.
		last := got[len(got)-1]
		inFlight[last+1] = true
		err = tbl.ForEach(func(k string, v crashRecord) error {
			n := v.N
			if !acked[n] && !inFlight[n] {
				return fmt.Errorf("unexpected key %s (last acknowledged %s)", k, crashKey(last))
			}
			return nil
		})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: killed after %v with %d keys acknowledged", round, delay, len(got))
	}
}

// runAndKill starts the helper writer, lets it run until it has acknowledged
// at least three keys and delay has passed, kills it with SIGKILL and returns
// the acknowledged key numbers in order.
func runAndKill(t *testing.T, path string, start int, delay time.Duration) []int {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperWriter$", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), envHelperDB+"="+path, envHelperStart+"="+strconv.Itoa(start))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	keys := make(chan int)
	go func() {
		defer close(keys)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var n int
			if _, err := fmt.Sscanf(sc.Text(), "ack k%d", &n); err == nil {
				keys <- n
			}
		}
	}()

	var got []int
	minAcked := time.After(30 * time.Second)
	for len(got) < 3 {
		select {
		case n, ok := <-keys:
			if !ok {
				_ = cmd.Wait()
				t.Fatalf("helper exited early: %s", stderr.String())
			}
			got = append(got, n)
		case <-minAcked:
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("helper acknowledged only %d keys in 30s: %s", len(got), stderr.String())
		}
	}
	kill := time.After(delay)
	killed := false
	for keys != nil {
		select {
		case n, ok := <-keys:
			if !ok {
				keys = nil // the helper is gone and its output drained
				continue
			}
			got = append(got, n)
		case <-kill:
			kill = nil
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Errorf("kill helper: %v", err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("helper exited before it was killed: %v: %s", err, stderr.String())
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("helper did not die from SIGKILL: %v: %s", err, stderr.String())
	}
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("acknowledgements out of sequence: %d after %d", got[i], got[i-1])
		}
	}
	return got
}
