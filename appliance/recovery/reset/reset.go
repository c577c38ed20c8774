package reset

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/anya-edge/anya/appliance/datapart"
	"github.com/anya-edge/anya/storage"
	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/ext4"
	"golang.org/x/sys/unix"
)

// Files on the data partition and on a USB stick.
const (
	// TokenFile (data directory) holds the SHA-256 of the owner's reset token, hex.
	TokenFile = "reset-token.sha256"
	// MarkerFile (data directory) asks PID 1 to erase the data partition at the next boot.
	MarkerFile = "factory-reset.request"
	// RequestFile is the reset request an owner puts in the root of a USB stick.
	RequestFile = "anya-factory-reset.txt"
	// Confirmation is what the owner types (page) or writes on the request's second line.
	Confirmation = "erase this box"
)

// Errors of a reset request.
var (
	ErrNoToken      = errors.New("this box has no reset token: reset it from the page")
	ErrWrongToken   = errors.New("the reset token does not match this box's")
	ErrConfirmation = errors.New(`the confirmation must read "` + Confirmation + `"`)
)

var tokenEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewToken makes a reset token (20 random bytes, base32 in groups of four: 32 characters),
// stores only its SHA-256 in dataDir's TokenFile and returns it to be shown once. A new token
// replaces the old one.
func NewToken(dataDir string) (string, error) {
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	raw := tokenEncoding.EncodeToString(b[:])
	var groups []string
	for i := 0; i < len(raw); i += 4 {
		groups = append(groups, raw[i:min(i+4, len(raw))])
	}
	token := strings.Join(groups, "-")
	sum := sha256.Sum256([]byte(normalize(token)))
	err := storage.WriteFileAtomic(filepath.Join(dataDir, TokenFile), func(w io.Writer) (int64, error) {
		n, err := io.WriteString(w, hex.EncodeToString(sum[:])+"\n")
		return int64(n), err
	})
	if err != nil {
		return "", fmt.Errorf("store the reset token: %w", err)
	}
	return token, nil
}

// normalize makes a typed token comparable: no dashes or spaces, upper case.
func normalize(token string) string {
	return strings.ToUpper(strings.NewReplacer("-", "", " ", "", "\t", "").Replace(strings.TrimSpace(token)))
}

// CheckToken compares token with the hash stored in dataDir.
func CheckToken(dataDir, token string) error {
	b, err := os.ReadFile(filepath.Join(dataDir, TokenFile))
	if errors.Is(err, fs.ErrNotExist) {
		return ErrNoToken
	}
	if err != nil {
		return fmt.Errorf("read the reset token: %w", err)
	}
	want, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(want) != sha256.Size {
		return fmt.Errorf("read the reset token: %s is damaged", TokenFile)
	}
	got := sha256.Sum256([]byte(normalize(token)))
	if subtle.ConstantTimeCompare(got[:], want) != 1 {
		return ErrWrongToken
	}
	return nil
}

