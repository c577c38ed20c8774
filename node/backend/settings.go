package backend

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Kind names a kind of chain backend.
type Kind string

const (
	// KindRPC is the owner's own full node (bitcoind or btcd) over JSON-RPC.
	KindRPC Kind = "rpc"
	// KindP2P is the built-in light client (package node/p2p).
	KindP2P Kind = "p2p"
)

// Settings is the owner's choice of chain backend. Only the part of the chosen Kind is
// used (and validated); the other is kept so that switching back restores it.
type Settings struct {
	Kind Kind `json:"kind"`
	// RPC is the owner's node, for KindRPC.
	RPC RPCSettings `json:"rpc"`
	// Peers are the light client's peers (host:port), for KindP2P; none means the
	// network's DNS seeds.
	Peers []string `json:"peers,omitempty"`
}

// RPCSettings reach a full node's JSON-RPC (see chain.Config).
type RPCSettings struct {
	// Host is host:port (or unix:///path).
	Host string `json:"host"`
	// User and Pass are the RPC credentials; when Pass is empty CookieFile is read
	// instead (bitcoind's .cookie).
	User       string `json:"user,omitempty"`
	Pass       string `json:"pass,omitempty"`
	CookieFile string `json:"cookie_file,omitempty"`
	// Cert is the PEM text of the certificate the node's TLS certificate must verify
	// against (btcd's rpc.cert); empty means the system's roots.
	Cert string `json:"cert,omitempty"`
	// NoTLS talks plain HTTP, as bitcoind serves RPC.
	NoTLS bool `json:"no_tls,omitempty"`
}

// Limits of the settings, so that the page cannot store anything unbounded.
const (
	maxHost  = 255
	maxCred  = 1024
	maxPath  = 4096
	maxCert  = 64 << 10
	maxPeers = 32
)

const redacted = "[redacted]"

// Redacted returns a copy without the password, for answers of the page's API.
func (s Settings) Redacted() Settings {
	s.Peers = slices.Clone(s.Peers)
	s.RPC.Pass = ""
	return s
}

// String describes the settings without the password.
func (s Settings) String() string {
	switch s.Kind {
	case KindP2P:
		peers := "dns seeds"
		if len(s.Peers) > 0 {
			peers = strings.Join(s.Peers, ",")
		}
		return fmt.Sprintf("p2p peers=%s", peers)
	case KindRPC:
		return "rpc " + s.RPC.String()
	}
	return fmt.Sprintf("kind=%q rpc{%v} peers=%v", string(s.Kind), s.RPC, s.Peers)
}

// GoString is String, so that %#v does not print the password either.
func (s Settings) GoString() string { return "backend.Settings{" + s.String() + "}" }

// LogValue implements slog.LogValuer without the password.
func (s Settings) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("kind", string(s.Kind))}
	switch s.Kind {
	case KindRPC:
		attrs = append(attrs, slog.Any("rpc", s.RPC))
	case KindP2P:
		attrs = append(attrs, slog.Any("peers", s.Peers))
	}
	return slog.GroupValue(attrs...)
}

func (r RPCSettings) pass() string {
	if r.Pass == "" {
		return ""
	}
	return redacted
}

// String describes the RPC settings without the password.
func (r RPCSettings) String() string {
	return fmt.Sprintf("host=%s user=%s pass=%s cookie_file=%s cert=%dB no_tls=%t",
		r.Host, r.User, r.pass(), r.CookieFile, len(r.Cert), r.NoTLS)
}

// GoString is String, so that %#v does not print the password either.
func (r RPCSettings) GoString() string { return "backend.RPCSettings{" + r.String() + "}" }

// LogValue implements slog.LogValuer without the password.
func (r RPCSettings) LogValue() slog.Value {
	return slog.GroupValue(slog.String("host", r.Host), slog.String("user", r.User),
		slog.String("pass", r.pass()), slog.String("cookie_file", r.CookieFile),
		slog.Int("cert_bytes", len(r.Cert)), slog.Bool("no_tls", r.NoTLS))
}

// FieldErrors maps the JSON name of a field ("kind", "host", "user", "pass", "cookie_file",
// "cert", "peers") to a sentence saying what is wrong with it, for the page to show next
// to the input.
type FieldErrors map[string]string

