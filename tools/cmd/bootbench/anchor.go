package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The anchor is built from pinned module versions, all served by the Go module proxy. Each
// pin goes into the cache key: changing one builds a new anchor image.
const (
	gokToolsVersion = "v0.0.0-20260109180632-8ed49b4fafc7" // github.com/gokrazy/tools (gok)
	gokrazyVersion  = "v0.0.0-20260418085648-c38c3134b8a7" // github.com/gokrazy/gokrazy (init, dhcp, ntp, ...)
	kernelVersion   = "v0.0.0-20260705070735-de680abf072b" // github.com/gokrazy/kernel.amd64
	anchorStorage   = 2 << 30                              // gok needs ≥ 1.26 GB; the file stays sparse
)

// anchorServer is the anchor's only package: it answers 200 on / at port 80, like anyad's
// page, and serves a few /proc files so that the benchmark can read the guest's memory.
// gokrazy's own web interface is moved to port 8080, which is not forwarded.
const anchorServer = `// Command anchorhttp is bootbench's HTTP server on the gokrazy anchor image.
package main

import (
	"log"
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("gokrazy anchor\n"))
	})
	for _, p := range []string{"/proc/meminfo", "/proc/1/status", "/proc/self/status"} {
		http.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			b, err := os.ReadFile(p)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.Write(b)
		})
	}
	log.Fatal(http.ListenAndServe(":80", nil))
}
`

// gokrazyPackages are gokrazy's default system services, built at gokrazyVersion.
var gokrazyPackages = []string{"dhcp", "ntp", "randomd", "heartbeat"}

func anchorConfig() ([]byte, error) {
	return json.MarshalIndent(map[string]any{
		"Hostname":        "anchor",
		"Update":          map[string]string{"HTTPPassword": "bootbench-anchor", "HTTPPort": "8080"},
		"Environment":     []string{"GOOS=linux", "GOARCH=amd64"},
		"Packages":        []string{"anchorhttp"},
		"SerialConsole":   "ttyS0,115200",
		"KernelPackage":   "github.com/gokrazy/kernel.amd64",
		"FirmwarePackage": "", // Raspberry Pi only
		"EEPROMPackage":   "",
	}, "", "  ")
}

// anchorBuild records how the cached anchor image was made.
type anchorBuild struct {
	Tools    string    `json:"gokrazy_tools"`
	Gokrazy  string    `json:"gokrazy"`
	Kernel   string    `json:"kernel_amd64"`
	Services []string  `json:"services"`
	Go       string    `json:"go"`
	Built    time.Time `json:"built"`
	Log      string    `json:"log"`
}

type anchorImage struct {
	Image string
	Build anchorBuild
}

