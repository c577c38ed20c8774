// Package reaper is PID 1's single owner of wait(2).
//
// A process that is PID 1 (or a child subreaper) inherits every orphan on the system and must
// reap them, or they stay zombies forever. Reaping with wait4(-1) races with any other code
// that waits for a specific child (os/exec's Cmd.Wait, for one): whichever call comes first
// takes the exit status and the other gets ECHILD. So in anyad exactly one loop calls
// wait4(-1) on every SIGCHLD, and hands each exit status to whoever started that child through
// [Reaper.Start]; statuses of processes nobody started (orphans) are logged and dropped.
//
// Start holds the reaper's lock across fork and registration, and the loop takes the same
// lock to deliver, so a child that exits before Start returns is still delivered to its owner.
// Nothing else in the process may call Wait on a child while a Reaper runs.
package reaper
