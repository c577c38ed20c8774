package backup

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anya-edge/anya/hsm"
	"github.com/anya-edge/anya/storage"
)

// Custody is what the scheduler needs of the key custody (*hsm.Custody): the public half of
// the backup key, available while the wallet is locked, and the public accounts.
type Custody interface {
	BackupRecipient() (hsm.BackupRecipient, error)
	Status() (hsm.Status, error)
}

// Scheduler defaults.
const (
	DefaultKeep     = 7
	DefaultDebounce = 30 * time.Second
	DefaultMaxDelay = 10 * time.Minute
	DefaultInterval = 24 * time.Hour
	DefaultRetry    = 5 * time.Minute
	DefaultCopyPoll = 3 * time.Second
)

// FileSuffix ends the name of every backup file the scheduler writes.
const FileSuffix = ".anyabak"

// SchedulerConfig configures a Scheduler.
type SchedulerConfig struct {
	DB      *storage.DB
	Custody Custody
	// Dir is the directory backups are written to; it must exist.
	Dir string
	// Keep is how many backups of the wallet are kept in Dir (the newest); 0 means
	// DefaultKeep. Files of other wallets and other files are never touched.
	Keep int
	// Debounce is the quiet time after a change before the backup is taken, so that a
	// burst of changes (a block with many wallet transactions) makes one backup; MaxDelay
	// bounds how long a change waits under a steady stream of changes.
	Debounce time.Duration
	MaxDelay time.Duration
	// Interval is the time between scheduled backups, which catch changes that were not
	// signalled (see storage.DB.MarkChanged); Retry the wait after a failed backup.
	Interval time.Duration
	Retry    time.Duration
	// Copies, when set, lists more directories each backup is copied to: the backups
	// directories of the USB sticks plugged in. It is asked at each backup, and every
	// CopyPoll to notice a stick that arrived, which then gets a copy at once. Each
	// directory keeps its own newest Keep backups of the wallet, and gets a copy only when
	// its newest one differs in content.
	Copies   func() []string
	CopyPoll time.Duration
	// Options are the backups' options; Accounts are taken from the custody.
	Options Options
	Log     *slog.Logger
}

// Result is the outcome of one backup attempt.
type Result struct {
	Time    time.Time `json:"time"`
	Reason  string    `json:"reason"` // "start", "change", "schedule" or what BackupNow was given
	Written bool      `json:"written"`
	Path    string    `json:"path,omitempty"` // the file written
	// Note says why nothing was written when that is no error ("no wallet yet", "no
	// change since the last backup").
	Note  string        `json:"note,omitempty"`
	Err   error         `json:"-"`
	Error string        `json:"error,omitempty"` // Err's message, for the page
	Size  int64         `json:"size,omitempty"`
	Took  time.Duration `json:"took,omitempty"`
	// Copies are the outcomes in the directories of SchedulerConfig.Copies.
	Copies []CopyResult `json:"copies,omitempty"`
}

