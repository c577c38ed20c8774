package chain

import (
	"errors"
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/btcjson"
)

var (
	// ErrNodeDown: the node cannot be reached (connection refused or reset, no answer
	// within the timeout). It is transient: the same backend works again once the node is
	// back.
	ErrNodeDown = errors.New("node down")
	// ErrAuth: the node refused the credentials (HTTP 401/403), or the cookie file could
	// not be read.
	ErrAuth = errors.New("authentication failed")
	// ErrTLS: the TLS connection failed, usually a certificate that does not match the
	// node's (btcd regenerates rpc.cert when it is deleted) or TLS against a plain server.
	ErrTLS = errors.New("tls failure")
	// ErrWrongNetwork: the node's genesis block is not the configured network's.
	ErrWrongNetwork = errors.New("wrong network")
	// ErrSyncing: the node is in initial block download or still loading, so its view of
	// the chain is not current.
	ErrSyncing = errors.New("node syncing")
	// ErrNotFound: the block, header, filter or height does not exist on the node.
	ErrNotFound = errors.New("not found")
	// ErrUnsupported: the node lacks the method or index (for example compact filters
	// disabled, or a bitcoind without -blockfilterindex).
	ErrUnsupported = errors.New("unsupported by node")
	// ErrRejected: the node refused a transaction (see RejectError).
	ErrRejected = errors.New("transaction rejected")
	// ErrAlreadyInChain: a broadcast transaction is already confirmed.
	ErrAlreadyInChain = errors.New("transaction already in chain")
	// ErrFeeUnavailable: the backend has no fee estimate (not enough data, as on a fresh
	// regtest chain) or an implausible one.
	ErrFeeUnavailable = errors.New("fee estimate unavailable")
	// ErrClosed: the backend was closed.
	ErrClosed = errors.New("backend closed")
)

// Error is a failed backend operation: Kind is one of the sentinel errors above (or nil when
// no category applies) and Err the underlying cause, for example a *btcjson.RPCError.
type Error struct {
	Op   string // the operation or RPC method, e.g. "getblockhash"
	Host string
	Kind error
	Err  error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("chain: ")
	b.WriteString(e.Op)
	if e.Host != "" {
		b.WriteString(" at ")
		b.WriteString(e.Host)
	}
	if e.Kind != nil {
		b.WriteString(": ")
		b.WriteString(e.Kind.Error())
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap exposes both the category and the cause to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	var errs []error
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// RejectError is a transaction refused by the node, with the node's code and reason.
type RejectError struct {
	Code   btcjson.RPCErrorCode
	Reason string
}

func (e *RejectError) Error() string {
	return fmt.Sprintf("transaction rejected (%d): %s", e.Code, e.Reason)
}

// Is makes a RejectError match ErrRejected, and ErrAlreadyInChain for code -27.
func (e *RejectError) Is(target error) bool {
	return target == ErrRejected || (target == ErrAlreadyInChain && e.Code == btcjson.ErrRPCTxAlreadyInChain)
}
