package supervisor

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/genailab/genailab/pkg/logring"
)

// proc is one launched process. Its fields are set before the loop sees it
// and not changed after, except where noted.
type proc struct {
	gen       uint64
	pid       int
	spec      *Spec
	startedAt time.Time
	startSeq  uint64 // first log sequence number of this process
	pidFile   string // set by the loop

	mu     sync.Mutex
	reaped bool // the leader is reaped: its pid (= group id) may be reused

	outMu        sync.Mutex    // serialises output handling of stdout and stderr
	trigger      chan struct{} // a ReadyOnLine match; capacity 1
	readyPending atomic.Bool
	probeErr     atomic.Pointer[error]
}

// exitMsg tells the loop a process ended and its output is drained.
type exitMsg struct {
	gen  uint64
	exit ExitStatus
}

// signal sends sig to the process group, unless the leader is already
// reaped (its id could then name another group).
func (p *proc) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reaped {
		return nil
	}
	if err := syscall.Kill(-p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal process group %d: %w", p.pid, err)
	}
	return nil
}

func (p *proc) lastProbeErr() error {
	if e := p.probeErr.Load(); e != nil {
		return *e
	}
	return nil
}

// launch starts the process described by spec. It returns once the process
// runs (or failed to). Exit is reported on s.exits.
func (s *Supervisor) launch(spec *Spec, gen uint64) (*proc, error) {
	p := &proc{gen: gen, spec: spec, trigger: make(chan struct{}, 1), startSeq: s.logs.NextSeq()}
	p.readyPending.Store(true) // before the first line can arrive
	err := p.launch(func(l Line) { s.deliver(p, l) }, func(exit ExitStatus) {
		select {
		case s.exits <- exitMsg{gen: gen, exit: exit}:
		case <-s.done:
		}
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// launch starts p's process. It returns once the process runs (or failed
// to). Every output line goes to the log file (if any) and then to deliver,
// calls never overlapping; exited receives how the process ended once it is
// reaped and its output drained. Both run the supervised and the one-shot
// processes (RunOnce) alike.
func (p *proc) launch(deliver func(Line), exited func(ExitStatus)) error {
	spec := p.spec
	outR, outW, err := os.Pipe()
	if err != nil {
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return err
	}
	closeAll := func() {
		for _, f := range []*os.File{outR, outW, errR, errW} {
			f.Close()
		}
	}
	var lf *logring.File
	if spec.LogFile != "" {
		if lf, err = logring.OpenFile(spec.LogFile, spec.LogFileMaxBytes, spec.LogFileKeep); err != nil {
			closeAll()
			return err
		}
	}

	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Dir = spec.Dir
	cmd.Env = processEnv(spec)
	cmd.Stdout, cmd.Stderr = outW, errW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// Stdout and stderr are our own pipes (read below), so Wait has no
	// copying to wait for; WaitDelay only bounds it should that change.
	cmd.WaitDelay = spec.OutputDrain

	started := make(chan error, 1)
	go p.run(cmd, lf, outR, outW, errR, errW, started, deliver, exited)
	if err := <-started; err != nil {
		if lf != nil {
			lf.Close()
		}
		return err
	}
	return nil
}

// run starts cmd on a locked OS thread and stays on it, blocked in wait, for
// the child's life: the parent-death signal (SIGKILL) fires when the thread
// that forked the child ends, so that thread must not end while the child
// lives. When the child exits, the rest of its process group is killed while
// the exited leader still pins the group id, then the leader is reaped, the
// output drained, and the exit handed to exited.
func (p *proc) run(cmd *exec.Cmd, lf *logring.File, outR, outW, errR, errW *os.File,
	started chan<- error, deliver func(Line), exited func(ExitStatus)) {
	runtime.LockOSThread()
	err := cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		runtime.UnlockOSThread()
		started <- err
		return
	}
	p.pid = cmd.Process.Pid
	p.startedAt = time.Now()
	if p.spec.OnStart != nil {
		p.spec.OnStart(p.pid)
	}

	lb := lineBuilder{pid: p.pid, parse: p.spec.Parse}
	// Both readers hold p.outMu while handling what they read, so the
	// consumers are never called concurrently and the ring keeps the order
	// in which lines were handed on.
	sink := func(stream Stream, text []byte) {
		p.outMu.Lock()
		defer p.outMu.Unlock()
		l := lb.build(stream, text, time.Now())
		if lf != nil {
			buf := make([]byte, 0, len(l.Text)+1)
			_, _ = lf.Write(append(append(buf, l.Text...), '\n'))
		}
		deliver(l)
	}
	var onChunk func(Stream, []byte)
	if p.spec.OnChunk != nil {
		onChunk = func(stream Stream, b []byte) {
			p.outMu.Lock()
			defer p.outMu.Unlock()
			p.spec.OnChunk(stream, b)
		}
	}
	var readers sync.WaitGroup
	for _, r := range []struct {
		f      *os.File
		stream Stream
	}{{outR, Stdout}, {errR, Stderr}} {
		readers.Go(func() {
			readOutput(r.f, r.stream, p.spec.Split, p.spec.MaxLineBytes, onChunk, sink)
		})
	}
	started <- nil

	waitExited(p.pid)
	p.mu.Lock()
	_ = syscall.Kill(-p.pid, syscall.SIGKILL) // leftovers of the group; the leader pins the id
	p.reaped = true
	p.mu.Unlock()
	_ = cmd.Wait() // the exit status is in ProcessState; the error only repeats it
	runtime.UnlockOSThread()
	exit := ExitStatus{Code: -1, At: time.Now()}
	if cmd.ProcessState != nil {
		exit = exitStatusOf(cmd.ProcessState, exit.At)
	}

	drained := make(chan struct{})
	go func() { readers.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(p.spec.OutputDrain):
		// Something outside the group holds the pipes: stop reading.
		outR.Close()
		errR.Close()
		<-drained
	}
	outR.Close()
	errR.Close()
	if lf != nil {
		lf.Close()
	}
	exited(exit)
}

// waitExited blocks until pid has exited, without reaping it.
func waitExited(pid int) {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return
		}
	}
}

// deliver records one output line of a supervised process: ring, OnLine
// consumer and the readiness trigger (the log file has it already).
func (s *Supervisor) deliver(p *proc, l Line) {
	s.logs.Append(l)
	if p.spec.OnLine != nil {
		p.spec.OnLine(l)
	}
	if p.spec.ReadyOnLine != nil && p.readyPending.Load() && p.spec.ReadyOnLine(l) {
		select {
		case p.trigger <- struct{}{}:
		default:
		}
	}
}
