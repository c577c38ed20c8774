package fleet

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	dev "github.com/anya-edge/anya/appliance/update/fleet"
)

// Token is an enrollment token. Only the SHA-256 of the secret is stored.
type Token struct {
	ID      string    `json:"id"`   // public handle: the first 12 hex digits of Hash
	Hash    string    `json:"hash"` // hex SHA-256 of the secret
	Label   string    `json:"label,omitempty"`
	Channel string    `json:"channel"` // channel of the devices it enrolls (unless they choose)
	Uses    int       `json:"uses"`    // how many enrollments it allows
	Used    int       `json:"used"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// Left is how many enrollments the token still allows.
func (t Token) Left() int { return max(t.Uses-t.Used, 0) }

// Device is an enrolled box.
type Device struct {
	ID          string          `json:"id"`
	PublicKey   []byte          `json:"public_key"` // PKIX DER
	Attestation dev.Attestation `json:"attestation"`
	Hardware    dev.Hardware    `json:"hardware"`
	Channel     string          `json:"channel"`
	TokenID     string          `json:"token_id"`
	Enrolled    time.Time       `json:"enrolled"`

	LastSeen time.Time  `json:"last_seen,omitzero"`
	CheckIns uint64     `json:"check_ins"`
	Report   dev.Report `json:"report"` // the last report
	// Offered is the release last offered ("" none).
	Offered string `json:"offered,omitempty"`
	// MaxTarget is the highest release counter the device reported as a target: it has
	// accepted that release's signed metadata, so it refuses anything older.
	MaxTarget uint64 `json:"max_target,omitempty"`

	// Replay state: the nonces of recent requests, and the floor at or below which a
	// timestamp is refused (the newest timestamp forgotten). See replay.go.
	Seen  []Seen `json:"seen,omitempty"`
	Floor int64  `json:"floor,omitempty"`
}

// Seen is a request the server remembers, against replays.
type Seen struct {
	TS    int64  `json:"t"` // unix ms
	Nonce string `json:"n"` // base64url
}

// Rollout states.
const (
	StateActive = "active"
	StatePaused = "paused"
)

// Release is a release offered in a channel, with its rollout.
type Release struct {
	ID      string           `json:"id"` // "<channel>-<counter>"
	Channel string           `json:"channel"`
	Version string           `json:"version"`
	Counter uint64           `json:"counter"`
	MinFrom uint64           `json:"min_from,omitempty"`
	Archs   []string         `json:"archs"`
	Sizes   map[string]int64 `json:"sizes"` // payload bytes per arch
	// Dir is the bundle's path below the releases base (local directory or CDN URL).
	Dir     string    `json:"dir"`
	Added   time.Time `json:"added"`
	Expires time.Time `json:"expires"` // earliest metadata expiry when it was added

	Rollout Rollout `json:"rollout"`
}

// Rollout is the staged rollout of a release.
type Rollout struct {
	State   string  `json:"state"`   // StateActive or StatePaused
	Percent float64 `json:"percent"` // share of the channel's devices offered the release

	Policy Policy `json:"policy"`
	// Step is the index in Policy.Steps of the current stage (-1 before the first, or when
	// widened by hand past every step).
	Step        int       `json:"step"`
	StepStarted time.Time `json:"step_started"`
	// StepBase is Succeeded when the current step started.
	StepBase int `json:"step_base"`

	PausedAt     time.Time `json:"paused_at,omitzero"`
	PausedReason string    `json:"paused_reason,omitempty"`

	// Unique devices that attempted, succeeded with and failed with the release.
	Attempted int `json:"attempted"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	// The failure window: counts since the last resume, which the pause rule looks at.
	Window       int `json:"window"`
	WinAttempted int `json:"win_attempted"`
	WinFailed    int `json:"win_failed"`

	History []Event `json:"history,omitempty"` // newest last, at most maxHistory
}

// Policy is how a rollout widens and when it pauses.
type Policy struct {
	// Steps are the percentages the rollout widens through by itself (ascending, each in
	// (0, 100]); empty means it widens only by hand.
	Steps []float64 `json:"steps,omitempty"`
	// MinSuccesses devices must succeed during a step, and Soak must pass since it began,
	// before the next step.
	MinSuccesses int      `json:"min_successes"`
	Soak         Duration `json:"soak"`
	// FailureThreshold (0..1): the rollout pauses when more than this share of the devices
	// that attempted the release (since the last resume) failed, once MinAttempts attempted.
	FailureThreshold float64 `json:"failure_threshold"`
	MinAttempts      int     `json:"min_attempts"`
}

// DefaultPolicy widens 5 % → 25 % → 100 % after 5 successes and an hour per step, and pauses
// above 20 % failures once 5 devices attempted.
func DefaultPolicy() Policy {
	return Policy{Steps: []float64{5, 25, 100}, MinSuccesses: 5, Soak: Duration(time.Hour),
		FailureThreshold: 0.2, MinAttempts: 5}
}

// Event is an entry of a rollout's history.
type Event struct {
	At   time.Time `json:"at"`
	What string    `json:"what"`
}

const maxHistory = 50

// Outcome is what one device did with one release.
type Outcome struct {
	Release string       `json:"release"`
	Device  string       `json:"device"`
	State   OutcomeState `json:"state"`
	Window  int          `json:"window"` // failure window in which it was last counted
	At      time.Time    `json:"at"`
	Error   string       `json:"error,omitempty"`
}

// OutcomeState is where a device stands with a release.
type OutcomeState string

// The outcome states: a device that reported the release as its target attempted it; it
// succeeded once it runs the release, committed and healthy; it failed when it reported the
// attempt failed, was refused or rolled back.
const (
	OutcomeAttempted OutcomeState = "attempted"
	OutcomeSucceeded OutcomeState = "succeeded"
	OutcomeFailed    OutcomeState = "failed"
)

// Duration is a time.Duration that JSON-encodes as a Go duration string ("1h30m").
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

var channelRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,31}$`)

// ValidChannel reports whether c is a channel name: a lowercase letter, then up to 31
// lowercase letters or digits ("stable", "beta", "canary2").
func ValidChannel(c string) bool { return channelRE.MatchString(c) }

// ReleaseID is the id of the release with counter n in channel c.
func ReleaseID(c string, n uint64) string { return c + "-" + strconv.FormatUint(n, 10) }

// ParseReleaseID splits a release id into channel and counter.
func ParseReleaseID(id string) (string, uint64, error) {
	i := strings.LastIndexByte(id, '-')
	if i < 0 {
		return "", 0, fmt.Errorf("release id %q: want <channel>-<counter>", id)
	}
	n, err := strconv.ParseUint(id[i+1:], 10, 64)
	if err != nil || n == 0 || !ValidChannel(id[:i]) {
		return "", 0, fmt.Errorf("release id %q: want <channel>-<counter>", id)
	}
	return id[:i], n, nil
}
