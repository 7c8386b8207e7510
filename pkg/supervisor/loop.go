package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/genailab/genailab/pkg/ports"
)

// Requests from the public methods to the loop.
type (
	startReq struct {
		spec *Spec
		w    *waiter
	}
	restartReq struct{ w *waiter }
	stopReq    struct{ reply chan error }
	abortReq   struct {
		id    uint64
		cause error
	}
)

// waiter is a Start or Restart caller waiting for readiness.
type waiter struct {
	id    uint64
	reply chan error // capacity 1; replied exactly once
}

func (w *waiter) answer(err error) {
	if w != nil {
		w.reply <- err
	}
}

type healthMsg struct {
	gen uint64
	ok  bool
	err error
}

var (
	errStopRequested    = errors.New("stop requested")
	errRestartRequested = errors.New("restart requested")
)

// loop is the state machine. Only its goroutine touches its fields.
type loop struct {
	s     *Supervisor
	state State
	spec  *Spec // last started spec, with defaults
	proc  *proc // current process; nil when none
	gen   uint64

	waiter      *waiter // Start/Restart waiting for proc to be ready
	pending     *waiter // Restart waiting for proc to be gone
	stopWaiters []chan error
	failing     *StartError // a failed start whose process is being killed
	auto        bool        // proc is an automatic restart
	attempt     int         // its attempt number
	stopStage   int
	readyCancel context.CancelFunc

	healthCancel context.CancelFunc
	healthBusy   bool

	stopAlarm, readyAlarm, restartAlarm, healthAlarm, stableAlarm alarm

	budget  restartBudget
	closing bool
	snap    Snapshot
}

func (l *loop) run(ctx context.Context) {
	defer l.finish()
	ctxDone := ctx.Done()
	for !l.closing || l.proc != nil {
		select {
		case <-ctxDone:
			ctxDone = nil
			l.close()
		case req := <-l.s.reqs:
			l.handle(req)
		case m := <-l.s.exits:
			l.onExit(m)
		case gen := <-l.s.readys:
			l.onReady(gen)
		case m := <-l.s.healths:
			l.onHealth(m)
		case <-l.stopAlarm.c():
			l.stopAlarm.fired()
			l.escalate()
		case <-l.readyAlarm.c():
			l.readyAlarm.fired()
			l.onReadyTimeout()
		case <-l.restartAlarm.c():
			l.restartAlarm.fired()
			l.onRestartDue()
		case <-l.healthAlarm.c():
			l.healthAlarm.fired()
			l.onHealthDue()
		case <-l.stableAlarm.c():
			l.stableAlarm.fired()
			l.onStable()
		}
		l.publish()
	}
}

func (l *loop) handle(req any) {
	switch r := req.(type) {
	case startReq:
		l.onStart(r)
	case restartReq:
		l.onRestart(r)
	case stopReq:
		l.onStop(r)
	case abortReq:
		l.onAbort(r)
	}
}

func (l *loop) name() string { return l.s.cfg.Name }

func (l *loop) onStart(r startReq) {
	if l.closing {
		r.w.answer(ErrClosed)
		return
	}
	switch l.state {
	case StateStarting, StateRunning, StateStopping:
		r.w.answer(fmt.Errorf("start %s: %w (state %s)", l.name(), ErrAlreadyRunning, l.state))
		return
	}
	l.begin(r.spec, r.w, false)
}

func (l *loop) onRestart(r restartReq) {
	switch {
	case l.closing:
		r.w.answer(ErrClosed)
		return
	case l.spec == nil:
		r.w.answer(fmt.Errorf("restart %s: %w: never started", l.name(), ErrNotRunning))
		return
	}
	switch l.state {
	case StateStopped, StateCrashed:
		l.begin(l.spec, r.w, false)
	case StateStarting:
		l.setPending(r.w)
		l.failStart(&StartError{Reason: ErrStartAborted, Cause: errRestartRequested})
	case StateRunning:
		l.setPending(r.w)
		l.beginStop()
	case StateStopping:
		l.setPending(r.w)
	}
}

func (l *loop) setPending(w *waiter) {
	if l.pending != nil {
		l.pending.answer(fmt.Errorf("restart %s: %w: superseded by another restart", l.name(), ErrStartAborted))
	}
	l.pending = w
}

