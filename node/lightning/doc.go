// Package lightning is the box's Lightning node: it joins the network as a gossip peer,
// keeps a validated map of the channel graph in the box's database, and computes payment
// routes from it. It ties together the sub-packages, each with one job:
//
//   - peer: a BOLT 8 connection (lnd's brontide) with the BOLT 1 init, ping/pong, warning
//     and error handling (lnd's lnwire);
//   - connmgr: keeping several peers connected, with back-off;
//   - gossip: BOLT 7 gossip queries and the validation of every announcement and update,
//     with signature checks on all cores;
//   - graph and graphdb: the in-memory graph and its persistence through package storage;
//   - route: single-path and multi-path route finding with a success-probability model.
//
// The node's identity key comes from the box's signer (hsm.NodeKey, any
// keychain.SingleKeyECDH); the private key never reaches this package. A chain backend
// (node/chain), when given, lets gossip confirm channel funding outputs and their value.
//
// Node knows nothing of HTTP or PID 1: the appliance runs it and shows its Status. Opening
// channels and paying through a bundled lnd come later and will use the routes found here.
package lightning
