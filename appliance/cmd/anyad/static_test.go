package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestStaticBinaries builds anyad and anyactl for amd64 and arm64 with cgo off and checks
// that the results are static executables (no program interpreter, no dynamic section).
func TestStaticBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles four binaries")
	}
	dir := t.TempDir()
	for _, arch := range []string{"amd64", "arm64"} {
		for _, pkg := range []string{"github.com/anya-edge/anya/appliance/cmd/anyad", "github.com/anya-edge/anya/tools/cmd/anyactl"} {
			out := filepath.Join(dir, filepath.Base(pkg)+"-"+arch)
			cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("build %s for %s: %v\n%s", pkg, arch, err, b)
			}
			f, err := elf.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			wantMachine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
			if f.Machine != wantMachine {
				t.Errorf("%s: machine %v", out, f.Machine)
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
					t.Errorf("%s is dynamically linked (%v)", filepath.Base(out), p.Type)
				}
			}
			f.Close()
		}
	}
}