func (l *loop) onStop(r stopReq) {
	if l.pending != nil {
		l.pending.answer(&StartError{Name: l.name(), Reason: ErrStartAborted, Cause: errStopRequested})
		l.pending = nil
	}
	switch l.state {
	case StateStopped:
		r.reply <- nil
	case StateCrashed:
		if l.restartAlarm.armed {
			l.restartAlarm.stop()
			l.snap.NextRestartAt = time.Time{}
		}
		l.state = StateStopped
		l.emit(Event{Kind: EventStopped})
		r.reply <- nil
	case StateStarting:
		l.stopWaiters = append(l.stopWaiters, r.reply)
		l.failing = &StartError{Reason: ErrStartAborted, Cause: errStopRequested}
		l.beginStop()
	case StateRunning:
		l.stopWaiters = append(l.stopWaiters, r.reply)
		l.beginStop()
	case StateStopping:
		l.stopWaiters = append(l.stopWaiters, r.reply)
	}
}

func (l *loop) onAbort(r abortReq) {
	if l.pending != nil && l.pending.id == r.id {
		l.pending.answer(&StartError{Name: l.name(), Reason: ErrStartAborted, Cause: r.cause})
		l.pending = nil
		return
	}
	if l.waiter != nil && l.waiter.id == r.id && l.state == StateStarting && l.failing == nil {
		l.failStart(&StartError{Reason: ErrStartAborted, Cause: r.cause})
	}
}

// begin launches spec. w (if any) is answered once it is ready or failed.
func (l *loop) begin(spec *Spec, w *waiter, auto bool) {
	if !auto {
		l.restartAlarm.stop()
		l.snap.NextRestartAt = time.Time{}
		l.budget.reset()
		l.snap.Restarts, l.snap.ConsecutiveCrashes = 0, 0
	}
	l.spec, l.auto, l.failing, l.stopStage = spec, auto, nil, 0
	if spec.Port > 0 {
		if err := ports.CheckFree(spec.Host, spec.Port); err != nil {
			l.launchFailed(fmt.Errorf("start %s: %w", l.name(), err), w)
			return
		}
	}
	l.gen++
	p, err := l.s.launch(spec, l.gen)
	if err != nil {
		l.launchFailed(fmt.Errorf("start %s: %w", l.name(), err), w)
		return
	}
	l.proc, l.waiter, l.state = p, w, StateStarting
	l.snap.Pid, l.snap.Port, l.snap.StartedAt, l.snap.ReadyAt = p.pid, spec.Port, p.startedAt, time.Time{}
	l.snap.Health, l.snap.HealthError, l.snap.HealthCheckedAt = HealthUnknown, nil, time.Time{}
	if l.s.cfg.PidDir != "" {
		if path, err := WritePidFile(l.s.cfg.PidDir, l.name(), p.pid); err != nil {
			l.s.log.Warn("no pid file: a crash of this service would leave the engine running", "err", err)
		} else {
			p.pidFile = path
		}
	}
	l.emit(Event{Kind: EventStarted, Pid: p.pid})

	ctx, cancel := context.WithCancel(context.Background())
	l.readyCancel = cancel
	gen := p.gen
	go p.awaitReady(ctx, func() {
		select {
		case l.s.readys <- gen:
		case <-ctx.Done():
		}
	})
	l.readyAlarm.set(spec.ReadyTimeout)
}

// launchFailed handles a start that failed before a process existed.
func (l *loop) launchFailed(err error, w *waiter) {
	l.snap.LastError, l.snap.Pid = err, 0
	if l.auto {
		l.state = StateCrashed
		l.emit(Event{Kind: EventStartFailed, Err: err, Attempt: l.attempt})
		l.scheduleRestart()
	} else {
		l.state = StateStopped
		l.emit(Event{Kind: EventStartFailed, Err: err})
	}
	w.answer(err)
}

