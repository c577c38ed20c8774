package fleet

import (
	"context"
	"testing"
	"time"
)

// TestLoadTest runs a small load test: the harness works and nothing fails under concurrency.
// The figure itself comes from `anyactl fleet loadtest` (see the package documentation).
func TestLoadTest(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 400
	}
	res, err := LoadTest(context.Background(), LoadConfig{Devices: 40, Requests: n, Rounds: 2, Duration: time.Minute, Concurrency: 8, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []Phase{res.Enroll, res.Anchor, res.CheckIn} {
		t.Logf("%s", p)
	}
	t.Logf("ratio %.3f (rounds %.3f), %d offered", res.Ratio, res.RoundRatios, res.Offered)
	if res.CheckIn.Requests != n || res.Anchor.Requests != n || len(res.RoundRatios) != 2 || res.Enroll.Requests != 40 || res.Ratio <= 0 || res.Offered == 0 {
		t.Fatalf("result %+v", res)
	}
}
