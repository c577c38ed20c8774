// Package peer is one Lightning peer connection of the box: the BOLT 8 transport, the BOLT 1
// init exchange, ping/pong keep-alive and the handling of warning and error messages. What
// the box does with the other messages (gossip) is left to the caller, which reads them with
// Recv and answers with Send.
//
// Dependencies:
//   - lnd's brontide is the reference BOLT 8 (Noise_XK) implementation that lnd itself runs
//     in production; writing another Noise handshake would only add risk.
//   - lnd's lnwire encodes and decodes every BOLT 1/7 message exactly as lnd does, so the
//     box and its lnd peers agree byte for byte. Importing these two packages does not pull
//     lnd's node (RPC, wallet, database) and builds without cgo.
//   - The node key is a keychain.SingleKeyECDH (lnd's interface, implemented by
//     hsm.NodeKey), so the private key stays in the box's signer.
//
// # Features
//
// The box announces data-loss-protect as required (bit 0: lnd disconnects peers that do not)
// and gossip queries as optional (bit 7, so that peers run a gossip syncer with it). A peer
// whose init requires a feature that lnwire does not know is refused, as BOLT 1 asks.
//
// # Errors
//
// A warning is logged and the connection kept. An error message closes the connection: the
// box has no channels, so every error (channel-specific or not) ends the exchange with that
// peer. Unknown message types are ignored when odd and close the connection when even.
package peer