func (l *loop) onReady(gen uint64) {
	p := l.proc
	if p == nil || p.gen != gen || l.state != StateStarting || l.failing != nil {
		return
	}
	l.readyAlarm.stop()
	l.readyCancel()
	p.readyPending.Store(false)
	now := time.Now()
	l.state = StateRunning
	l.snap.ReadyAt, l.snap.LastError = now, nil
	l.snap.Health, l.snap.HealthError, l.snap.HealthCheckedAt = HealthOK, nil, now
	l.emit(Event{Kind: EventReady, Pid: p.pid})
	if l.auto {
		l.emit(Event{Kind: EventRestarted, Pid: p.pid, Attempt: l.attempt})
	}
	l.waiter.answer(nil)
	l.waiter = nil
	if l.spec.HealthInterval > 0 && l.spec.Health != nil {
		l.healthAlarm.set(l.spec.HealthInterval)
	}
	if l.budget.streak > 0 {
		l.stableAlarm.set(l.spec.Restart.ResetAfter)
	}
}

// onStable ends the crash streak of a process that has run ready for
// RestartPolicy.ResetAfter: its next crash is restarted after the initial
// delay again.
func (l *loop) onStable() {
	if l.state != StateRunning {
		return
	}
	l.budget.stable()
	l.snap.ConsecutiveCrashes = 0
}

func (l *loop) onReadyTimeout() {
	if l.state == StateStarting && l.failing == nil {
		l.failStart(&StartError{Reason: ErrStartTimeout, Cause: l.proc.lastProbeErr()})
	}
}

// failStart kills a process that is still starting; onExit reports se.
func (l *loop) failStart(se *StartError) {
	se.Elapsed = time.Since(l.proc.startedAt)
	l.failing = se
	l.readyAlarm.stop()
	l.readyCancel()
	l.state = StateStopping
	if err := l.proc.signal(syscall.SIGKILL); err != nil {
		l.s.log.Error("kill", "err", err)
	}
}

// beginStop starts the stop sequence (SIGTERM, SIGTERM, SIGKILL).
func (l *loop) beginStop() {
	l.readyAlarm.stop()
	l.readyCancel()
	l.stopHealth()
	l.state = StateStopping
	l.stopStage = 0
	l.emit(Event{Kind: EventStopping, Pid: l.proc.pid})
	l.stopStep()
}

// escalate moves on to the next step of the stop sequence.
func (l *loop) escalate() {
	if l.proc == nil || l.state != StateStopping {
		return
	}
	steps := l.spec.stopSequence()
	if l.stopStage+1 >= len(steps) {
		return
	}
	prev := steps[l.stopStage]
	l.stopStage++
	l.s.log.Warn("still running; escalating the stop", "pid", l.proc.pid, "after", unix.SignalName(prev.sig),
		"waited", prev.grace, "sending", unix.SignalName(steps[l.stopStage].sig))
	l.stopStep()
}

// stopStep sends the signal of the current stop step and arms the wait for
// the next one.
func (l *loop) stopStep() {
	st := l.spec.stopSequence()[l.stopStage]
	l.sendSignal(st.sig)
	if st.grace > 0 {
		l.stopAlarm.set(st.grace)
	}
}

func (l *loop) sendSignal(sig syscall.Signal) {
	if err := l.proc.signal(sig); err != nil {
		l.s.log.Error("signal", "signal", sig, "err", err)
	}
}

