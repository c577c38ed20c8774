package pivcard

import (
	"net"
	"syscall"
)

// quickACK asks the kernel to acknowledge received data at once instead of delaying the ACK
// (up to 40 ms). The vpcd driver of some vsmartcard versions sends a message's 2-byte length
// and its body in two writes without TCP_NODELAY: Nagle then holds the body until the length
// is acknowledged, and a delayed ACK would cost 40 ms per APDU. TCP_QUICKACK is not sticky, so
// it is set again before every read.
func quickACK(conn any) {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return
	}
	raw.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}
