package lightning_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anya-edge/anya/node/lightning"
	"github.com/anya-edge/anya/node/lightning/route"
	"github.com/btcsuite/btcd/chaincfg"
)

func TestQueryRoute(t *testing.T) {
	set := genSet(t)
	box, _ := newBox(t, filepath.Join(t.TempDir(), "anya.db"), &chaincfg.RegressionNetParams)
	remote, _ := servePeer(t, set, nil)
	if err := box.AddPeer(context.Background(), fmt.Sprintf("%x@%s", remote.PubKey().SerializeCompressed(), remote.Addr())); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the graph", func() bool { return box.Status().Graph.Policies == 80 })
	a, b := fmt.Sprintf("%x", set.Channels[0].NodeID1), fmt.Sprintf("%x", set.Channels[len(set.Channels)-1].NodeID2)
	tests := []struct {
		name    string
		q       lightning.RouteQuery
		wantErr error
	}{
		{"single", lightning.RouteQuery{Source: a, Target: b, AmountSat: 1000}, nil},
		{"mpp", lightning.RouteQuery{Source: a, Target: b, AmountSat: 5000, MPP: true}, nil},
		{"bad source", lightning.RouteQuery{Source: "zz", Target: b, AmountSat: 1000}, lightning.ErrBadQuery},
		{"zero amount", lightning.RouteQuery{Source: a, Target: b}, lightning.ErrBadQuery},
		{"same node", lightning.RouteQuery{Source: a, Target: a, AmountSat: 1}, lightning.ErrBadQuery},
		{"unknown target", lightning.RouteQuery{Source: a, Target: "02" + strings.Repeat("11", 32), AmountSat: 1}, route.ErrNoRoute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ans, err := box.QueryRoute(tt.q)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("%+v, %v; want %v", ans, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ans.AmountMsat != tt.q.AmountSat*1000 || len(ans.BuildRoute) != len(ans.Parts) || !strings.Contains(ans.BuildRoute[0], "--hops=") {
				t.Fatalf("answer %+v", ans)
			}
			last := ans.Parts[0].Hops[len(ans.Parts[0].Hops)-1]
			if last.PubKey.String() != b {
				t.Fatalf("route ends at %s, not %s", last.PubKey, b)
			}
		})
	}
}