func (l *loop) onExit(m exitMsg) {
	p := l.proc
	if p == nil || p.gen != m.gen {
		return
	}
	l.proc = nil
	l.readyAlarm.stop()
	l.readyCancel()
	l.stopAlarm.stop()
	l.stableAlarm.stop()
	l.stopHealth()
	if p.pidFile != "" {
		if err := removePidFile(p.pidFile); err != nil {
			l.s.log.Warn("pid file", "err", err)
		}
	}
	exit := m.exit
	l.snap.LastExit, l.snap.Pid, l.snap.Port = &exit, 0, 0
	l.snap.Health, l.snap.HealthError = HealthUnknown, nil
	tail := l.tail(p)
	elapsed := exit.At.Sub(p.startedAt)
	w := l.waiter
	l.waiter = nil
	var werr error // for w, answered once the new state is published

	switch {
	case l.failing != nil:
		se := l.failing
		l.failing = nil
		se.Name, se.Tail = l.name(), tail
		if se.Elapsed == 0 {
			se.Elapsed = elapsed
		}
		werr = se
		if errors.Is(se.Reason, ErrStartAborted) {
			l.state = StateStopped
			l.emit(Event{Kind: EventStopped, Pid: p.pid, Exit: &exit, Err: se})
			break
		}
		l.snap.LastError = se
		if l.auto && !l.closing {
			l.state = StateCrashed
			l.emit(Event{Kind: EventStartFailed, Pid: p.pid, Exit: &exit, Err: se, Attempt: l.attempt})
			l.scheduleRestart()
		} else {
			l.state = StateStopped
			l.emit(Event{Kind: EventStartFailed, Pid: p.pid, Exit: &exit, Err: se})
		}
	case l.state == StateStarting:
		se := &StartError{Name: l.name(), Reason: ErrExitedDuringStart, Exit: &exit, Elapsed: elapsed, Tail: tail}
		l.snap.LastError = se
		werr = se
		if l.auto && !l.closing {
			l.state = StateCrashed
			l.emit(Event{Kind: EventCrashed, Pid: p.pid, Exit: &exit, Err: se, Attempt: l.attempt})
			l.scheduleRestart()
		} else {
			l.state = StateStopped
			l.emit(Event{Kind: EventStartFailed, Pid: p.pid, Exit: &exit, Err: se})
		}
	case l.state == StateRunning:
		if !l.snap.ReadyAt.IsZero() && exit.At.Sub(l.snap.ReadyAt) >= l.spec.Restart.ResetAfter {
			l.onStable() // the stable alarm may not have fired yet
		}
		err := fmt.Errorf("%s exited unexpectedly (%s)%s", l.name(), exit, formatTail(tail))
		l.snap.LastError = err
		l.state = StateCrashed
		l.emit(Event{Kind: EventCrashed, Pid: p.pid, Exit: &exit, Err: err})
		if !l.closing {
			l.scheduleRestart()
		}
	default: // stopping on request
		l.state = StateStopped
		l.emit(Event{Kind: EventStopped, Pid: p.pid, Exit: &exit})
	}

	l.publish()
	if w != nil {
		if werr == nil { // cannot happen: a waiter implies starting
			werr = fmt.Errorf("%s: %w", l.name(), ErrStartAborted)
		}
		w.answer(werr)
	}
	for _, r := range l.stopWaiters {
		r <- nil
	}
	l.stopWaiters = nil
	if next := l.pending; next != nil {
		l.pending = nil
		if l.closing {
			next.answer(ErrClosed)
		} else {
			l.begin(l.spec, next, false)
		}
	}
}

func (l *loop) tail(p *proc) []string {
	lines := l.s.logs.TailSince(p.startSeq, p.spec.TailLines)
	out := make([]string, len(lines))
	for i, ln := range lines {
		out[i] = ln.Text
	}
	return out
}

func formatTail(tail []string) string {
	if len(tail) == 0 {
		return ""
	}
	return "; last output:\n" + strings.Join(tail, "\n")
}

// scheduleRestart arms an automatic restart if the policy and budget allow.
func (l *loop) scheduleRestart() {
	pol := l.spec.Restart
	if !pol.Enabled {
		return
	}
	now := time.Now()
	delay, attempt, ok := l.budget.next(pol, now)
	if !ok {
		err := fmt.Errorf("%s: gave up after %d restarts within %s: %w", l.name(), attempt, pol.Window, l.snap.LastError)
		l.snap.LastError = err
		l.emit(Event{Kind: EventGaveUp, Attempt: attempt, Err: err, Exit: l.snap.LastExit})
		return
	}
	l.budget.record(pol, now)
	l.attempt = attempt
	l.snap.Restarts++
	l.snap.ConsecutiveCrashes = l.budget.streak
	l.snap.NextRestartAt = now.Add(delay)
	l.restartAlarm.set(delay)
	l.emit(Event{Kind: EventRestarting, Attempt: attempt, Delay: delay, Exit: l.snap.LastExit,
		Err: l.snap.LastError, CrashLoop: l.budget.streak >= CrashLoopThreshold})
}

func (l *loop) onRestartDue() {
	l.snap.NextRestartAt = time.Time{}
	if l.state != StateCrashed || l.closing {
		return
	}
	l.begin(l.spec, nil, true)
}

func (l *loop) onHealthDue() {
	p := l.proc
	if p == nil || l.state != StateRunning || l.healthBusy {
		return
	}
	l.healthBusy = true
	ctx, cancel := context.WithTimeout(context.Background(), l.spec.ProbeTimeout)
	l.healthCancel = cancel
	probe, gen := l.spec.Health, p.gen
	go func() {
		ok, err := probe(ctx)
		cancel()
		select {
		case l.s.healths <- healthMsg{gen: gen, ok: ok, err: err}:
		case <-l.s.done:
		}
	}()
}

