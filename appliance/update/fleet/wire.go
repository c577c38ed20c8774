package fleet

import (
	"errors"
	"fmt"
	"time"
)

// Paths of the device API on the fleet server.
const (
	EnrollPath  = "/v1/device/enroll"
	CheckInPath = "/v1/device/checkin"
)

// Limits of the protocol.
const (
	// MaxBodySize bounds a request or response body of the device API.
	MaxBodySize = 64 << 10
	// MaxErrorLen bounds Report.LastError; the client truncates longer messages.
	MaxErrorLen = 1024
	// MaxFieldLen bounds every other string field of a report or of the hardware info.
	MaxFieldLen = 128
)

// Attestation says where a device's private key is held.
type Attestation string

// The attestation kinds.
const (
	AttestationTPM      Attestation = "tpm"
	AttestationSoftware Attestation = "software"
)

// Valid reports whether a is a known kind.
func (a Attestation) Valid() bool { return a == AttestationTPM || a == AttestationSoftware }

// Hardware describes a box at enrollment.
type Hardware struct {
	Arch     string `json:"arch"`                // GOARCH
	Model    string `json:"model,omitempty"`     // board or DMI product name
	Serial   string `json:"serial,omitempty"`    // board serial number, if the box has one
	CPUs     int    `json:"cpus,omitempty"`      // logical CPUs
	MemoryMB int    `json:"memory_mb,omitempty"` // RAM
	TPM      string `json:"tpm,omitempty"`       // TPM manufacturer and firmware version, if any
}

// EnrollRequest is the body of a POST to EnrollPath.
type EnrollRequest struct {
	Token       string      `json:"token"`
	PublicKey   []byte      `json:"public_key"` // PKIX DER (base64 in JSON)
	Attestation Attestation `json:"attestation"`
	Hardware    Hardware    `json:"hardware"`
	// Channel is the channel the owner chose on the box; empty takes the token's.
	Channel string `json:"channel,omitempty"`
}

// Enrollment is the server's answer to an enrollment.
type Enrollment struct {
	DeviceID    string `json:"device_id"`
	Channel     string `json:"channel"`
	PollSeconds int    `json:"poll_seconds,omitempty"`
}

// Health is a box's own verdict on its state.
type Health string

// The health values. A box reports HealthOK when its health check passes (storage, services,
// signer, node as configured), HealthDegraded when it runs with a problem, HealthFailed when
// its health check fails.
const (
	HealthUnknown  Health = ""
	HealthOK       Health = "ok"
	HealthDegraded Health = "degraded"
	HealthFailed   Health = "failed"
)

// TargetState is where the box's latest update attempt stands. The values are the update
// agent's attempt results.
type TargetState string

// The states of an attempt; Installing, Installed and Trying are in progress.
const (
	TargetInstalling TargetState = "installing"
	TargetInstalled  TargetState = "installed"
	TargetTrying     TargetState = "trying"
	TargetCommitted  TargetState = "committed"
	TargetFailed     TargetState = "failed"      // stopped before the switch
	TargetRefused    TargetState = "refused"     // did not verify
	TargetRolledBack TargetState = "rolled-back" // the new slot failed; back on the old one
)

// Failure reports whether s ends an attempt without the release running.
func (s TargetState) Failure() bool {
	return s == TargetFailed || s == TargetRefused || s == TargetRolledBack
}

// Broken reports whether s says the release itself did not work on the box: it did not
// verify, or its slot failed and the box rolled back. An attempt that stopped before the
// switch (TargetFailed: a power cut, a download that broke off) says nothing about the
// release; the box retries it.
func (s TargetState) Broken() bool { return s == TargetRefused || s == TargetRolledBack }

// Target is the release a box last tried to install and how that went.
type Target struct {
	Version string      `json:"version"`
	Counter uint64      `json:"counter"`
	State   TargetState `json:"state"`
}

// Report is the body of a check-in: the box's state.
type Report struct {
	Version string `json:"version"` // running release's version
	Counter uint64 `json:"counter"` // running release's counter
	Slot    string `json:"slot,omitempty"`
	Arch    string `json:"arch"`
	// Channel is the channel the owner chose; empty keeps the one the server has.
	Channel   string `json:"channel,omitempty"`
	Health    Health `json:"health,omitempty"`
	LastError string `json:"last_error,omitempty"`
	// Target is the latest update attempt, nil if there was none.
	Target *Target `json:"target,omitempty"`
}

