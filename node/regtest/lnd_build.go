package regtest

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"
)

// LndVersion is the lnd release whose lnd and lncli the harness builds and runs.
const LndVersion = "v0.21.3-beta"

const (
	lndModule = "github.com/lightningnetwork/lnd"
	lndPkg    = lndModule + "/cmd/lnd"
	lncliPkg  = lndModule + "/cmd/lncli"
	// lndWrapper is the module path of the throw-away module lnd is built from.
	lndWrapper = "anya.local/lndbuild"
	// lndTags are the build tags of lnd's release builds that the tests need (routerrpc for
	// buildroute and sendtoroute).
	lndTags = "signrpc walletrpc chainrpc invoicesrpc routerrpc peersrpc"
)

// lndBuildTimeout bounds a cold build: about 7 minutes of CPU on two cores, 20 minutes and
// more of wall time on a loaded machine.
const lndBuildTimeout = 45 * time.Minute

// LndBinaries are the paths of the cached lnd and lncli executables.
type LndBinaries struct {
	Lnd   string
	Lncli string
	// Built is how long this process spent building them (0 when they were cached).
	Built time.Duration
}

var (
	lndOnce sync.Once
	lndRes  LndBinaries
	lndErr  error
)

// LndBins returns lnd and lncli at LndVersion, building them on first use (see doc.go). When
// they cannot be built the test is skipped, or fails if ANYA_REQUIRE_ALL=1.
func LndBins(tb testing.TB) LndBinaries {
	tb.Helper()
	lndOnce.Do(func() { lndRes, lndErr = ensureLnd() })
	if lndErr != nil {
		if os.Getenv("ANYA_REQUIRE_ALL") == "1" {
			tb.Fatalf("lnd %s is required (ANYA_REQUIRE_ALL=1): %v", LndVersion, lndErr)
		}
		tb.Skipf("lnd %s not available: %v", LndVersion, lndErr)
	}
	return lndRes
}

func ensureLnd() (LndBinaries, error) {
	dir, err := CacheDir()
	if err != nil {
		return LndBinaries{}, err
	}
	b := LndBinaries{Lnd: filepath.Join(dir, "lnd"), Lncli: filepath.Join(dir, "lncli")}
	if lndCached(b) {
		return b, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return LndBinaries{}, fmt.Errorf("regtest: create cache %s: %w", dir, err)
	}
	unlock, err := lockFile(filepath.Join(dir, ".build-lnd.lock"))
	if err != nil {
		return LndBinaries{}, fmt.Errorf("regtest: lock cache %s: %w", dir, err)
	}
	defer unlock()
	if lndCached(b) {
		return b, nil
	}
	start := time.Now()
	if err := buildLnd(dir); err != nil {
		return LndBinaries{}, err
	}
	b.Built = time.Since(start)
	if !lndCached(b) {
		return LndBinaries{}, fmt.Errorf("regtest: built binaries in %s do not report lnd %s", dir, LndVersion)
	}
	return b, nil
}

// lndCached reports whether both binaries exist and were built from lnd at LndVersion.
func lndCached(b LndBinaries) bool {
	for path, pkg := range map[string]string{b.Lnd: lndPkg, b.Lncli: lncliPkg} {
		info, err := buildinfo.ReadFile(path)
		if err != nil || info.Path != pkg || lndModuleVersion(info) != LndVersion {
			return false
		}
	}
	return true
}

func lndModuleVersion(info *buildinfo.BuildInfo) string {
	if info.Main.Path == lndModule {
		return info.Main.Version
	}
	for _, d := range info.Deps {
		if d.Path == lndModule {
			return d.Version
		}
	}
	return ""
}

var moduleLine = regexp.MustCompile(`(?m)^module\s+\S+\s*$`)

// buildLnd builds lnd and lncli from a wrapper module: lnd's go.mod has replace directives,
// which `go install pkg@version` refuses, so the wrapper copies lnd's go.mod (requirements
// and replaces) and go.sum under another module path and requires lnd itself.
func buildLnd(dir string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("regtest: go toolchain not found: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, ".build-lnd-")
	if err != nil {
		return fmt.Errorf("regtest: build dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), lndBuildTimeout)
	defer cancel()
	env := append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "CGO_ENABLED=0")
	run := func(args ...string) ([]byte, error) {
		// nice: the build takes minutes of both cores; let the rest of the machine breathe.
		name, argv := goBin, args
		if nice, err := exec.LookPath("nice"); err == nil {
			name, argv = nice, append([]string{"-n", "10", goBin}, args...)
		}
		cmd := exec.CommandContext(ctx, name, argv...)
		cmd.Dir, cmd.Env = tmp, env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("go %v: %w: %s", args, err, bytes.TrimSpace(stderr.Bytes()))
		}
		return stdout.Bytes(), nil
	}

	out, err := run("mod", "download", "-json", lndModule+"@"+LndVersion)
	if err != nil {
		return fmt.Errorf("regtest: download lnd: %w", err)
	}
	var mod struct{ GoMod, Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.GoMod == "" || mod.Dir == "" {
		return fmt.Errorf("regtest: download lnd: unexpected answer %q (%v)", out, err)
	}
	gomod, err := os.ReadFile(mod.GoMod)
	if err != nil {
		return fmt.Errorf("regtest: lnd go.mod: %w", err)
	}
	if !moduleLine.Match(gomod) {
		return fmt.Errorf("regtest: lnd go.mod has no module line")
	}
	gomod = moduleLine.ReplaceAll(gomod, []byte("module "+lndWrapper))
	gomod = fmt.Appendf(gomod, "\nrequire %s %s\n", lndModule, LndVersion)
	gosum, err := os.ReadFile(filepath.Join(mod.Dir, "go.sum"))
	if err != nil {
		return fmt.Errorf("regtest: lnd go.sum: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "go.mod"), gomod, 0o644); err != nil {
		return fmt.Errorf("regtest: wrapper go.mod: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "go.sum"), gosum, 0o644); err != nil {
		return fmt.Errorf("regtest: wrapper go.sum: %w", err)
	}
	bin := filepath.Join(tmp, "bin")
	if _, err := run("build", "-trimpath", "-tags", lndTags, "-o", bin+string(filepath.Separator), lndPkg, lncliPkg); err != nil {
		return fmt.Errorf("regtest: build lnd %s: %w", LndVersion, err)
	}
	for _, name := range []string{"lnd", "lncli"} {
		if err := os.Rename(filepath.Join(bin, name), filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("regtest: install %s: %w", name, err)
		}
	}
	return nil
}
