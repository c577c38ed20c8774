package regtest

import (
	"testing"
	"time"
)

// TestLightningNet brings up alice -> bob -> carol and pays carol from alice through bob,
// which proves funding, channel announcement and routing work in the harness.
func TestLightningNet(t *testing.T) {
	start := time.Now()
	net := StartLightning(t, []string{"alice", "bob", "carol"}, []ChannelSpec{
		{From: 0, To: 1, Capacity: 1_000_000, Push: 100_000},
		{From: 1, To: 2, Capacity: 1_000_000, Push: 100_000},
	})
	t.Logf("network up in %v", time.Since(start))
	alice, carol := net.Nodes[0], net.Nodes[2]
	var inv struct {
		PaymentRequest string `json:"payment_request"`
	}
	carol.LncliJSON(&inv, "addinvoice", "--amt=10000")
	var pay struct {
		Status string `json:"status"`
	}
	alice.LncliJSON(&pay, "payinvoice", "--force", "--json", inv.PaymentRequest)
	if pay.Status != "SUCCEEDED" {
		t.Fatalf("payment %+v", pay)
	}
}
