package chain

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"

	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/rpcclient"
)

func TestClassify(t *testing.T) {
	refused := &url.Error{Op: "Post", URL: "https://127.0.0.1:1", Err: &net.OpError{Op: "dial", Net: "tcp",
		Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	for _, tc := range []struct {
		name string
		err  error
		want error // nil: no category
	}{
		{"connection refused", refused, ErrNodeDown},
		{"reset", fmt.Errorf("post: %w", syscall.ECONNRESET), ErrNodeDown},
		{"eof", fmt.Errorf("read: %w", io.EOF), ErrNodeDown},
		{"rpcclient gave up", errors.New("invalid http POST response (nil), method: getblockcount, id: 1, last error=dial tcp: connection refused"), ErrNodeDown},
		{"btcd 401", errors.New(`status code: 401, response: "401 Unauthorized.\n"`), ErrAuth},
		{"bitcoind 401", errors.New(`status code: 401, response: ""`), ErrAuth},
		{"bitcoind 403", errors.New(`status code: 403, response: ""`), ErrAuth},
		{"bitcoind busy", errors.New(`status code: 503, response: "Work queue depth exceeded"`), ErrNodeDown},
		{"http to https", errors.New(`status code: 400, response: "Client sent an HTTP request to an HTTPS server.\n"`), ErrTLS},
		{"other http status", errors.New(`status code: 404, response: "nope"`), nil},
		{"unknown CA", &url.Error{Op: "Post", Err: x509.UnknownAuthorityError{}}, ErrTLS},
		{"cookie missing", &os.PathError{Op: "stat", Path: "/x/.cookie", Err: os.ErrNotExist}, ErrAuth},
		{"cookie malformed", errors.New("malformed cookie file"), ErrAuth},
		{"shutdown", rpcclient.ErrClientShutdown, ErrClosed},
		{"warmup", &btcjson.RPCError{Code: btcjson.ErrRPCInWarmup, Message: "Loading block index..."}, ErrSyncing},
		{"method not found", &btcjson.RPCError{Code: btcjson.ErrRPCMethodNotFound.Code, Message: "Method not found"}, ErrUnsupported},
		{"btcd block not found", &btcjson.RPCError{Code: btcjson.ErrRPCBlockNotFound, Message: "Block not found"}, ErrNotFound},
		{"btcd height out of range", &btcjson.RPCError{Code: btcjson.ErrRPCOutOfRange, Message: "Block number out of range"}, ErrNotFound},
		{"bitcoind height out of range", &btcjson.RPCError{Code: btcjson.ErrRPCInvalidParameter, Message: "Block height out of range"}, ErrNotFound},
		{"btcd no cf index", &btcjson.RPCError{Code: btcjson.ErrRPCNoCFIndex, Message: "The CF index must be enabled for this command"}, ErrUnsupported},
		{"bitcoind no filter index", &btcjson.RPCError{Code: btcjson.ErrRPCMisc, Message: "Index is not enabled for filtertype basic"}, ErrUnsupported},
		{"decode failed", &btcjson.RPCError{Code: btcjson.ErrRPCDeserialization, Message: "TX decode failed"}, ErrRejected},
		{"verify", &btcjson.RPCError{Code: btcjson.ErrRPCTxError, Message: "TX rejected: orphan"}, ErrRejected},
		{"policy", &btcjson.RPCError{Code: btcjson.ErrRPCTxRejected, Message: "min relay fee not met"}, ErrRejected},
		{"in chain", &btcjson.RPCError{Code: btcjson.ErrRPCTxAlreadyInChain, Message: "already in chain"}, ErrRejected},
		{"other rpc error", &btcjson.RPCError{Code: btcjson.ErrRPCInternal.Code, Message: "boom"}, nil},
		{"plain error", errors.New("something else"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := classify("op", "host:1", tc.err)
			if !errors.Is(err, tc.err) {
				t.Errorf("cause lost: %v", err)
			}
			for _, kind := range []error{ErrNodeDown, ErrAuth, ErrTLS, ErrWrongNetwork, ErrSyncing, ErrNotFound,
				ErrUnsupported, ErrRejected, ErrClosed} {
				if got := errors.Is(err, kind); got != (kind == tc.want) {
					t.Errorf("errors.Is(%v, %v) = %v", err, kind, got)
				}
			}
			var rpcErr *btcjson.RPCError
			if errors.As(tc.err, &rpcErr) && !errors.As(err, &rpcErr) {
				t.Errorf("RPCError not reachable through %v", err)
			}
		})
	}
	if classify("op", "", nil) != nil {
		t.Error("classify(nil) != nil")
	}
}

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&Error{Kind: ErrNodeDown}, true},
		{&Error{Kind: ErrSyncing}, true},
		{&Error{Kind: ErrAuth}, false},
		{&Error{Kind: ErrWrongNetwork}, false},
		{&Error{Kind: ErrTLS}, false},
		{&Error{Kind: ErrRejected}, false},
		{errors.New("x"), false},
	} {
		if got := retryable(tc.err); got != tc.want {
			t.Errorf("retryable(%v) = %v", tc.err, got)
		}
	}
}

func TestRejectError(t *testing.T) {
	inChain := &Error{Op: "sendrawtransaction", Kind: ErrRejected, Err: &RejectError{Code: btcjson.ErrRPCTxAlreadyInChain, Reason: "already"}}
	if !errors.Is(inChain, ErrAlreadyInChain) || !errors.Is(inChain, ErrRejected) {
		t.Errorf("%v does not match ErrAlreadyInChain and ErrRejected", inChain)
	}
	policy := &Error{Op: "sendrawtransaction", Kind: ErrRejected, Err: &RejectError{Code: btcjson.ErrRPCTxRejected, Reason: "fee"}}
	if errors.Is(policy, ErrAlreadyInChain) {
		t.Errorf("%v matches ErrAlreadyInChain", policy)
	}
	var rej *RejectError
	if !errors.As(policy, &rej) || rej.Reason != "fee" {
		t.Errorf("RejectError not reachable: %v", policy)
	}
	if got, want := policy.Error(), "chain: sendrawtransaction: transaction rejected: transaction rejected (-26): fee"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestHTTPStatus(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		code int
		ok   bool
	}{
		{`status code: 401, response: "x"`, 401, true},
		{`wrapped: status code: 503, response: ""`, 503, true},
		{`status code: , response`, 0, false},
		{`status code: 99999999999999999999`, 0, false},
		{`no status`, 0, false},
	} {
		code, ok := httpStatus(errors.New(tc.msg))
		if code != tc.code || ok != tc.ok {
			t.Errorf("httpStatus(%q) = %d, %v", tc.msg, code, ok)
		}
	}
}

func FuzzHTTPStatus(f *testing.F) {
	f.Add(`status code: 401, response: "401 Unauthorized.\n"`)
	f.Add(`status code: `)
	f.Fuzz(func(t *testing.T, msg string) {
		err := errors.New(msg)
		code, ok := httpStatus(err)
		if ok && code < 0 {
			t.Fatalf("negative status %d", code)
		}
		_ = classify("op", "h", err)
	})
}
