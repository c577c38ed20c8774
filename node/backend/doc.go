// Package backend is the owner's choice of chain backend, persisted: the owner's own full
// node over RPC (package node/chain) or the built-in P2P light client (package node/p2p).
// The setup page edits Settings, validates them, opens the backend, checks it and saves the
// settings; at start-up the services load them and open the same backend for the wallet.
//
// # Settings
//
// Settings.Kind is KindRPC ("rpc") or KindP2P ("p2p"). For RPC, Settings.RPC holds the
// node's address (host:port or unix:///path), the user and password or a cookie file
// (bitcoind's .cookie), the PEM text of the certificate to trust (btcd's rpc.cert; empty
// means the system's roots) and NoTLS for bitcoind's plain HTTP. For the light client,
// Settings.Peers lists host:port addresses; none means the network's DNS seeds (a network
// without seeds, such as regtest, needs at least one peer: Open refuses otherwise).
//
// Validate checks only the fields of the chosen kind and returns a FieldErrors keyed by the
// fields' JSON names ("kind", "host", "user", "pass", "cookie_file", "cert", "peers"), each
// with a sentence the page shows next to its input: host:port syntax (IPv6 in brackets,
// port 1–65535), a user name with a password, a password or a cookie file (absolute path),
// a certificate that parses as PEM X.509 (unless NoTLS), peers as host:port without
// duplicates (at most 32), and bounded lengths.
//
// # Storage
//
// Load and Save keep the settings in subsystem "backend" of package storage (bucket
// "settings", key "current", JSON), migrating the subsystem first (migration 1 creates the
// bucket). Save refuses settings that do not validate.
//
// # The password
//
// The RPC password is stored as it is: the database lives on the box's own data partition,
// and the node needs the password itself, not a hash of it. It never reaches a log:
// Settings and RPCSettings implement String, GoString and slog.LogValuer with the password
// replaced by "[redacted]", and Redacted returns a copy without it for the page's API.
// Errors never quote it.
//
// # Open and Check
//
// Open(settings, Options{Params, DB, Logger}) returns a chain.Backend: chain.NewRPC (which
// contacts the node only on its first call), or p2p.NewBackend, whose light client starts
// connecting and syncing in the background and keeps its headers and filters in DB; Close
// of the backend stops it. Open needs no network: the settings are checked by Check.
//
// Check(ctx, backend) calls Ready within ctx's deadline (DefaultCheckTimeout, 15 s, when ctx
// has none). A light client is asked again every 250 ms while it has no peer or is catching
// up; an RPC backend is asked once, since its Ready already retries a node that does not
// answer. A failure is a *CheckError whose message is a short sentence for the owner, one
// per category of package chain: ErrNodeDown (the node does not answer at this address /
// the light client has no peer), ErrAuth (credentials refused), ErrTLS (certificate
// mismatch or TLS on one side only), ErrWrongNetwork (the node is on another network than
// the box), ErrSyncing (still catching up, with the block heights), plus a timeout. The
// CheckError still matches the chain errors with errors.Is.
package backend
