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
// Automatic restarts (RestartPolicy) never give up by default: the delay
// doubles with every crash of a streak up to a cap, and a stable run ends the
// streak, as Kubernetes' CrashLoopBackOff does; a process that keeps crashing
// is reported as crash looping (Snapshot.CrashLooping, Event.CrashLoop).
//
// Callers talk to it through methods (Start, Stop, Restart, Close); readers
// take a Snapshot or follow the Events and Logs rings. Every transition emits
// an Event.
//
// An engine inherits the service's environment only as far as Spec.KeepEnv
// allows: EngineEnv keeps PATH, HOME, locale and GPU selection and never a
// token or a GENAILAB_* setting.
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
// SIGKILL. With Spec.TermRepeat the first SIGTERM is repeated after a short
// wait, for an engine that drops a SIGTERM arriving just as it starts.
//
// RunOnce runs a process once, to its end (a program run per job, such as
// sd-cli), with the same rules: no shell, scrubbed environment, own process
// group, parent-death signal from a locked thread, no orphan, the same stop
// sequence when its context ends, and its exit returned as an ExitStatus.
//
// A pid file (pid, start time, executable, boot id) lets ReapStale kill an
// engine left running by a previous instance of the service that died
// without cleaning up, without ever killing an unrelated process that reuses
// the pid.
//
// The package is Linux-only (process groups, parent-death signal, /proc).
package supervisor
