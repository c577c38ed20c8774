package release

import (
	"errors"
	"fmt"
)

// Reason says why a release was refused, in terms the owner's page can put in words.
type Reason int

// The reasons for refusing a release. The zero Reason is not used.
const (
	// ReasonSignature: metadata is not signed by enough of the keys the trusted root names
	// (a bad signature, a signature by a key that is not trusted, or fewer than the threshold).
	ReasonSignature Reason = iota + 1
	// ReasonExpired: root, snapshot or targets metadata is past its expiry date (judged by the
	// later of the box's clock and its last-known-good time).
	ReasonExpired
	// ReasonFreeze: the timestamp metadata (the freshness proof) has expired: the source serves
	// stale metadata, so it may be hiding newer releases.
	ReasonFreeze
	// ReasonRollback: metadata or release older than what the box has installed or already
	// seen (a lower metadata version or release counter, or a replayed old root).
	ReasonRollback
	// ReasonMixAndMatch: the snapshot does not match the timestamp, or the targets metadata
	// does not match the snapshot (files from different releases put together).
	ReasonMixAndMatch
	// ReasonArch: the release has no payloads for this box's architecture.
	ReasonArch
	// ReasonMinVersion: the installed release is older than the oldest one this release may
	// update from; an intermediate release must be installed first.
	ReasonMinVersion
	// ReasonPayloadMismatch: a payload's bytes do not have the signed length or hash.
	ReasonPayloadMismatch
	// ReasonPayloadUnknown: a payload the box needs is missing from the release or the
	// source, or the release has a payload this firmware does not know how to install.
	ReasonPayloadUnknown
	// ReasonMalformed: metadata or the bundle file cannot be parsed or breaks the format.
	ReasonMalformed
	// ReasonUnavailable: the source could not be read (network, disk); not a verdict on the
	// release, the update can be retried.
	ReasonUnavailable
)

// String returns a short stable code for the reason ("rollback", "signature", ...), fit for
// logs, JSON and fleet reports.
func (r Reason) String() string {
	switch r {
	case ReasonSignature:
		return "signature"
	case ReasonExpired:
		return "expired"
	case ReasonFreeze:
		return "freeze"
	case ReasonRollback:
		return "rollback"
	case ReasonMixAndMatch:
		return "mix-and-match"
	case ReasonArch:
		return "architecture"
	case ReasonMinVersion:
		return "min-version"
	case ReasonPayloadMismatch:
		return "payload-mismatch"
	case ReasonPayloadUnknown:
		return "payload-unknown"
	case ReasonMalformed:
		return "malformed"
	case ReasonUnavailable:
		return "unavailable"
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// Text says in plain words what the reason means for the owner.
func (r Reason) Text() string {
	switch r {
	case ReasonSignature:
		return "The update is not signed by the vendor's keys that this box trusts."
	case ReasonExpired:
		return "The update's signatures have expired (or this box's clock is wrong)."
	case ReasonFreeze:
		return "The update source offers only stale information, so newer updates may be held back."
	case ReasonRollback:
		return "The update is older than what this box already has or has already seen."
	case ReasonMixAndMatch:
		return "The update's files do not belong together (parts of different releases)."
	case ReasonArch:
		return "The update is not made for this box's hardware."
	case ReasonMinVersion:
		return "This box's firmware is too old for this update; an intermediate update is needed first."
	case ReasonPayloadMismatch:
		return "A file of the update is damaged or was altered."
	case ReasonPayloadUnknown:
		return "The update is incomplete, or contains a part this firmware cannot install."
	case ReasonMalformed:
		return "The update is not a valid update bundle."
	case ReasonUnavailable:
		return "The update source could not be read; try again later."
	}
	return "The update was refused."
}

// Sentinels for errors.Is: errors.Is(err, ErrRollback) holds for every *Error whose Reason is
// ReasonRollback.
var (
	ErrSignature       = &Error{Reason: ReasonSignature}
	ErrExpired         = &Error{Reason: ReasonExpired}
	ErrFreeze          = &Error{Reason: ReasonFreeze}
	ErrRollback        = &Error{Reason: ReasonRollback}
	ErrMixAndMatch     = &Error{Reason: ReasonMixAndMatch}
	ErrArch            = &Error{Reason: ReasonArch}
	ErrMinVersion      = &Error{Reason: ReasonMinVersion}
	ErrPayloadMismatch = &Error{Reason: ReasonPayloadMismatch}
	ErrPayloadUnknown  = &Error{Reason: ReasonPayloadUnknown}
	ErrMalformed       = &Error{Reason: ReasonMalformed}
	ErrUnavailable     = &Error{Reason: ReasonUnavailable}
)

// Error is a refusal of a release (or a failure to read its source). Every error Update,
// Open and the payload readers return for a reason other than a cancelled context or a failing
// Store is an *Error.
type Error struct {
	Reason Reason
	// What names the file or role concerned: "root", "timestamp", "snapshot", "targets", a
	// payload's path, or a source file's name.
	What string
	// Detail says what exactly did not match, for logs and the page's "details" line.
	Detail string
	// Err is the underlying error (from go-tuf, the source, or the parser), if any.
	Err error
}

func (e *Error) Error() string {
	s := "release refused (" + e.Reason.String() + ")"
	if e.Reason == ReasonUnavailable {
		s = "release source unavailable"
	}
	if e.What != "" {
		s += ": " + e.What
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same Reason and no further details, which
// makes the Err* sentinels work with errors.Is.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason == e.Reason && t.What == "" && t.Detail == "" && t.Err == nil
}

// ReasonOf returns the Reason of the first *Error in err's chain, or 0 if there is none.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return 0
}

func refuse(r Reason, what, format string, args ...any) *Error {
	return &Error{Reason: r, What: what, Detail: fmt.Sprintf(format, args...)}
}
