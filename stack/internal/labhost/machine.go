package labhost

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Machine is one booted machine of the lab.
type Machine struct {
	Name, IP string
	ns       string // its network namespace
	cmd      *exec.Cmd
	console  *syncBuffer
	exited   chan struct{}
	leader   int // the container's PID 1, as this host numbers it
}

// boot starts systemd-nspawn for s in a namespace of its own linked to the lab's bridge.
func (l *Lab) boot(ctx context.Context, s Spec, n int) (*Machine, error) {
	m := &Machine{Name: s.Name, IP: s.IP, ns: fmt.Sprintf("%sm%d", l.tag, n), console: &syncBuffer{}, exited: make(chan struct{})}
	veth := fmt.Sprintf("%sv%d", l.tag, n)
	if err := ip("netns", "add", m.ns); err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name, err)
	}
	for _, args := range [][]string{
		{"-n", l.sw, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", m.ns},
		{"-n", l.sw, "link", "set", veth, "master", "br0", "up"},
		{"-n", m.ns, "addr", "add", s.IP + "/" + strconv.Itoa(l.subnet), "dev", "eth0"},
		{"-n", m.ns, "link", "set", "eth0", "up"},
		{"-n", m.ns, "link", "set", "lo", "up"},
	} {
		if err := ip(args...); err != nil {
			_ = ip("netns", "del", m.ns)
			return nil, fmt.Errorf("%s: %w", s.Name, err)
		}
	}
	args := []string{
		"-D", l.rootfs, "--boot", "--machine=" + s.Name, "--hostname=" + s.Name,
		"--register=no", "--keep-unit", "--quiet", "--console=read-only",
		"--volatile=overlay", // the tree stays read-only and shared; writes go to a tmpfs
		"--network-namespace-path=/run/netns/" + m.ns,
	}
	for _, b := range l.binds {
		flag := "--bind="
		if b.ReadOnly {
			flag = "--bind-ro="
		}
		args = append(args, flag+b.Path)
	}
	// The image's /etc/hostname would name every machine alike: the name goes on systemd's
	// command line instead (systemd.hostname=, as on a kernel's).
	args = append(args, "--", "systemd.hostname="+s.Name)
	m.cmd = exec.Command("systemd-nspawn", args...)
	m.cmd.Stdout, m.cmd.Stderr = m.console, m.console
	m.cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "SYSTEMD_NSPAWN_TMPFS_TMP=1"}
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := m.cmd.Start(); err != nil {
		_ = ip("netns", "del", m.ns)
		return nil, fmt.Errorf("%s: start systemd-nspawn: %w", s.Name, err)
	}
	go func() {
		_ = m.cmd.Wait()
		close(m.exited)
	}()
	return m, nil
}

// ready waits for the container's systemd, then for the end of its boot
// (`systemctl is-system-running --wait`: running, or degraded with the failed units named).
func (m *Machine) ready(ctx context.Context) error {
	// The container's PID 1 once it runs systemd, then systemd's private socket: systemctl
	// can talk to it from there on.
	if err := m.poll(ctx, func() bool {
		m.leader = systemdChild(m.cmd.Process.Pid)
		return m.leader != 0
	}); err != nil {
		return err
	}
	if err := m.poll(ctx, func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/%d/root/run/systemd/private", m.leader))
		return err == nil
	}); err != nil {
		return err
	}
	out, err := m.Run(ctx, "/", nil, "systemctl is-system-running --wait || { systemctl --failed --no-legend; exit 1; }")
	state := strings.TrimSpace(string(out))
	if err != nil && !strings.HasPrefix(state, "degraded") {
		return fmt.Errorf("%s: boot: %w: %s\n%s", m.Name, err, state, m.console.tail(20))
	}
	return nil
}

// poll waits until done reports true, checking every 50 ms (systemd-nspawn reports no event for
// what it checks in /proc), or fails when systemd-nspawn exits or ctx ends first.
func (m *Machine) poll(ctx context.Context, done func() bool) error {
	for !done() {
		select {
		case <-m.exited:
			return fmt.Errorf("%s: systemd-nspawn exited during boot: %s", m.Name, m.console.tail(20))
		case <-ctx.Done():
			return fmt.Errorf("%s: boot: %w: %s", m.Name, ctx.Err(), m.console.tail(20))
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// systemdChild finds the container's PID 1 among systemd-nspawn's children, once it runs systemd.
func systemdChild(nspawn int) int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", nspawn))
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(b)) {
			pid, _ := strconv.Atoi(f)
			status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			for _, line := range strings.Split(string(status), "\n") {
				// NSpid: <pid here> 1  — the init of a new PID namespace.
				// Until it has exec'd systemd it is still systemd-nspawn setting the container up.
				if f := strings.Fields(line); len(f) == 3 && f[0] == "NSpid:" && f[2] == "1" {
					if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); filepath.Base(exe) == "systemd" {
						return pid
					}
				}
			}
		}
	}
	return 0
}

// Run runs script with bash -e -o pipefail as root in the machine (all of its namespaces, cwd
// dir), with env and nothing else of this process's environment but a PATH; args become $1...
// It returns stdout and stderr together.
func (m *Machine) Run(ctx context.Context, dir string, env []string, script string, args ...string) ([]byte, error) {
	argv := []string{"-t", strconv.Itoa(m.leader), "-a", "--root", "--wd", "--",
		"/usr/bin/env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8"}
	argv = append(argv, env...)
	// nsenter's --wd=DIR would name a directory of this host's mount namespace: cd inside.
	script = "cd -- '" + strings.ReplaceAll(dir, "'", `'\''`) + "'\n" + script
	argv = append(argv, "/bin/bash", "-e", "-o", "pipefail", "-c", script, "bash")
	argv = append(argv, args...)
	cmd := exec.CommandContext(ctx, "nsenter", argv...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("on %s: %w", m.Name, err)
	}
	return out.Bytes(), err
}

// Journal is the machine's journal for the units matching pattern (journalctl -u), for test
// failures.
func (m *Machine) Journal(pattern string, lines int) string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, _ := m.Run(ctx, "/", nil, `journalctl --no-pager -o short-monotonic -n "$2" -u "$1"`, pattern, strconv.Itoa(lines))
	return string(out)
}

// poweroff halts the machine: SIGTERM makes systemd-nspawn ask the container's systemd to
// power off; SIGKILL to the process group after grace.
func (m *Machine) poweroff(grace time.Duration) {
	if m.cmd.Process == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(grace):
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		<-m.exited
	}
}

// Console is what the machine printed on its console (the boot messages), for test failures.
func (m *Machine) Console() string { return m.console.tail(200) }

// syncBuffer is the console: written by systemd-nspawn's output copier, read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 1<<20 { // keep the last MiB
		rest := append([]byte(nil), s.b.Bytes()[s.b.Len()-512<<10:]...)
		s.b.Reset()
		s.b.Write(rest)
	}
	return s.b.Write(p)
}

func (s *syncBuffer) tail(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	lines := strings.Split(strings.TrimRight(s.b.String(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
