// Package supervisor keeps the product's services running.
//
// Each service is a process (in anyad, a child process of the same binary). The supervisor
// starts it, and when it exits, for any reason including a panic, starts it again after a
// back-off that doubles from Backoff.Min up to Backoff.Max and resets once the service has
// stayed up for Backoff.Reset. On shutdown it sends SIGTERM to every service, waits up to a
// deadline, then sends SIGKILL. Processes are started through a [Starter], which in PID 1 is
// the reaper (the only code allowed to wait for children) and elsewhere [ExecStarter].
package supervisor
