package backup

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/anya-edge/anya/storage"
)

// Item is one subsystem of the box's database that backups carry.
type Item struct {
	Subsystem string
	// Only, when set, lists the direct children of the subsystem's bucket that are backed
	// up; Except lists those that are not. With neither, the whole subsystem is.
	Only   []string
	Except []string
	// Deny lists children that must never be in a backup: Write refuses a policy that
	// would export them and Verify and Restore refuse a backup that holds them.
	Deny []string
	// Why says what the item is for and why anything is left out.
	Why string
}

func (it Item) spec() storage.ExportSpec {
	return storage.ExportSpec{Subsystem: it.Subsystem, Only: it.Only, Except: it.Except}
}

// Policy says what backups hold and what this firmware can read back.
type Policy struct {
	// Items is the allow-list: subsystems not listed are never backed up, and a backup
	// holding one is refused.
	Items []Item
	// Known maps each subsystem to the number of schema migrations this firmware has (the
	// length of the list the subsystem gives storage.DB.Migrate); a backup whose data
	// needs a newer reader is refused with ErrNewerSchema. Every item needs an entry.
	Known map[string]int
	// Skip lists items that backups carry but Restore does not write (see DefaultPolicy).
	Skip []string
}

// Subsystem names of the box (their packages are the authority; they are repeated here so
// that this package does not depend on the page's and the updater's code).
const (
	SubsystemWeb     = "web"     // appliance/web
	SubsystemBackend = "backend" // node/backend
	SubsystemWallet  = "wallet"  // node/wallet
	SubsystemHSM     = "hsm"     // hsm
	SubsystemAudit   = "audit"   // hsm/audit
	SubsystemUpdate  = "update"  // appliance/update/agent
)

// Subsystems lists the subsystems DefaultPolicy backs up.
func Subsystems() []string {
	return []string{SubsystemWeb, SubsystemBackend, SubsystemWallet, SubsystemHSM, SubsystemAudit, SubsystemUpdate}
}

// DefaultPolicy is what the box backs up. known is Policy.Known: the schema versions this
// firmware's subsystems know (see KnownSchemas).
//
// Backed up: the page's settings (the box name), the chain backend the owner chose (with
// its RPC credentials: the backup is encrypted to the seed, and whoever has the seed has
// more than those), the wallet's accounting (address indexes, outputs, history, raw
// transactions, the tip; labels when they come), the signer's spend history (the policy's
// limits count it) and audit trail, and the updater's trust state.
//
// Never backed up: the sealed seed blobs (hsm/wallet, bound to the old box's TPM or
// YubiKey; the new box seals the mnemonic again and derives the same descriptors), the
// admin password hash and login sessions of the page (credentials of the old box: the new
// box has its own), rate-limit counters, and the updater's attempt and slot records (they
// describe the old box's disk). Not backed up either, because the network gives them back:
// the light client's headers and filters (p2p).
//
// The updater's trust state is carried but not restored (Skip): replacing it could roll the
// new box's trust back to an older root, so taking the newer of the two is left to the
// updater, which can read it from the Manifest's backup.
func DefaultPolicy(known map[string]int) Policy {
	return Policy{
		Items: []Item{
			{Subsystem: SubsystemWeb, Except: []string{"admin", "sessions", "ratelimit"}, Deny: []string{"admin", "sessions", "ratelimit"},
				Why: "the page's settings; not the admin password hash, sessions or rate-limit counters"},
			{Subsystem: SubsystemBackend, Why: "the owner's chain backend"},
			{Subsystem: SubsystemWallet, Why: "address indexes, outputs, history, transactions, tip, labels"},
			{Subsystem: SubsystemHSM, Only: []string{"spends"}, Deny: []string{"wallet"},
				Why: "the signing policy's spend history; never the wallet record with the sealed seed"},
			{Subsystem: SubsystemAudit, Why: "the hash-chained audit trail"},
			{Subsystem: SubsystemUpdate, Only: []string{"trust"}, Deny: []string{"attempts", "versions"},
				Why: "the updater's trust state; not the old box's update attempts and slots"},
		},
		Known: maps.Clone(known),
		Skip:  []string{SubsystemUpdate},
	}
}

// KnownSchemas returns the stored schema version of each of the subsystems in db: in the
// running box, whose subsystems all migrate their data at start, that is what this firmware
// knows. A subsystem package that exports its migration count is the better source; this is
// the fallback for those that do not (yet). A subsystem never migrated in db is left out.
func KnownSchemas(db *storage.DB, subsystems ...string) (map[string]int, error) {
	known := map[string]int{}
	for _, s := range subsystems {
		v, err := db.SchemaVersion(s)
		if err != nil {
			return nil, fmt.Errorf("known schemas: %w", err)
		}
		if v > 0 {
			known[s] = v
		}
	}
	return known, nil
}

// validate checks the policy itself.
func (p *Policy) validate() error {
	if len(p.Items) == 0 {
		return errors.New("backup policy: no items")
	}
	seen := map[string]bool{}
	for _, it := range p.Items {
		if seen[it.Subsystem] {
			return fmt.Errorf("backup policy: %s listed twice", it.Subsystem)
		}
		seen[it.Subsystem] = true
		if _, ok := p.Known[it.Subsystem]; !ok {
			return fmt.Errorf("backup policy: no known schema version for %s", it.Subsystem)
		}
		spec := it.spec()
		for _, d := range it.Deny {
			if covers(spec, d) {
				return fmt.Errorf("backup policy: %s would back up %s, which is denied", it.Subsystem, d)
			}
		}
	}
	return nil
}

func (p *Policy) item(subsystem string) (Item, bool) {
	i := slices.IndexFunc(p.Items, func(it Item) bool { return it.Subsystem == subsystem })
	if i < 0 {
		return Item{}, false
	}
	return p.Items[i], true
}

func (p *Policy) specs() []storage.ExportSpec {
	out := make([]storage.ExportSpec, len(p.Items))
	for i, it := range p.Items {
		out[i] = it.spec()
	}
	return out
}

// checkContents refuses a backup whose contents this policy does not allow: a subsystem
// not on the allow-list (newer firmware backs up more) or a denied child.
func (p *Policy) checkContents(contents []Content) error {
	for _, c := range contents {
		it, ok := p.item(c.Subsystem)
		if !ok {
			return fmt.Errorf("%w: it holds subsystem %s (schema version %d), which this firmware does not know", ErrNewerSchema, c.Subsystem, c.Version)
		}
		spec := storage.ExportSpec{Subsystem: c.Subsystem, Only: c.Only, Except: c.Except}
		for _, d := range it.Deny {
			if covers(spec, d) {
				return fmt.Errorf("%w: it would restore %s/%s, which a backup must never hold", ErrCorrupted, c.Subsystem, d)
			}
		}
	}
	return nil
}

// covers reports whether spec exports the direct child name.
func covers(spec storage.ExportSpec, name string) bool {
	if len(spec.Only) > 0 {
		return slices.Contains(spec.Only, name)
	}
	return !slices.Contains(spec.Except, name)
}