// ReadRequest reads a reset request file from a stick: the token on its first non-empty
// line, the confirmation on the next.
func ReadRequest(stickDir string) (token string, err error) {
	f, err := os.Open(filepath.Join(stickDir, RequestFile))
	if err != nil {
		return "", err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(io.LimitReader(f, 4096))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if len(lines) < 2 {
		return "", fmt.Errorf("%s: %w", RequestFile, ErrConfirmation)
	}
	if !strings.EqualFold(lines[1], Confirmation) {
		return "", fmt.Errorf("%s: %w", RequestFile, ErrConfirmation)
	}
	return lines[0], nil
}

// CheckRequest reads the request on a stick and checks its token against dataDir's. A stick
// without a request gives fs.ErrNotExist.
func CheckRequest(stickDir, dataDir string) error {
	token, err := ReadRequest(stickDir)
	if err != nil {
		return err
	}
	return CheckToken(dataDir, token)
}

// Request records that the data partition is to be erased at the next boot (the caller then
// reboots). PID 1 acts on it before any service opens the data (Pending, Erase).
func Request(dataDir, reason string) error {
	err := storage.WriteFileAtomic(filepath.Join(dataDir, MarkerFile), func(w io.Writer) (int64, error) {
		n, err := fmt.Fprintf(w, "%s %s\n", time.Now().UTC().Format(time.RFC3339), reason)
		return int64(n), err
	})
	if err != nil {
		return fmt.Errorf("request the factory reset: %w", err)
	}
	return nil
}

// Pending reports whether dataDir holds a reset request.
func Pending(dataDir string) bool {
	_, err := os.Stat(filepath.Join(dataDir, MarkerFile))
	return err == nil
}

// EraseOptions say what to erase.
type EraseOptions struct {
	// DataDir is where the data partition is mounted; its regular files are overwritten
	// in place before the partition is (the database first).
	DataDir string
	// Device is the data partition (a block device; in tests a file), Offset and Size its
	// region (Size 0: to the end).
	Device       string
	Offset, Size int64
	// Label is the label of the new filesystem.
	Label string
	// Unmount unmounts DataDir (PID 1: unix.Unmount); nil when it is not mounted.
	Unmount func() error
	Log     *slog.Logger
}

// EraseResult reports an erase.
type EraseResult struct {
	FilesOverwritten int
	BytesZeroed      int64
	Took             time.Duration
}

// Erase is the factory reset of the data partition: every regular file in DataDir is
// overwritten with zeros in place and synced (the database first: it holds the sealed seed,
// the TPM and YubiKey blobs, the admin password hash, sessions and the wallet), the
// partition is unmounted, then every byte of it is zeroed (BLKZEROOUT where the device offers
// it, plain writes otherwise, synced), which also clears copies in freed blocks and the ext4
// journal, and a new empty ext4 filesystem is written (datapart.Format). The firmware (ESP,
// slots) is not touched.
func Erase(o EraseOptions) (EraseResult, error) {
	start := time.Now()
	var res EraseResult
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.DataDir != "" {
		n, err := overwriteFiles(o.DataDir)
		res.FilesOverwritten = n
		if err != nil {
			o.Log.Error("factory reset: overwriting files", "err", err)
		}
	}
	if o.Unmount != nil {
		if err := o.Unmount(); err != nil {
			return res, fmt.Errorf("factory reset: unmount the data partition: %w", err)
		}
	}
	n, err := zeroDevice(o.Device, o.Offset, o.Size)
	res.BytesZeroed = n
	if err != nil {
		return res, fmt.Errorf("factory reset: zero %s: %w", o.Device, err)
	}
	if err := format(o.Device, o.Offset, n, o.Label); err != nil {
		return res, fmt.Errorf("factory reset: %w", err)
	}
	res.Took = time.Since(start)
	o.Log.Info("factory reset: data partition erased", "files", res.FilesOverwritten, "bytes", res.BytesZeroed, "took", res.Took.Round(time.Millisecond))
	return res, nil
}

// format writes an empty ext4 filesystem: datapart.Format for a whole device, go-diskfs at
// the offset for a region of a disk image.
func format(dev string, off, size int64, label string) error {
	if off == 0 {
		return datapart.Format(dev, label)
	}
	b, err := file.OpenFromPath(dev, false)
	if err != nil {
		return fmt.Errorf("format %s: %w", dev, err)
	}
	defer b.Close()
	if _, err := ext4.Create(b, size, off, 512, &ext4.Params{VolumeName: label}); err != nil {
		return fmt.Errorf("format %s@%d: %w", dev, off, err)
	}
	return nil
}

// overwriteFiles zeroes every regular file below dir in place, the database first.
func overwriteFiles(dir string) (int, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() {
			if filepath.Base(p) == "anya.db" {
				files = append([]string{p}, files...)
			} else {
				files = append(files, p)
			}
		}
		return nil
	})
	var errs []error
	n := 0
	for _, p := range files {
		if err := overwrite(p); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(append(errs, err)...)
}

func overwrite(p string) error {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if _, err := zeroWriter(f, 0, fi.Size()); err != nil {
		return fmt.Errorf("overwrite %s: %w", p, err)
	}
	return f.Sync()
}

func zeroWriter(f *os.File, off, n int64) (int64, error) {
	buf := make([]byte, min(n, 4<<20))
	var done int64
	for done < n {
		k := min(int64(len(buf)), n-done)
		w, err := f.WriteAt(buf[:k], off+done)
		done += int64(w)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// zeroDevice zeroes size bytes at off of a device or file (to its end when size is 0).
func zeroDevice(dev string, off, size int64) (int64, error) {
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if size <= 0 {
		end, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			return 0, err
		}
		size = end - off
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if fi.Mode()&os.ModeDevice != 0 {
		// The device zeroes (or unmaps to zeros) itself: fast on SSDs; falls back to writes.
		r := [2]uint64{uint64(off), uint64(size)}
		if err := ioctlRange(f, unix.BLKZEROOUT, &r); err == nil {
			return size, f.Sync()
		}
	}
	n, err := zeroWriter(f, off, size)
	if err != nil {
		return n, err
	}
	return n, f.Sync()
}
