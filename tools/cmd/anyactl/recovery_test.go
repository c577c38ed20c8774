package main

import (
	"context"
	"strings"
	"testing"
)

func TestRecoveryBuildFlags(t *testing.T) {
	err := recoveryBuild(context.Background(), []string{"-o", t.TempDir() + "/stick.img"})
	if err == nil || !strings.Contains(err.Error(), "-bundle and -trusted-root") {
		t.Fatalf("missing flags: %v", err)
	}
	err = recoveryBuild(context.Background(), []string{"-bundle", t.TempDir(), "-trusted-root", "/nonexistent/root.json"})
	if err == nil || !strings.Contains(err.Error(), "trusted root") {
		t.Fatalf("missing root: %v", err)
	}
}