func (e FieldErrors) Error() string {
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + strings.TrimSuffix(e[k], ".")
	}
	return "backend settings: " + strings.Join(parts, "; ")
}

// Validate checks the settings field by field. It returns nil or a FieldErrors (use
// errors.As). Only the fields of the chosen Kind are checked.
func (s Settings) Validate() error {
	fe := FieldErrors{}
	switch s.Kind {
	case KindRPC:
		s.RPC.validate(fe)
	case KindP2P:
		if msg := validatePeers(s.Peers); msg != "" {
			fe["peers"] = msg
		}
	case "":
		fe["kind"] = "Choose a backend: your own node (rpc) or the built-in light client (p2p)."
	default:
		fe["kind"] = fmt.Sprintf("Unknown backend %q: choose rpc or p2p.", truncate(string(s.Kind), 32))
	}
	if len(fe) == 0 {
		return nil
	}
	return fe
}

func (r RPCSettings) validate(fe FieldErrors) {
	if msg := validateHost(r.Host); msg != "" {
		fe["host"] = msg
	}
	switch {
	case len(r.User) > maxCred:
		fe["user"] = fmt.Sprintf("The user name is longer than %d characters.", maxCred)
	case r.Pass != "" && r.User == "":
		fe["user"] = "Enter the RPC user name that goes with the password."
	}
	switch {
	case len(r.Pass) > maxCred:
		fe["pass"] = fmt.Sprintf("The password is longer than %d characters.", maxCred)
	case r.Pass == "" && r.CookieFile == "":
		fe["pass"] = "Enter the RPC password, or the path of the node's cookie file."
	}
	switch {
	case r.CookieFile == "":
	case len(r.CookieFile) > maxPath:
		fe["cookie_file"] = "The path is too long."
	case !filepath.IsAbs(r.CookieFile):
		fe["cookie_file"] = "Enter the absolute path of the cookie file, for example /data/bitcoin/.cookie."
	}
	if r.Cert != "" && !r.NoTLS {
		if msg := validateCert(r.Cert); msg != "" {
			fe["cert"] = msg
		}
	}
}

func validateHost(host string) string {
	switch {
	case host == "":
		return "Enter the node's RPC address as host:port, for example 192.168.1.20:8332."
	case len(host) > maxHost:
		return fmt.Sprintf("The address is longer than %d characters.", maxHost)
	case strings.HasPrefix(host, "unix://"):
		if !filepath.IsAbs(strings.TrimPrefix(host, "unix://")) {
			return "A unix socket address needs an absolute path: unix:///path/to/socket."
		}
		return ""
	}
	return validateHostPort(host)
}

// validateHostPort checks host:port syntax: a host name or IP address (IPv6 in brackets)
// and a port from 1 to 65535.
func validateHostPort(addr string) string {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("%q is not host:port (IPv6 addresses go in brackets: [::1]:8332).", truncate(addr, 64))
	}
	if h == "" {
		return fmt.Sprintf("%q has no host.", truncate(addr, 64))
	}
	if strings.ContainsAny(h, " \t/\\@?#") {
		return fmt.Sprintf("%q is not a host name or IP address.", truncate(h, 64))
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil || port == 0 {
		return fmt.Sprintf("%q is not a port: use a number from 1 to 65535.", truncate(p, 16))
	}
	return ""
}

func validateCert(text string) string {
	if len(text) > maxCert {
		return fmt.Sprintf("The certificate is larger than %d KiB.", maxCert>>10)
	}
	rest := []byte(text)
	certs := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return "The certificate does not parse: " + err.Error() + "."
		}
		certs++
	}
	if certs == 0 {
		return "Paste the node's certificate in PEM form (-----BEGIN CERTIFICATE----- …), for btcd its rpc.cert."
	}
	return ""
}

func validatePeers(peers []string) string {
	if len(peers) > maxPeers {
		return fmt.Sprintf("At most %d peers.", maxPeers)
	}
	seen := map[string]bool{}
	for i, p := range peers {
		if msg := validateHostPort(p); msg != "" {
			return fmt.Sprintf("Peer %d: %s", i+1, msg)
		}
		if seen[p] {
			return fmt.Sprintf("Peer %d: %s is listed twice.", i+1, p)
		}
		seen[p] = true
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// errNoPeers is the Open error for a light client with neither peers nor DNS seeds.
var errNoPeers = errors.New("no peers and no DNS seeds")
