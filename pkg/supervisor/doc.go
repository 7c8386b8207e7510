// Package supervisor runs one engine process (llama-server, sd-server, ...)
// and keeps it in a known state. It is engine-agnostic: the command line, the
// readiness probe, the log-line parser and the output consumers are injected
// through a Spec.
//
// A Supervisor is a small state machine owned by one goroutine:
//
//	stopped ──Start──▶ starting ──ready──▶ running ──Stop──▶ stopping ──exit──▶ stopped
//	                      │                   │
//	                      └──exit/timeout─────┴──exit──▶ crashed ──(auto-restart)──▶ starting
//
// Callers talk to it through methods (Start, Stop, Restart, Close); readers
// take a Snapshot or follow the Events and Logs rings. Every transition emits
// an Event.
//
// Processes are started without a shell, in their own process group, with
// SIGKILL as the parent-death signal. Linux delivers the parent-death signal
// when the thread that forked the child exits, not the process, so the
// goroutine that starts a process locks its OS thread and keeps it locked
// (blocked in wait) for the child's whole life; no other goroutine can end
// that thread early. When the process ends, whatever else is left in its
// process group is killed before the process is reaped, so no orphan outlives
// its engine. Stop sends SIGTERM to the group, waits, sends a second SIGTERM
// (llama-server ignores one while a request is in flight), waits, then sends
// SIGKILL.
//
// A pid file (pid, start time, executable, boot id) lets ReapStale kill an
// engine left running by a previous instance of the service that died
// without cleaning up, without ever killing an unrelated process that reuses
// the pid.
//
// The package is Linux-only (process groups, parent-death signal, /proc).
package supervisor
