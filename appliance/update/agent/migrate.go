package agent

import (
	"fmt"

	"github.com/anya-edge/anya/storage"
)

// Gate says whether breaking schema migrations may run now; *Agent is one.
type Gate interface {
	MigrationsAllowed() bool
}

// Allow is a Gate that always allows (tools, tests, a box without update slots).
type Allow struct{}

// MigrationsAllowed implements Gate.
func (Allow) MigrationsAllowed() bool { return true }

// Migrate brings a subsystem's schema up to date like storage.DB.Migrate, except that while
// the gate is closed (the running slot is on trial) it stops before the first pending
// Breaking migration: the data then stays readable by the previous firmware, which takes it
// over if the trial fails. It returns how many migrations it held back; the subsystem must
// then work with the older schema, or wait for the gate (Agent.Committed) and call Migrate
// again.
func Migrate(db *storage.DB, gate Gate, subsystem string, ms []storage.Migration) (held int, err error) {
	if gate == nil || gate.MigrationsAllowed() {
		return 0, db.Migrate(subsystem, ms)
	}
	cur, err := db.SchemaVersion(subsystem)
	if err != nil {
		return 0, err
	}
	if cur >= len(ms) {
		return 0, db.Migrate(subsystem, ms) // up to date, or data from newer code: Migrate judges
	}
	stop := len(ms)
	for i := cur; i < len(ms); i++ {
		if ms[i].Breaking {
			stop = i
			break
		}
	}
	if err := db.Migrate(subsystem, ms[:stop]); err != nil {
		return 0, err
	}
	return len(ms) - stop, nil
}

// MustNotBreak checks that none of a subsystem's migrations is Breaking: the rule for the
// "update" subsystem, whose records the previous firmware reads after a fallback.
func MustNotBreak(subsystem string, ms []storage.Migration) error {
	for _, m := range ms {
		if m.Breaking {
			return fmt.Errorf("%s migration %d (%s) is breaking; this subsystem must stay readable by older firmware", subsystem, m.Version, m.Name)
		}
	}
	return nil
}
