package pcsclite

import "fmt"

// Return codes of the PC/SC API (pcsclite.h) that callers commonly need to tell apart.
const (
	Success               uint32 = 0x00000000
	ErrInternal           uint32 = 0x80100001 // SCARD_F_INTERNAL_ERROR
	ErrCancelled          uint32 = 0x80100002 // SCARD_E_CANCELLED
	ErrInvalidHandle      uint32 = 0x80100003 // SCARD_E_INVALID_HANDLE
	ErrInvalidParameter   uint32 = 0x80100004 // SCARD_E_INVALID_PARAMETER
	ErrInsufficientBuffer uint32 = 0x80100008 // SCARD_E_INSUFFICIENT_BUFFER
	ErrUnknownReader      uint32 = 0x80100009 // SCARD_E_UNKNOWN_READER
	ErrTimeout            uint32 = 0x8010000A // SCARD_E_TIMEOUT
	ErrSharingViolation   uint32 = 0x8010000B // SCARD_E_SHARING_VIOLATION
	ErrNoSmartcard        uint32 = 0x8010000C // SCARD_E_NO_SMARTCARD
	ErrProtoMismatch      uint32 = 0x8010000F // SCARD_E_PROTO_MISMATCH
	ErrNotReady           uint32 = 0x80100010 // SCARD_E_NOT_READY
	ErrInvalidValue       uint32 = 0x80100011 // SCARD_E_INVALID_VALUE
	ErrCommError          uint32 = 0x80100013 // SCARD_F_COMM_ERROR
	ErrReaderUnavailable  uint32 = 0x80100017 // SCARD_E_READER_UNAVAILABLE
	ErrNoService          uint32 = 0x8010001D // SCARD_E_NO_SERVICE
	ErrServiceStopped     uint32 = 0x8010001E // SCARD_E_SERVICE_STOPPED
	ErrNoReadersAvailable uint32 = 0x8010002E // SCARD_E_NO_READERS_AVAILABLE
	ErrUnsupportedCard    uint32 = 0x80100065 // SCARD_W_UNSUPPORTED_CARD
	ErrUnresponsiveCard   uint32 = 0x80100066 // SCARD_W_UNRESPONSIVE_CARD
	ErrUnpoweredCard      uint32 = 0x80100067 // SCARD_W_UNPOWERED_CARD
	ErrResetCard          uint32 = 0x80100068 // SCARD_W_RESET_CARD
	ErrRemovedCard        uint32 = 0x80100069 // SCARD_W_REMOVED_CARD
)

var messages = map[uint32]string{
	ErrInternal:           "internal error in the PC/SC daemon",
	ErrCancelled:          "cancelled",
	ErrInvalidHandle:      "invalid handle",
	ErrInvalidParameter:   "invalid parameter",
	ErrInsufficientBuffer: "response buffer too small",
	ErrUnknownReader:      "unknown reader",
	ErrTimeout:            "timeout",
	ErrSharingViolation:   "the card is in use by another connection",
	ErrNoSmartcard:        "no smart card in the reader",
	ErrProtoMismatch:      "protocol mismatch",
	ErrNotReady:           "reader or card not ready",
	ErrInvalidValue:       "invalid value",
	ErrCommError:          "communication error with the reader",
	ErrReaderUnavailable:  "reader unavailable",
	ErrNoService:          "the PC/SC daemon (pcscd) is not running",
	ErrServiceStopped:     "the PC/SC daemon stopped or speaks another protocol",
	ErrNoReadersAvailable: "no smart card readers available",
	ErrUnsupportedCard:    "unsupported card",
	ErrUnresponsiveCard:   "the card does not respond",
	ErrUnpoweredCard:      "the card is not powered",
	ErrResetCard:          "the card was reset",
	ErrRemovedCard:        "the card was removed",
}

// Error is a PC/SC failure: a return code from the daemon, or a local failure to talk to it
// (then Code is ErrNoService or ErrCommError and Err holds the cause).
type Error struct {
	Op   string // the call: "connect", "transmit", ...
	Code uint32 // SCARD_* return code
	Err  error  // underlying I/O error, if any
}

func (e *Error) Error() string {
	msg, ok := messages[e.Code]
	if !ok {
		msg = fmt.Sprintf("pcsc return code 0x%08x", e.Code)
	}
	s := "pcsc " + e.Op + ": " + msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, &Error{Code: X}) match any Error with code X.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Op == "" && t.Err == nil && t.Code == e.Code
}

// Code returns the PC/SC return code carried by err, or Success and false.
func Code(err error) (uint32, bool) {
	for err != nil {
		if e, ok := err.(*Error); ok {
			return e.Code, true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return Success, false
		}
		err = u.Unwrap()
	}
	return Success, false
}

// IsDeviceMissing reports whether err means that there is no daemon, no reader, or no card
// in the reader (anything a user fixes by plugging the token in).
func IsDeviceMissing(err error) bool {
	c, ok := Code(err)
	if !ok {
		return false
	}
	switch c {
	case ErrNoService, ErrServiceStopped, ErrNoReadersAvailable, ErrUnknownReader,
		ErrNoSmartcard, ErrRemovedCard, ErrReaderUnavailable, ErrUnpoweredCard,
		ErrUnresponsiveCard, ErrCommError:
		return true
	}
	return false
}
