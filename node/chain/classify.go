package chain

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"

	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/rpcclient"
)

// classify sorts an error returned by rpcclient into one of the package's categories and
// returns it as an *Error (nil for nil).
func classify(op, host string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Op: op, Host: host, Kind: kindOf(err), Err: err}
}

// kindOf is the sentinel category of an rpcclient error, or nil.
func kindOf(err error) error {
	if errors.Is(err, rpcclient.ErrClientShutdown) {
		return ErrClosed
	}
	var rpcErr *btcjson.RPCError
	if errors.As(err, &rpcErr) {
		return rpcKind(rpcErr)
	}
	if isTLSError(err) {
		return ErrTLS
	}
	if code, ok := httpStatus(err); ok {
		switch {
		case code == 401 || code == 403:
			return ErrAuth
		case code == 503: // bitcoind: work queue full, or shutting down
			return ErrNodeDown
		case code == 400 && strings.Contains(err.Error(), "HTTPS"):
			return ErrTLS // plain HTTP sent to a TLS server
		}
		return nil
	}
	if isCookieError(err) {
		return ErrAuth
	}
	if isNetworkError(err) {
		return ErrNodeDown
	}
	return nil
}

// rpcKind categorises a JSON-RPC error object from bitcoind or btcd.
func rpcKind(e *btcjson.RPCError) error {
	msg := strings.ToLower(e.Message)
	switch e.Code {
	case btcjson.ErrRPCInWarmup:
		return ErrSyncing
	case btcjson.ErrRPCMethodNotFound.Code:
		return ErrUnsupported
	case btcjson.ErrRPCDeserialization, btcjson.ErrRPCTxError, btcjson.ErrRPCTxRejected,
		btcjson.ErrRPCTxAlreadyInChain:
		return ErrRejected
	}
	switch {
	case strings.Contains(msg, "index must be enabled"), strings.Contains(msg, "index is not enabled"),
		strings.Contains(msg, "index not enabled"):
		return ErrUnsupported
	case strings.Contains(msg, "not found"), strings.Contains(msg, "out of range"):
		return ErrNotFound
	}
	return nil
}

// httpStatus extracts the status code of a non-JSON HTTP answer, which rpcclient reports as
// "status code: 401, response: ...".
func httpStatus(err error) (int, bool) {
	msg := err.Error()
	i := strings.Index(msg, "status code: ")
	if i < 0 {
		return 0, false
	}
	rest := msg[i+len("status code: "):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	code, convErr := strconv.Atoi(rest[:j])
	if convErr != nil {
		return 0, false
	}
	return code, true
}

func isTLSError(err error) bool {
	var (
		unknownCA   x509.UnknownAuthorityError
		hostname    x509.HostnameError
		invalid     x509.CertificateInvalidError
		verify      *tls.CertificateVerificationError
		recordHdr   tls.RecordHeaderError
		alert       tls.AlertError
		constraints x509.ConstraintViolationError
	)
	return errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verify) || errors.As(err, &recordHdr) || errors.As(err, &alert) ||
		errors.As(err, &constraints) ||
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

// isCookieError recognises rpcclient's failures to read the cookie file.
func isCookieError(err error) bool {
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		return true
	}
	return strings.Contains(err.Error(), "cookie")
}

func isNetworkError(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var (
		netErr net.Error
		opErr  *net.OpError
		urlErr *url.Error
	)
	return errors.As(err, &netErr) || errors.As(err, &opErr) || errors.As(err, &urlErr) ||
		strings.Contains(err.Error(), "connection refused") ||
		strings.Contains(err.Error(), "invalid http POST response")
}

// retryable reports whether an idempotent call that failed with err may succeed if repeated.
func retryable(err error) bool {
	return errors.Is(err, ErrNodeDown) || errors.Is(err, ErrSyncing)
}
