package release_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/image/publish"
)

func TestUpdateAcceptsAndInstalls(t *testing.T) {
	f := newFixture(t, publish.KeygenOptions{})
	b := f.sign("", publish.SignOptions{}, rel{counter: 3, minFrom: 1}, rel{counter: 3, arch: "arm64"})
	bx := f.box(release.Config{})
	bx.inst = release.Installed{Version: version(2), Counter: 2}
	r, err := bx.update(t, b.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.Version != "1.3.0" || r.Counter != 3 || r.MinFrom != 1 || r.Arch != "amd64" || len(r.Payloads) != 4 {
		t.Fatalf("release %+v", r)
	}
	for i, k := range release.Kinds() {
		if r.Payloads[i].Kind != k || r.Payloads[i].Path != "amd64/"+k.FileName() {
			t.Fatalf("payload %d: %+v", i, r.Payloads[i])
		}
	}
	if !r.Issued.Equal(t0) || !r.Expires.Equal(t0.Add(publish.DefaultTimestampExpires)) {
		t.Fatalf("issued %v expires %v", r.Issued, r.Expires)
	}
	got, err := install(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range release.Kinds()[1:] {
		if !bytes.Equal(got[k], payload(k, 3)) {
			t.Fatalf("%s payload differs", k)
		}
	}
	if !bytes.Equal(got[release.KindRelease], manifest("amd64", 3)) || !bytes.Equal(r.Manifest, manifest("amd64", 3)) {
		t.Fatal("manifest differs")
	}
	st, _ := bx.store.Load()
	if st.Timestamp != 1 || st.Snapshot != 1 || st.Targets != 1 || st.Counter != 3 || !st.LastKnownGood.Equal(t0) {
		t.Fatalf("state after update: %+v", st)
	}
	// Verifying the same release again is fine (the agent polls).
	if _, err := bx.update(t, b.Dir); err != nil {
		t.Fatal(err)
	}
	// arm64 boxes see their own payloads.
	arm := f.box(release.Config{Arch: "arm64"})
	r, err = arm.update(t, b.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.Payloads[1].Path != "arm64/vmlinuz" {
		t.Fatalf("arm64 payloads %+v", r.Payloads)
	}
}

func TestReasonsHaveWords(t *testing.T) {
	seen := map[string]bool{}
	for r := release.ReasonSignature; r <= release.ReasonUnavailable; r++ {
		if strings.HasPrefix(r.String(), "reason(") || r.Text() == release.Reason(0).Text() || seen[r.String()] {
			t.Fatalf("reason %d: %q %q", int(r), r, r.Text())
		}
		seen[r.String()] = true
		if !errors.Is(&release.Error{Reason: r, What: "x", Detail: "y"}, &release.Error{Reason: r}) {
			t.Fatalf("%v: errors.Is with the sentinel fails", r)
		}
		if errors.Is(&release.Error{Reason: r}, &release.Error{Reason: r + 1}) {
			t.Fatalf("%v matches another reason", r)
		}
	}
	if !errors.Is(fmt.Errorf("agent: %w", &release.Error{Reason: release.ReasonRollback}), release.ErrRollback) {
		t.Fatal("wrapped refusal does not match ErrRollback")
	}
}
