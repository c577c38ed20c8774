package main

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/anya-edge/anya/tools/fleet"
)

// TestFleetCommands: keygen and sign a release, serve a fleet, and drive it with the admin
// commands: token, release add/list/widen/pause/resume/show, devices.
func TestFleetCommands(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	data := filepath.Join(dir, "fleet-data")
	if err := releaseKeygen([]string{"-keys", keys}); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-keys", keys, "-o", filepath.Join(data, "releases", "stable-2")}, writeRelease(t, dir, 2)...)
	if err := releaseSign(args); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- fleetServe(ctx, []string{"-listen", addr, "-data", data, "-root", filepath.Join(keys, "roots", "1.root.json")})
	}()
	url := "http://" + addr
	for i := 0; ; i++ {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i > 100 {
			t.Fatalf("server not up: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	admin := []string{"-server", url, "-admin-token", filepath.Join(data, "admin.token")}
	run := func(fn func(context.Context, []string) error, args ...string) {
		t.Helper()
		if err := fn(ctx, append(append([]string(nil), admin...), args...)); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	run(fleetToken, "-uses", "3", "-label", "cli")
	run(fleetToken, "-list")
	run(func(ctx context.Context, a []string) error { return fleetRelease(ctx, append([]string{"add"}, a...)) },
		"-channel", "stable", "-dir", "stable-2", "-steps", "10,50,100")
	for _, sub := range [][]string{{"list"}, {"widen", "-id", "stable-2"}, {"pause", "-id", "stable-2", "-reason", "test"},
		{"resume", "-id", "stable-2"}, {"show", "-id", "stable-2"}} {
		run(func(ctx context.Context, a []string) error { return fleetRelease(ctx, append([]string{sub[0]}, a...)) }, sub[1:]...)
	}
	run(fleetDevices)

	tok, err := readAdminToken(filepath.Join(data, "admin.token"), false)
	if err != nil {
		t.Fatal(err)
	}
	c := &fleet.AdminClient{URL: url, Token: tok}
	rs, err := c.Releases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Rollout.Percent != 50 || rs[0].Rollout.State != fleet.StateActive || rs[0].Version != "1.2.0" {
		t.Fatalf("releases %+v", rs)
	}
	ts, err := c.Tokens(ctx)
	if err != nil || len(ts) != 1 || ts[0].Uses != 3 {
		t.Fatalf("tokens %+v %v", ts, err)
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}
