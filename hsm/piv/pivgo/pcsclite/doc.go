// Package pcsclite is a pure-Go client of pcscd, the PC/SC daemon of pcsc-lite. It speaks the
// daemon's private protocol over its unix socket (/run/pcscd/pcscd.comm, or
// $PCSCLITE_CSOCK_NAME as libpcsclite honours it) instead of linking libpcsclite through cgo,
// so programs that use smart cards can be linked statically (CGO_ENABLED=0).
//
// This package is not part of upstream piv-go: it was added to this patched copy (see NOTICE
// at the root of the module) so that package piv builds without cgo on Linux.
//
// # Wire protocol
//
// The protocol is the one of pcsc-lite's winscard_msg.h / winscard_svc.c, protocol 4:x:
//
//   - Every request is an 8-byte header {uint32 size; uint32 command} followed by a
//     fixed-size C struct of size bytes; the daemon answers with the same struct, its
//     out-fields and rv filled in. SCARD_TRANSMIT is followed by the command APDU, and its
//     answer by the response APDU when rv is SCARD_S_SUCCESS. All integers are in host byte
//     order (the socket never leaves the machine).
//   - Each socket connection carries one context: it starts with CMD_VERSION (the daemon
//     requires an exact major:minor match and answers with its own version, which the client
//     then repeats), then SCARD_ESTABLISH_CONTEXT. pcsc-lite 1.9 speaks 4:4, 1.8.x 4:3.
//   - Readers are listed as libpcsclite does it: CMD_GET_READERS_STATE returns the daemon's
//     array of PCSCLITE_MAX_READERS_CONTEXTS (16) reader state records of 184 bytes each
//     (char name[128]; uint32 eventCounter, readerState; int32 sharing; uint8 atr[33];
//     padding; uint32 atrLength, protocol).
//   - SCARD_BEGIN_TRANSACTION is retried while the daemon answers
//     SCARD_E_SHARING_VIOLATION (another handle holds the lock), as libpcsclite does.
//
// Only the calls piv-go needs are implemented: EstablishContext, ListReaders, Connect,
// BeginTransaction, EndTransaction, Transmit, Disconnect and ReleaseContext (plus ReaderStates,
// for tests and diagnostics). A Context is safe for concurrent use; its calls
// are serialized on its connection.
package pcsclite
