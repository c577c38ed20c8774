// Package pid1 is what anyad does when the kernel starts it as the first process.
//
// It stays small on purpose: it mounts the kernel filesystems, loads kernel modules, mounts
// the booted slot's system partition and the data partition, configures the network, reaps
// every zombie, feeds the hardware watchdog, and supervises the product's services, which run
// in a child process of the same binary ("anyad serve"). A panic in a service therefore ends
// that child, not PID 1 (whose death would panic the kernel); the supervisor restarts it with
// back-off. The services reach PID 1 through the control socket (package control).
//
// Shutdown is ordered: on SIGTERM or SIGINT (reboot), SIGUSR2 (power off) or a request on the
// control socket, PID 1 stops the services (SIGTERM, then SIGKILL after a deadline), syncs,
// unmounts /data and /system, and calls reboot(2).
//
// Everything PID 1 and the services print goes to the serial console and into an in-memory
// ring the status page shows.
//
// # Update trials
//
// After an update, the new slot's first boots are trials (its boot entry counts tries; see
// appliance/update/agent). The services decide a trial with their health check and commit
// the slot, or mark it bad and ask PID 1 to reboot into the previous slot. A services
// process that crash-loops before its check runs would leave the box on the broken version
// (boot counting counts boots, and the box does not reboot), so PID 1 gives a trial a
// deadline of its own, TrialDeadline after the kernel started: if the services have not
// written CommittedFile by then, the running slot's entry still counts tries and the other
// slot can boot, PID 1 reboots in order and, once the services stopped, marks the slot bad
// through the update agent (recording why, so the previous version reports it) or, when the
// database does not open, by renaming the entry alone.
package pid1
