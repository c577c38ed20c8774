package rescue

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/anya-edge/anya/appliance/datapart"
	"github.com/anya-edge/anya/storage"
	"go.etcd.io/bbolt"
)

// DataReport is what a check of the data partition found. It is read-only: nothing is
// repaired without the owner choosing a repair.
type DataReport struct {
	Device    string `json:"device"`
	Content   string `json:"content"` // blank, ext4, unknown
	Mounted   bool   `json:"mounted"`
	DBPath    string `json:"db_path,omitempty"`
	DBSize    int64  `json:"db_size,omitempty"`
	DBOpens   bool   `json:"db_opens"`
	DBProblem string `json:"db_problem,omitempty"` // why it does not open, or what Check found
	// Subsystems are the database's top-level buckets with their schema versions.
	Subsystems map[string]int `json:"subsystems,omitempty"`
	Files      int            `json:"files"`
	Took       time.Duration  `json:"took"`
	// Advice says what the owner can do.
	Advice string `json:"advice"`
}

// OK reports whether nothing is wrong.
func (r DataReport) OK() bool { return r.DBProblem == "" && r.Content != "unknown" }

// CheckData checks the data partition read-only: what datapart.Probe says about the device,
// and, when the filesystem is mounted at dataDir (read-only), whether the database opens and
// passes bbolt's consistency check (every page reachable once, free list, key order) and
// which subsystems it holds. There is no e2fsck in the image: the ext4 structure itself is
// judged only by the kernel's mount (which replays the journal). check checks the database
// (CheckDB when nil; ProcessChecker on the box).
func CheckData(dev, dataDir string, check func(dbPath string) DBResult) DataReport {
	start := time.Now()
	r := DataReport{Device: dev, Subsystems: map[string]int{}}
	defer func() { r.Took = time.Since(start) }()
	if dev != "" {
		c, err := datapart.Probe(dev)
		r.Content = c.String()
		if err != nil {
			r.DBProblem = err.Error()
			r.Advice = "The data partition cannot be read: the disk may be failing. Restore a backup onto a new disk."
			return r
		}
		if c == datapart.Blank {
			r.Advice = "The data partition is blank: the box formats it at its next start. Restore a backup to bring the wallet's data back."
			return r
		}
	}
	if dataDir == "" {
		r.Advice = "The data partition could not be mounted: reinstall without keeping the data, or restore a backup after erasing it."
		return r
	}
	r.Mounted = true
	filepath.WalkDir(dataDir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			r.Files++
		}
		return nil
	})
	r.DBPath = filepath.Join(dataDir, "anya.db")
	fi, err := os.Stat(r.DBPath)
	if errors.Is(err, fs.ErrNotExist) {
		r.DBPath = ""
		r.Advice = "There is no database yet: the box was never set up. Restore a backup, or start the box and set it up."
		return r
	}
	if err != nil {
		r.DBProblem = err.Error()
		return r
	}
	r.DBSize = fi.Size()
	if check == nil {
		check = CheckDB
	}
	res := check(r.DBPath)
	r.DBOpens, r.Subsystems = res.Opens, res.Subsystems
	switch {
	case !res.Opens:
		r.DBProblem = res.Problem
		r.Advice = "The database does not open. Restore a backup (after a reinstall that does not keep the data)."
	case res.Problem != "":
		r.DBProblem = firstLines(res.Problem, 5)
		r.Advice = "The database is inconsistent. Export the logs, then restore a backup; the current file is kept until then."
	default:
		r.Advice = "The data partition and its database are consistent."
	}
	return r
}

// DBResult is the outcome of a database check.
type DBResult struct {
	Opens      bool           `json:"opens"`
	Problem    string         `json:"problem,omitempty"`
	Subsystems map[string]int `json:"subsystems,omitempty"`
}

// CheckDB opens the database read-only and runs bbolt's consistency check. bbolt can panic
// on a damaged file in a goroutine of its own, which no recover catches: run it in a child
// process (ProcessChecker) when the caller must survive that.
func CheckDB(path string) DBResult {
	res := DBResult{Subsystems: map[string]int{}}
	db, err := storage.Open(path, storage.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		res.Problem = err.Error()
		return res
	}
	defer db.Close()
	res.Opens = true
	if err := db.Check(); err != nil {
		res.Problem = err.Error()
		return res
	}
	db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
			if strings.HasPrefix(string(name), "_") {
				return nil
			}
			if v, err := db.SchemaVersion(string(name)); err == nil {
				res.Subsystems[string(name)] = v
			}
			return nil
		})
	})
	return res
}

// ProcessChecker runs CheckDB in a child process: cmd(path) must start a program that calls
// ServeCheckDB (anyad check-db PATH). A crash of the child is reported as damage.
func ProcessChecker(cmd func(path string) *exec.Cmd) func(string) DBResult {
	return func(path string) DBResult {
		c := cmd(path)
		var stderr bytes.Buffer
		c.Stderr = &stderr
		out, err := c.Output()
		var res DBResult
		if err == nil && json.Unmarshal(out, &res) == nil {
			return res
		}
		msg := strings.TrimSpace(stderr.String())
		if i := strings.Index(msg, "\n"); i > 0 {
			msg = msg[:i]
		}
		return DBResult{Problem: fmt.Sprintf("the database is damaged: checking it crashed (%v: %s)", err, msg)}
	}
}

// ServeCheckDB is the child's side of ProcessChecker: it checks path and writes the result
// as JSON to w.
func ServeCheckDB(w io.Writer, path string) error {
	return json.NewEncoder(w).Encode(CheckDB(path))
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = append(lines[:n], fmt.Sprintf("… (%d more lines)", strings.Count(s, "\n")-n+1))
	}
	return strings.Join(lines, "\n")
}
