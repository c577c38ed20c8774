// Package control is the narrow channel between anyad's PID 1 and the services it supervises.
//
// PID 1 stays a small loop (mounts, reaping, supervision, shutdown) and runs the product's
// services in a child process of the same binary, so a panic in a service never takes PID 1
// down. The services still need a few things only PID 1 has: the booted slot, the state of
// the data partition, the supervisor's view of the services, the console log, and the power
// to reboot. This package defines that view ([Status], [LogEntry]), the [System] interface the
// web page and API code against, and a tiny JSON-over-HTTP protocol on a unix socket under
// /run ([Handler] on the PID 1 side, [Client] on the services side). In development mode
// (anyad not PID 1) an in-process implementation of [System] takes the place of the socket.
package control