func (l *loop) onHealth(m healthMsg) {
	if l.proc == nil || m.gen != l.proc.gen {
		return
	}
	l.healthBusy = false
	if l.state != StateRunning {
		return
	}
	h, herr := HealthOK, error(nil)
	if !m.ok {
		h, herr = HealthError, m.err
		if herr == nil {
			herr = errNotReady
		}
	}
	changed := h != l.snap.Health
	l.snap.Health, l.snap.HealthError, l.snap.HealthCheckedAt = h, herr, time.Now()
	if changed {
		l.emit(Event{Kind: EventHealthChanged, Pid: l.proc.pid, Health: h, Err: herr})
	}
	l.healthAlarm.set(l.spec.HealthInterval)
}

func (l *loop) stopHealth() {
	l.healthAlarm.stop()
	if l.healthCancel != nil {
		l.healthCancel()
		l.healthCancel = nil
	}
	l.healthBusy = false
}

// close begins the shutdown: the process is stopped, then the loop ends.
func (l *loop) close() {
	l.closing = true
	if l.restartAlarm.armed {
		l.restartAlarm.stop()
		l.snap.NextRestartAt = time.Time{}
	}
	if l.pending != nil {
		l.pending.answer(ErrClosed)
		l.pending = nil
	}
	switch l.state {
	case StateStarting:
		l.failStart(&StartError{Reason: ErrStartAborted, Cause: ErrClosed})
	case StateRunning:
		l.beginStop()
	}
}

func (l *loop) finish() {
	l.publish()
	l.s.events.Close()
	l.s.logs.Close()
	close(l.s.done)
}

// emit publishes the snapshot, then the event, so that a reader of the
// event sees a snapshot at least as new.
func (l *loop) emit(e Event) {
	e.Time, e.Name, e.State = time.Now(), l.name(), l.state
	l.publish()
	l.s.events.Append(e)
	level := slog.LevelInfo
	switch e.Kind {
	case EventCrashed, EventStartFailed, EventGaveUp:
		level = slog.LevelWarn
	}
	attrs := []any{"event", string(e.Kind), "state", e.State.String()}
	if e.Pid != 0 {
		attrs = append(attrs, "pid", e.Pid)
	}
	if e.Exit != nil {
		attrs = append(attrs, "exit", e.Exit.String())
	}
	if e.Delay != 0 {
		attrs = append(attrs, "attempt", e.Attempt, "delay", e.Delay)
	}
	if e.CrashLoop {
		attrs = append(attrs, "crash_loop", true, "next_attempt_at", e.Time.Add(e.Delay).Round(time.Millisecond).Format(time.RFC3339Nano))
	}
	if e.Err != nil {
		attrs = append(attrs, "err", firstLine(e.Err.Error()))
	}
	l.s.log.Log(context.Background(), level, "engine "+string(e.Kind), attrs...)
}

// crashLooping reports whether the process is in a crash loop: it crashed
// CrashLoopThreshold times in a row or more, and its next automatic restart
// is pending or starting.
func (l *loop) crashLooping() bool {
	if l.spec == nil || !l.spec.Restart.Enabled || l.budget.streak < CrashLoopThreshold {
		return false
	}
	switch l.state {
	case StateCrashed:
		return l.restartAlarm.armed
	case StateStarting:
		return l.auto
	}
	return false
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

func (l *loop) publish() {
	l.snap.State = l.state
	l.snap.CrashLooping = l.crashLooping()
	snap := l.snap
	l.s.snap.Store(&snap)
}

// alarm is a timer the loop can select on; c() is nil while unarmed.
type alarm struct {
	t     *time.Timer
	armed bool
}

func (a *alarm) set(d time.Duration) {
	if a.t == nil {
		a.t = time.NewTimer(d)
	} else {
		a.t.Reset(d)
	}
	a.armed = true
}

func (a *alarm) stop() {
	if a.t != nil {
		a.t.Stop()
	}
	a.armed = false
}

func (a *alarm) fired() { a.armed = false }

func (a *alarm) c() <-chan time.Time {
	if !a.armed {
		return nil
	}
	return a.t.C
}
