// Package neutrinobench compares the box's light client (node/p2p) with lightninglabs/neutrino,
// the BIP157/158 client lnd uses, syncing headers, filter headers and every filter of the same
// regtest chain from the same btcd in the same run. It is a separate module so that neutrino
// and its dependencies never enter the firmware's go.mod.
//
// The benchmark is TestNeutrinoBench (run it with `make bench-neutrino` at the repository root,
// or `go test -run TestNeutrinoBench -v . -args -blocks 4000 -runs 3` here); see README.md for
// what each client does and how the figures are taken. clients.go holds the two client
// drivers, each run in a fresh process (the test binary re-executed with ChildEnv set).
package neutrinobench