// CopyResult is the outcome of copying a backup into one of SchedulerConfig.Copies.
type CopyResult struct {
	Dir     string `json:"dir"`
	Written bool   `json:"written"`
	Path    string `json:"path,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Dir is the directory the scheduler writes to.
func (s *Scheduler) Dir() string { return s.cfg.Dir }

// CopyDirs returns the directories backups are currently copied to.
func (s *Scheduler) CopyDirs() []string {
	if s.cfg.Copies == nil {
		return nil
	}
	return s.cfg.Copies()
}

// Scheduler takes automatic backups: after relevant changes (debounced), on a schedule, and
// on request, each written atomically into a directory that keeps the newest few. A backup
// whose content equals the newest one's (same Header.ContentID) is not written again.
type Scheduler struct {
	cfg SchedulerConfig
	log *slog.Logger

	mu   sync.Mutex // serializes backups
	last Result
}

// NewScheduler checks cfg and fills in defaults.
func NewScheduler(cfg SchedulerConfig) (*Scheduler, error) {
	switch {
	case cfg.DB == nil || cfg.Custody == nil || cfg.Dir == "":
		return nil, errors.New("backup scheduler: DB, Custody and Dir are required")
	case cfg.Options.Network == "":
		return nil, errors.New("backup scheduler: the network is not set")
	}
	if err := cfg.Options.Policy.validate(); err != nil {
		return nil, fmt.Errorf("backup scheduler: %w", err)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Debounce, DefaultDebounce)
	def(&cfg.MaxDelay, DefaultMaxDelay)
	def(&cfg.Interval, DefaultInterval)
	def(&cfg.Retry, DefaultRetry)
	def(&cfg.CopyPoll, DefaultCopyPoll)
	if cfg.Keep <= 0 {
		cfg.Keep = DefaultKeep
	}
	s := &Scheduler{cfg: cfg, log: cfg.Log}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// Last returns the outcome of the latest attempt.
func (s *Scheduler) Last() Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// generations reads the change counters of the backed-up subsystems.
func (s *Scheduler) generations() map[string]uint64 {
	g := make(map[string]uint64, len(s.cfg.Options.Policy.Items))
	for _, it := range s.cfg.Options.Policy.Items {
		g[it.Subsystem] = s.cfg.DB.Generation(it.Subsystem)
	}
	return g
}

// Run takes a backup at start (when the content changed since the newest one), then after
// changes and on schedule, until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	changes, stop := s.cfg.DB.Watch()
	defer stop()
	seen := s.generations()
	ticker := time.NewTicker(s.cfg.Interval)
	defer ticker.Stop()
	timer := time.NewTimer(0) // the start-up backup
	defer timer.Stop()
	poll := time.NewTicker(s.cfg.CopyPoll)
	defer poll.Stop()
	copies := make(map[string]bool)
	for _, d := range s.CopyDirs() {
		copies[d] = true
	}
	reason := "start"
	var first time.Time // when the oldest change not yet backed up was seen
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changes:
			g := s.generations()
			if maps.Equal(g, seen) {
				continue // a subsystem that is not backed up changed
			}
			seen = g
			now := time.Now()
			if first.IsZero() {
				first = now
			}
			timer.Reset(max(0, min(s.cfg.Debounce, first.Add(s.cfg.MaxDelay).Sub(now))))
			reason = "change"
		case <-timer.C:
			first = time.Time{}
			if r := s.BackupNow(reason); r.Err != nil {
				timer.Reset(s.cfg.Retry)
				reason = "retry"
			}
		case <-poll.C:
			now, arrived := make(map[string]bool), false
			for _, d := range s.CopyDirs() {
				now[d], arrived = true, arrived || !copies[d]
			}
			copies = now
			if arrived {
				s.BackupNow("usb stick")
			}
		case <-ticker.C:
			if r := s.BackupNow("schedule"); r.Err != nil {
				timer.Reset(s.cfg.Retry)
				reason = "retry"
			}
		}
	}
}

// BackupNow takes a backup unless the content is that of the newest backup in the directory,
// and removes the oldest beyond Keep. reason is recorded in the result.
func (s *Scheduler) BackupNow(reason string) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := time.Now()
	r := Result{Time: start.UTC(), Reason: reason}
	err := s.backup(&r)
	r.Took = time.Since(start)
	switch {
	case err != nil:
		r.Err, r.Error = err, err.Error()
		s.log.Warn("backup failed", "reason", reason, "err", err)
	case r.Written:
		s.log.Info("backup written", "reason", reason, "path", r.Path, "bytes", r.Size, "took", r.Took)
	default:
		s.log.Debug("no backup needed", "reason", reason, "note", r.Note)
	}
	for _, c := range r.Copies {
		switch {
		case c.Error != "":
			s.log.Warn("backup copy failed", "dir", c.Dir, "err", c.Error)
		case c.Written:
			s.log.Info("backup copied", "path", c.Path)
		}
	}
	s.last = r
	return r
}

func (s *Scheduler) backup(r *Result) error {
	to, err := s.cfg.Custody.BackupRecipient()
	if errors.Is(err, hsm.ErrNoWallet) {
		r.Note = "no wallet yet"
		return nil
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	st, err := s.cfg.Custody.Status()
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	opts := s.cfg.Options
	opts.Accounts = st.Accounts
	id, err := ContentID(s.cfg.DB, to, opts)
	if err != nil {
		return err
	}
	if same, err := s.newestHas(s.cfg.Dir, to, id); err != nil {
		return err
	} else if same {
		r.Note = "no change since the last backup"
	} else if err := s.write(r, to, opts); err != nil {
		return err
	}
	for _, dir := range s.CopyDirs() {
		c := CopyResult{Dir: dir}
		if err := s.copyInto(&c, to, id); err != nil {
			c.Error = err.Error()
		}
		r.Copies = append(r.Copies, c)
	}
	return nil
}

// newestHas reports whether the wallet's newest backup in dir has content id.
func (s *Scheduler) newestHas(dir string, to hsm.BackupRecipient, id []byte) (bool, error) {
	files, err := s.files(dir, to)
	if err != nil || len(files) == 0 {
		return false, err
	}
	h, err := readHeaderFile(filepath.Join(dir, files[len(files)-1]))
	return err == nil && hmac.Equal(h.ContentID, id), nil
}

// write writes a new backup into Dir and rotates it.
func (s *Scheduler) write(r *Result, to hsm.BackupRecipient, opts Options) error {
	now := time.Now()
	if opts.Now != nil {
		now = opts.Now()
	}
	path := filepath.Join(s.cfg.Dir, filePrefix(to)+now.UTC().Format(fileTime)+FileSuffix)
	err := storage.WriteFileAtomic(path, func(w io.Writer) (int64, error) {
		m, err := Write(w, s.cfg.DB, to, opts)
		if err != nil {
			return 0, err
		}
		r.Size = m.Size
		return m.Size, nil
	})
	if err != nil {
		return err
	}
	r.Written, r.Path = true, path
	return s.rotate(s.cfg.Dir, to)
}

// copyInto copies the wallet's newest backup in Dir, whose content id is id, into c.Dir
// unless the newest there has the same content, and rotates c.Dir.
func (s *Scheduler) copyInto(c *CopyResult, to hsm.BackupRecipient, id []byte) error {
	if same, err := s.newestHas(c.Dir, to, id); err != nil || same {
		return err
	}
	files, err := s.files(s.cfg.Dir, to)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return nil
	}
	name := files[len(files)-1]
	src, err := os.Open(filepath.Join(s.cfg.Dir, name))
	if err != nil {
		return fmt.Errorf("backup: copy: %w", err)
	}
	defer src.Close()
	path := filepath.Join(c.Dir, name)
	if err := storage.WriteFileAtomic(path, func(w io.Writer) (int64, error) { return io.Copy(w, src) }); err != nil {
		return fmt.Errorf("backup: copy to %s: %w", c.Dir, err)
	}
	c.Written, c.Path = true, path
	return s.rotate(c.Dir, to)
}

// fileTime is the time in backup file names: fixed width, so names sort by time.
const fileTime = "20060102T150405.000Z"

// filePrefix starts the names of a wallet's backups: its fingerprint for people, the start
// of its wallet id to keep wallets that share a fingerprint apart.
func filePrefix(to hsm.BackupRecipient) string {
	return fmt.Sprintf("anya-backup-%s-%s-", to.Fingerprint, to.WalletID.String()[:16])
}

// files lists the wallet's backup files in dir, oldest first.
func (s *Scheduler) files(dir string, to hsm.BackupRecipient) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("backup: list %s: %w", dir, err)
	}
	prefix := filePrefix(to)
	var out []string
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, FileSuffix) {
			continue
		}
		if _, err := time.Parse(fileTime, strings.TrimSuffix(strings.TrimPrefix(name, prefix), FileSuffix)); err != nil {
			continue
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return out, nil
}

// rotate removes the wallet's oldest backups in dir beyond Keep.
func (s *Scheduler) rotate(dir string, to hsm.BackupRecipient) error {
	files, err := s.files(dir, to)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range files[:max(0, len(files)-s.cfg.Keep)] {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("backup: rotate: %w", errors.Join(errs...))
	}
	return nil
}

func readHeaderFile(path string) (*Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadHeader(f)
}
