package regtest

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// BtcdVersion is the btcd release whose binaries the harness builds and runs.
const BtcdVersion = "v0.26.2"

const (
	btcdPkg   = "github.com/btcsuite/btcd"
	btcctlPkg = "github.com/btcsuite/btcd/cmd/btcctl"
)

// buildTimeout bounds a cold build (about a minute on two cores, more under load).
const buildTimeout = 20 * time.Minute

// Binaries are the paths of the cached btcd and btcctl executables.
type Binaries struct {
	Btcd   string
	Btcctl string
	// Built is how long this process spent building them (0 when they were cached).
	Built time.Duration
}

var (
	binOnce sync.Once
	binRes  Binaries
	binErr  error
)

// CacheDir is the directory that holds the harness's binaries: $ANYA_CACHE/bin when
// ANYA_CACHE is set, otherwise anya/bin under the user's cache directory (~/.cache).
func CacheDir() (string, error) {
	if d := os.Getenv("ANYA_CACHE"); d != "" {
		return filepath.Join(d, "bin"), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("regtest: no cache directory (set ANYA_CACHE): %w", err)
	}
	return filepath.Join(d, "anya", "bin"), nil
}

// Bins returns btcd and btcctl at BtcdVersion, building them on first use. When they cannot
// be built the test is skipped, or fails if ANYA_REQUIRE_ALL=1.
func Bins(tb testing.TB) Binaries {
	tb.Helper()
	binOnce.Do(func() { binRes, binErr = ensureBinaries() })
	if binErr != nil {
		if os.Getenv("ANYA_REQUIRE_ALL") == "1" {
			tb.Fatalf("btcd %s is required (ANYA_REQUIRE_ALL=1): %v", BtcdVersion, binErr)
		}
		tb.Skipf("btcd %s not available: %v", BtcdVersion, binErr)
	}
	return binRes
}

func ensureBinaries() (Binaries, error) {
	dir, err := CacheDir()
	if err != nil {
		return Binaries{}, err
	}
	b := Binaries{Btcd: filepath.Join(dir, "btcd"), Btcctl: filepath.Join(dir, "btcctl")}
	if cached(b) {
		return b, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Binaries{}, fmt.Errorf("regtest: create cache %s: %w", dir, err)
	}
	unlock, err := lockFile(filepath.Join(dir, ".build.lock"))
	if err != nil {
		return Binaries{}, fmt.Errorf("regtest: lock cache %s: %w", dir, err)
	}
	defer unlock()
	if cached(b) { // another test binary built them while we waited for the lock
		return b, nil
	}
	start := time.Now()
	if err := build(dir); err != nil {
		return Binaries{}, err
	}
	b.Built = time.Since(start)
	if !cached(b) {
		return Binaries{}, fmt.Errorf("regtest: built binaries in %s do not report %s", dir, BtcdVersion)
	}
	return b, nil
}

// cached reports whether both binaries exist and were built from btcd at BtcdVersion.
func cached(b Binaries) bool {
	for path, pkg := range map[string]string{b.Btcd: btcdPkg, b.Btcctl: btcctlPkg} {
		info, err := buildinfo.ReadFile(path)
		if err != nil || info.Path != pkg || info.Main.Path != btcdPkg || info.Main.Version != BtcdVersion {
			return false
		}
	}
	return true
}

// build installs both commands into a private directory next to the cache and then renames
// them into place, so that a reader never sees a half-written binary.
func build(dir string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("regtest: go toolchain not found: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		return fmt.Errorf("regtest: build dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "install", "-trimpath",
		btcdPkg+"@"+BtcdVersion, btcctlPkg+"@"+BtcdVersion)
	cmd.Dir = tmp // outside any module: `go install pkg@version` ignores go.mod anyway
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=", "GOWORK=off", "CGO_ENABLED=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("regtest: go install btcd %s: %w: %s", BtcdVersion, err, bytes.TrimSpace(out.Bytes()))
	}
	for _, name := range []string{"btcd", "btcctl"} {
		if err := os.Rename(filepath.Join(tmp, name), filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("regtest: install %s: %w", name, err)
		}
	}
	return nil
}
