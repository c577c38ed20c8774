package onnxgo

import (
	"os/exec"
	"strings"
	"testing"
)

// TestAnyadDoesNotImportOnnxGo: onnx-go would add some 6.7 MB to the appliance's binary
// (see the package doc), so anyad must not depend on it, directly or not.
func TestAnyadDoesNotImportOnnxGo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list over anyad's dependencies")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	cmd := exec.Command(gobin, "list", "-deps", "github.com/anya-edge/anya/appliance/cmd/anyad")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		for _, bad := range []string{"github.com/owulveryck/onnx-go", "gorgonia.org/", "github.com/anya-edge/anya/ml/onnxgo"} {
			if strings.HasPrefix(p, bad) {
				t.Errorf("anyad imports %s", p)
			}
		}
	}
}