// buildAnchor returns the cached anchor image in dir, building it first when it is missing.
func buildAnchor(ctx context.Context, dir string) (anchorImage, error) {
	cfg, err := anchorConfig()
	if err != nil {
		return anchorImage{}, err
	}
	h := sha256.New()
	for _, s := range []string{gokToolsVersion, gokrazyVersion, kernelVersion, anchorServer, string(cfg)} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	key := hex.EncodeToString(h.Sum(nil))[:12]
	a := anchorImage{Image: filepath.Join(dir, "anchor-"+key+".img")}
	metaPath := filepath.Join(dir, "anchor-"+key+".json")
	if _, err := os.Stat(a.Image); err == nil {
		if b, err := os.ReadFile(metaPath); err == nil && json.Unmarshal(b, &a.Build) == nil {
			fmt.Fprintf(os.Stderr, "anchor: cached %s\n", a.Image)
			return a, nil
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return a, err
	}
	gok, err := installGok(ctx, dir)
	if err != nil {
		return a, err
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return a, err
	}
	defer os.RemoveAll(tmp)
	goVersion, err := goCmd(ctx, tmp, nil, "env", "GOVERSION")
	if err != nil {
		return a, err
	}
	goVersion = strings.TrimSpace(goVersion)
	goLine := "go " + strings.TrimPrefix(goVersion, "go") + "\n"

	// The instance, with a build directory per package that pins its module version, so that
	// gok never asks the proxy for @latest.
	srv := filepath.Join(tmp, "anchorhttp")
	inst := filepath.Join(tmp, "parent", "anchor")
	files := map[string]string{
		filepath.Join(srv, "go.mod"):       "module anchorhttp\n\ngo 1.22\n",
		filepath.Join(srv, "main.go"):      anchorServer,
		filepath.Join(inst, "config.json"): string(cfg) + "\n",
		filepath.Join(inst, "builddir", "anchorhttp", "go.mod"): "module gokrazy/build/anchorhttp\n\n" + goLine +
			"\nrequire anchorhttp v0.0.0-00010101000000-000000000000\n\nreplace anchorhttp => " + srv + "\n",
		filepath.Join(inst, "builddir", "github.com/gokrazy/kernel.amd64", "go.mod"): "module gokrazy/build/anchor\n\n" + goLine +
			"\nrequire github.com/gokrazy/kernel.amd64 " + kernelVersion + "\n",
	}
	for _, p := range append([]string{""}, gokrazyPackages...) {
		if p != "" {
			p = "cmd/" + p
		}
		files[filepath.Join(inst, "builddir", "github.com/gokrazy/gokrazy", p, "go.mod")] = "module gokrazy/build/anchor\n\n" +
			goLine + "\nrequire github.com/gokrazy/gokrazy " + gokrazyVersion + "\n"
	}
	for p, s := range files {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return a, err
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			return a, err
		}
	}

	logPath := filepath.Join(dir, "anchor-"+key+".log")
	fmt.Fprintf(os.Stderr, "anchor: building the gokrazy image (log: %s)\n", logPath)
	out := filepath.Join(tmp, "anchor.img")
	cmd := exec.CommandContext(ctx, gok, "--parent_dir", filepath.Join(tmp, "parent"), "-i", "anchor",
		"overwrite", "--full", out, fmt.Sprintf("--target_storage_bytes=%d", anchorStorage), "--sudo=never")
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOWORK=off")
	logb, err := cmd.CombinedOutput()
	if werr := os.WriteFile(logPath, logb, 0o644); werr != nil {
		return a, werr
	}
	if err != nil {
		return a, fmt.Errorf("gok overwrite: %w\n%s", err, tail(logb, 20))
	}
	if err := os.Rename(out, a.Image); err != nil {
		return a, fmt.Errorf("gok overwrite wrote no image: %w\n%s", err, tail(logb, 20))
	}
	a.Build = anchorBuild{Tools: gokToolsVersion, Gokrazy: gokrazyVersion, Kernel: kernelVersion,
		Services: gokrazyPackages, Go: goVersion, Built: time.Now().UTC(), Log: logPath}
	meta, _ := json.MarshalIndent(a.Build, "", "  ")
	return a, os.WriteFile(metaPath, append(meta, '\n'), 0o644)
}

// installGok builds gok at gokToolsVersion into dir/bin. It uses a throwaway module rather
// than "go install ...@version", which also fetches the module's version list (for
// deprecation notices) and fails when the proxy refuses that list, as it does here.
func installGok(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "bin", "gok-"+gokToolsVersion)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	fmt.Fprintf(os.Stderr, "anchor: building gok %s\n", gokToolsVersion)
	mod, err := os.MkdirTemp(dir, "gok-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(mod)
	const pkg = "github.com/gokrazy/tools/cmd/gok"
	steps := [][]string{
		{"mod", "init", "gokbuild"},
		{"get", pkg + "@" + gokToolsVersion},
		{"build", "-o", bin + ".tmp", pkg},
	}
	for _, args := range steps {
		if _, err := goCmd(ctx, mod, nil, args...); err != nil {
			return "", fmt.Errorf("build gok: %w", err)
		}
	}
	return bin, os.Rename(bin+".tmp", bin)
}

func goCmd(ctx context.Context, dir string, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "GOWORK=off"), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, tail(stderr.Bytes(), 20))
	}
	return string(out), nil
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
