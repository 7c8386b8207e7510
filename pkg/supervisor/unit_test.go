package supervisor

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// A command name with spaces and parentheses, as the kernel prints it.
	in := "4242 (llama (server) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 10 5 0 0 20 0 9 0 987654 123456789 2000 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n"
	st, err := parseStat([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := procStat{Pid: 4242, Comm: "llama (server) x", State: 'S', Ppid: 1, Pgrp: 4242, StartTicks: 987654}
	if st != want {
		t.Fatalf("parseStat = %+v, want %+v", st, want)
	}
	for _, bad := range []string{"", "12 no-parens S 1", "12 (x) S 1 2", "x (a) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) accepted", bad)
		}
	}
	zombie, _ := parseStat([]byte(strings.Replace(in, ") S ", ") Z ", 1)))
	if !zombie.Zombie() {
		t.Error("Z state not a zombie")
	}
	self, err := readStat(os.Getpid())
	if err != nil || self.Pid != os.Getpid() || self.StartTicks == 0 || self.Ppid != os.Getppid() {
		t.Fatalf("readStat(self) = %+v, %v", self, err)
	}
}

func TestRestartBudget(t *testing.T) {
	p := RestartPolicy{Enabled: true, MaxRestarts: 3, Window: time.Minute,
		Backoff: Backoff{Initial: 100 * time.Millisecond, Max: 300 * time.Millisecond}}
	var b restartBudget
	t0 := time.Unix(1000, 0)
	var delays []time.Duration
	for i := range 3 {
		d, attempt, ok := b.next(p, t0)
		if !ok || attempt != i+1 {
			t.Fatalf("restart %d: ok %v attempt %d", i, ok, attempt)
		}
		b.record(p, t0)
		delays = append(delays, d)
	}
	if delays[0] != 100*time.Millisecond || delays[1] != 200*time.Millisecond || delays[2] != 300*time.Millisecond {
		t.Fatalf("delays %v", delays)
	}
	if _, attempt, ok := b.next(p, t0.Add(time.Second)); ok || attempt != 3 {
		t.Fatalf("budget not spent: ok %v attempt %d", ok, attempt)
	}
	// Once the window has passed, restarts are allowed again, but the streak
	// goes on: the delay stays at its cap (a window alone used to reset it,
	// so a crash loop never backed off for long).
	if d, attempt, ok := b.next(p, t0.Add(time.Minute)); !ok || attempt != 4 || d != 300*time.Millisecond {
		t.Fatalf("after window: %v %d %v", d, attempt, ok)
	}
	// A stable run ends the streak.
	b.stable()
	if d, attempt, ok := b.next(p, t0.Add(time.Minute)); !ok || attempt != 1 || d != 100*time.Millisecond {
		t.Fatalf("after a stable run: %v %d %v", d, attempt, ok)
	}
	b.record(p, t0)
	b.reset()
	if _, attempt, _ := b.next(p, t0); attempt != 1 {
		t.Fatal("reset kept history")
	}
}

// The default policy never gives up: a thousand crashes in a second are
// all restarted, with the delay doubling up to its cap and staying there.
func TestRestartBudgetNeverGivesUpByDefault(t *testing.T) {
	sp, err := (Spec{Path: "x", Restart: RestartPolicy{Enabled: true}}).withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	p := sp.Restart
	if p.MaxRestarts != 0 || p.Backoff.Max != 5*time.Minute || p.ResetAfter != 10*time.Minute {
		t.Fatalf("defaults %+v", p)
	}
	var b restartBudget
	t0 := time.Unix(1000, 0)
	var last time.Duration
	for i := range 1000 {
		d, attempt, ok := b.next(p, t0.Add(time.Duration(i)*time.Millisecond))
		if !ok || attempt != i+1 {
			t.Fatalf("restart %d: ok %v attempt %d", i, ok, attempt)
		}
		if want := min(DefaultRestartInitial<<min(i, 20), DefaultRestartMaxDelay); d != want {
			t.Fatalf("restart %d: delay %v, want %v", i, d, want)
		}
		b.record(p, t0)
		last = d
	}
	if last != DefaultRestartMaxDelay || len(b.times) != 0 {
		t.Fatalf("last delay %v, %d times kept", last, len(b.times))
	}
}

func TestExitStatusAndStartError(t *testing.T) {
	seg := ExitStatus{Code: -1, Signal: syscall.SIGSEGV}
	if seg.String() != "killed by SIGSEGV" || !seg.Signaled() {
		t.Fatalf("%v", seg)
	}
	if s := (ExitStatus{Code: 1}).String(); s != "exit code 1" {
		t.Fatal(s)
	}
	cause := errors.New("dial tcp: connection refused")
	err := error(&StartError{Name: "llm", Reason: ErrStartTimeout, Elapsed: 1500 * time.Millisecond, Cause: cause,
		Tail: []string{"a", "b"}})
	if !errors.Is(err, ErrStartTimeout) || !errors.Is(err, cause) || errors.Is(err, ErrExitedDuringStart) {
		t.Fatal("errors.Is")
	}
	want := "llm did not become ready in time after 1.5s: dial tcp: connection refused; last output:\na\nb"
	if err.Error() != want {
		t.Fatalf("%q\nwant %q", err.Error(), want)
	}
}

func TestValidName(t *testing.T) {
	for _, ok := range []string{"llm", "sd-server", "engine_1.x"} {
		if !validName(ok) {
			t.Errorf("%q rejected", ok)
		}
	}
	for _, bad := range []string{"", ".hidden", "../x", "a/b", "a b", strings.Repeat("x", 101)} {
		if validName(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := New(t.Context(), Config{Name: "../etc"}); err == nil {
		t.Error("New accepted a name escaping the pid dir")
	}
}

func TestSpecDefaults(t *testing.T) {
	if _, err := (Spec{}).withDefaults(); !errors.Is(err, ErrInvalidSpec) {
		t.Fatal("empty path accepted")
	}
	if _, err := (Spec{Path: "x", Port: 70000}).withDefaults(); !errors.Is(err, ErrInvalidSpec) {
		t.Fatal("bad port accepted")
	}
	s, err := (Spec{Path: "x", TermGrace: time.Second}).withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if s.SecondTermGrace != time.Second || s.ReadyTimeout != DefaultReadyTimeout ||
		s.ProbeBackoff != (Backoff{DefaultProbeInitial, DefaultProbeMax}) || s.Split == nil ||
		s.Restart.MaxRestarts != DefaultMaxRestarts || s.LogFileKeep != -1 {
		t.Fatalf("defaults: %+v", s)
	}
}

func TestScanTerminalWaitsForSplitEscape(t *testing.T) {
	adv, tok, err := ScanTerminal([]byte("bar\x1b["), false)
	if adv != 0 || tok != nil || err != nil {
		t.Fatalf("split ESC[ mid-sequence: %d %q %v", adv, tok, err)
	}
	adv, tok, _ = ScanTerminal([]byte("bar\x1b[K"), false)
	if adv != 6 || string(tok) != "bar" {
		t.Fatalf("%d %q", adv, tok)
	}
}