// Validate checks the fields' sizes and values. The server refuses a report that fails it.
func (r Report) Validate() error {
	for _, f := range [...]struct{ name, v string }{{"version", r.Version}, {"slot", r.Slot}, {"arch", r.Arch}, {"channel", r.Channel}} {
		if len(f.v) > MaxFieldLen {
			return fmt.Errorf("report: %s longer than %d bytes", f.name, MaxFieldLen)
		}
	}
	if r.Arch == "" {
		return errors.New("report: arch is required")
	}
	if len(r.LastError) > MaxErrorLen {
		return fmt.Errorf("report: last_error longer than %d bytes", MaxErrorLen)
	}
	switch r.Health {
	case HealthUnknown, HealthOK, HealthDegraded, HealthFailed:
	default:
		return fmt.Errorf("report: unknown health %q", r.Health)
	}
	if t := r.Target; t != nil {
		if len(t.Version) > MaxFieldLen {
			return fmt.Errorf("report: target version longer than %d bytes", MaxFieldLen)
		}
		switch t.State {
		case TargetInstalling, TargetInstalled, TargetTrying, TargetCommitted, TargetFailed, TargetRefused, TargetRolledBack:
		default:
			return fmt.Errorf("report: unknown target state %q", t.State)
		}
	}
	return nil
}

// Offer is the release the server wants the box to install. The zero Offer means none.
type Offer struct {
	Release string `json:"release"` // the server's id of the release ("stable-12")
	Channel string `json:"channel"`
	Version string `json:"version"`
	Counter uint64 `json:"counter"`
	// BaseURL is the bundle's base URL, for release.NewHTTP. The client resolves a relative
	// one against the server's URL.
	BaseURL string `json:"base_url"`
	// Size is the bytes of the release's payloads for the box's architecture.
	Size int64 `json:"size,omitempty"`
	// Poll is the server's suggested interval until the next check-in (0: none given). It is
	// set for an empty Offer too.
	Poll time.Duration `json:"-"`
}

// Available reports whether o names a release.
func (o Offer) Available() bool { return o.Release != "" }

// CheckInResponse is the server's answer to a check-in.
type CheckInResponse struct {
	Offer       *Offer `json:"offer"`
	PollSeconds int    `json:"poll_seconds,omitempty"`
}

// Error codes of the device API, in ErrorResponse.Code.
const (
	CodeBadRequest    = "bad_request"
	CodeTooLarge      = "too_large"
	CodeBadToken      = "bad_token" // unknown token
	CodeTokenExpired  = "token_expired"
	CodeTokenUsed     = "token_used" // no uses left
	CodeDuplicateKey  = "duplicate_key"
	CodeUnauthorized  = "unauthorized" // missing or malformed authorization, bad signature
	CodeClockSkew     = "clock_skew"   // timestamp outside the window; ServerTime says the server's
	CodeReplay        = "replay"       // nonce seen before, or timestamp below the replay floor
	CodeUnknownDevice = "unknown_device"
	CodeInternal      = "internal"
)

// ErrorResponse is the body of every non-2xx answer of the device API.
type ErrorResponse struct {
	Code    string `json:"code"`
	Message string `json:"error"`
	// ServerTime is the server's clock (unix ms), with CodeClockSkew.
	ServerTime int64 `json:"server_time,omitempty"`
}

// Error is a refusal by the server. errors.Is matches it against the Err* values by code.
type Error struct {
	Status  int // HTTP status (0 in the Err* values)
	Code    string
	Message string
}

func (e *Error) Error() string {
	if e.Status == 0 {
		return "fleet: " + e.Code
	}
	return fmt.Sprintf("fleet server: %s (%d %s)", e.Message, e.Status, e.Code)
}

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Refusals a caller may want to act on.
var (
	ErrBadToken      = &Error{Code: CodeBadToken}
	ErrTokenExpired  = &Error{Code: CodeTokenExpired}
	ErrTokenUsed     = &Error{Code: CodeTokenUsed}
	ErrDuplicateKey  = &Error{Code: CodeDuplicateKey}  // this key is enrolled already: just check in
	ErrUnknownDevice = &Error{Code: CodeUnknownDevice} // the server forgot or removed the box: enroll again
	ErrUnauthorized  = &Error{Code: CodeUnauthorized}
	ErrClockSkew     = &Error{Code: CodeClockSkew}
	ErrReplay        = &Error{Code: CodeReplay}
)
