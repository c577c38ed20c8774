package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/image"
)

// writeRelease writes the slot files of a fake release counter n and returns sign's flags.
func writeRelease(t *testing.T, dir string, n int) []string {
	t.Helper()
	d := filepath.Join(dir, "build-"+strconv.Itoa(n))
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	m, _ := json.Marshal(image.Release{Version: "1." + strconv.Itoa(n) + ".0", Counter: n, Arch: "amd64", Epoch: 1767225600})
	files := map[string][]byte{
		"release.json":    m,
		"vmlinuz":         bytes.Repeat([]byte("kernel "+strconv.Itoa(n)), 5000),
		"initrd.img":      bytes.Repeat([]byte("initrd "+strconv.Itoa(n)), 5000),
		"system.squashfs": bytes.Repeat([]byte("hsqs "+strconv.Itoa(n)), 20000),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(d, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return []string{"-manifest", filepath.Join(d, "release.json"), "-kernel", filepath.Join(d, "vmlinuz"),
		"-initrd", filepath.Join(d, "initrd.img"), "-system", filepath.Join(d, "system.squashfs")}
}

// TestReleaseEndToEnd: keygen → sign v1 and v2 → a box (state file) verifies v1, then v2, then
// refuses v1 again as a rollback; the tar bundles verify like the directories.
func TestReleaseEndToEnd(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if err := releaseKeygen([]string{"-keys", keys, "-root-keys", "3", "-root-threshold", "2"}); err != nil {
		t.Fatal(err)
	}
	var bundles, tars []string
	for n := 1; n <= 2; n++ {
		out := filepath.Join(dir, "release-"+strconv.Itoa(n))
		tarFile := out + ".tar"
		args := append([]string{"-keys", keys, "-o", out, "-tar", tarFile}, writeRelease(t, dir, n)...)
		if err := releaseSign(args); err != nil {
			t.Fatal(err)
		}
		bundles, tars = append(bundles, out), append(tars, tarFile)
	}
	state := filepath.Join(dir, "box-state.json")
	verify := func(bundle string, installed int) error {
		return releaseVerify(context.Background(), []string{"-keys", keys, "-bundle", bundle, "-state", state,
			"-installed-counter", strconv.Itoa(installed)})
	}
	if err := verify(tars[0], 0); err != nil {
		t.Fatalf("v1: %v", err)
	}
	if err := verify(bundles[1], 1); err != nil {
		t.Fatalf("v2: %v", err)
	}
	err := verify(bundles[0], 1)
	if release.ReasonOf(err) != release.ReasonRollback {
		t.Fatalf("v1 after v2: %v", err)
	}
	if err := verify(tars[0], 2); release.ReasonOf(err) != release.ReasonRollback {
		t.Fatalf("v1 tar after v2: %v", err)
	}
	t.Logf("v1 after v2: %v", err)

	// Rotating the timestamp key and renewing v2's timestamp: the box follows the new root.
	if err := releaseRotate([]string{"-keys", keys, "-roles", "timestamp"}); err != nil {
		t.Fatal(err)
	}
	if err := releaseRefresh([]string{"-keys", keys, "-o", bundles[1]}); err != nil {
		t.Fatal(err)
	}
	if err := verify(bundles[1], 2); err != nil {
		t.Fatalf("v2 re-stamped after rotation: %v", err)
	}
	st, err := release.FileStore{Path: state}.Load()
	if err != nil {
		t.Fatal(err)
	}
	root2, _ := os.ReadFile(filepath.Join(keys, "roots", "2.root.json"))
	if !bytes.Equal(st.Root, root2) {
		t.Fatal("the box's trusted root is not root 2")
	}
}
