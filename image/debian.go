package image

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Debian packages the image is built from. The kernel package is versioned (Debian's security
// updates replace it); the exact version used is recorded in the image's release manifest.
const (
	DefaultKernelPackage = "linux-image-6.1.0-56-amd64"
	SystemdBootPackage   = "systemd-boot-efi"
)

// FetchDeb returns the path of the package's .deb in cacheDir, downloading it with
// `apt-get download` when it is not cached yet.
func FetchDeb(ctx context.Context, cacheDir, pkg string) (string, error) {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("fetch %s: %w", pkg, err)
	}
	if p, ok := cachedDeb(cacheDir, pkg); ok {
		return p, nil
	}
	cmd := exec.CommandContext(ctx, "apt-get", "download", pkg)
	cmd.Dir = cacheDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("fetch %s: apt-get download: %w\n%s", pkg, err, out)
	}
	if p, ok := cachedDeb(cacheDir, pkg); ok {
		return p, nil
	}
	return "", fmt.Errorf("fetch %s: apt-get download left no %s_*.deb in %s", pkg, pkg, cacheDir)
}

func cachedDeb(dir, pkg string) (string, bool) {
	m, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
	if len(m) == 0 {
		return "", false
	}
	return m[len(m)-1], true
}

// DebVersion returns the package version encoded in a .deb's file name (name_version_arch.deb),
// with apt's %3a escaping undone.
func DebVersion(debPath string) string {
	parts := strings.Split(strings.TrimSuffix(filepath.Base(debPath), ".deb"), "_")
	if len(parts) < 3 {
		return ""
	}
	return strings.ReplaceAll(parts[1], "%3a", ":")
}

// ExtractDeb unpacks a .deb into a directory next to it (once) and returns that directory.
func ExtractDeb(ctx context.Context, debPath string) (string, error) {
	dir := strings.TrimSuffix(debPath, ".deb") + ".d"
	done := filepath.Join(dir, ".extracted")
	if _, err := os.Stat(done); err == nil {
		return dir, nil
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", fmt.Errorf("extract %s: %w", debPath, err)
	}
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", debPath, tmp).CombinedOutput(); err != nil {
		return "", fmt.Errorf("extract %s: dpkg-deb: %w\n%s", debPath, err, out)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".extracted"), nil, 0o644); err != nil {
		return "", fmt.Errorf("extract %s: %w", debPath, err)
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("extract %s: %w", debPath, err)
	}
	return dir, nil
}
