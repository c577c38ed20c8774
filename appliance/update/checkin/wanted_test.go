package checkin

import (
	"testing"

	"github.com/anya-edge/anya/appliance/update/agent"
	"github.com/anya-edge/anya/appliance/update/fleet"
)

func TestWanted(t *testing.T) {
	offer := fleet.Offer{Release: "stable-3", Version: "1.3.0", Counter: 3, BaseURL: "http://f/releases/stable-3/"}
	running := agent.Status{Version: "1.2.0", Counter: 2}
	with := func(last *agent.Attempt) agent.Status { s := running; s.Last = last; return s }
	auto := Settings{Auto: true}
	for _, c := range []struct {
		name string
		o    fleet.Offer
		st   agent.Status
		s    Settings
		want bool
	}{
		{"newer release", offer, running, auto, true},
		{"nothing offered", fleet.Offer{}, running, auto, false},
		{"automatic installs off", offer, running, Settings{}, false},
		{"same release", fleet.Offer{Release: "s", Version: "1.2.0", Counter: 2}, running, auto, false},
		{"older release", fleet.Offer{Release: "s", Version: "1.1.0", Counter: 1}, running, auto, false},
		{"rolled back before", offer, with(&agent.Attempt{Counter: 3, Result: agent.RolledBack}), auto, false},
		{"interrupted before the switch: retried", offer, with(&agent.Attempt{Counter: 3, Result: agent.Failed, Code: "interrupted"}), auto, true},
		{"refused before", offer, with(&agent.Attempt{Counter: 3, Result: agent.Refused}), auto, false},
		{"installed, waiting for the restart", offer, with(&agent.Attempt{Counter: 3, Result: agent.Installed}), auto, false},
		{"an older release failed", offer, with(&agent.Attempt{Counter: 2, Result: agent.RolledBack}), auto, true},
		{"the last one committed", offer, with(&agent.Attempt{Counter: 2, Result: agent.Committed}), auto, true},
	} {
		if got, why := wanted(c.o, c.st, c.s); got != c.want || (!got && why == "") {
			t.Errorf("%s: wanted = %v (%q), want %v", c.name, got, why, c.want)
		}
	}
}
