// Package labhost is the stand-in lab of the deploy recipe's examples: Debian machines that boot
// their own systemd (PID 1, journald, real units) under systemd-nspawn, each in its own network
// namespace with the address the recipe gives it, all on one private bridge. The README's
// systemd blocks run in them as written: `install`, `systemd-sysusers`, `systemctl enable --now`,
// `journalctl`, the hardened units with LoadCredential= and the sandbox, mutual TLS between the
// machines, curl against the control machine's HTTPS gateway.
//
// It stands in for the lab's hosts and their network only; what runs on them is the real thing.
// A machine's root file system is one read-only Debian tree (testenv.LabRootfs) with a tmpfs
// overlay (--volatile=overlay): nothing a machine writes survives it, nothing leaks to the host
// but the directories bound into it.
package labhost

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Lab is a private network (a bridge in a namespace of its own) and the machines booted on it.
type Lab struct {
	rootfs string
	binds  []Bind
	tag    string // unique prefix of the lab's namespaces
	subnet int    // prefix length of the machines' addresses
	sw     string // the bridge's namespace

	mu       sync.Mutex
	machines []*Machine
	hosts    []string // /etc/hosts lines every machine gets
}

// Bind is a directory of the host bound into every machine at the same path.
type Bind struct {
	Path     string
	ReadOnly bool
}

// Spec is a machine to boot: its host name, its IPv4 address on the lab network, and the
// names /etc/hosts gives that address on every machine (the lab's DNS).
type Spec struct {
	Name    string
	IP      string
	Aliases []string
}

// New makes the lab's network: a bridge for machines with addresses in a /prefix.
func New(rootfs string, prefix int, binds ...Bind) (*Lab, error) {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	l := &Lab{rootfs: rootfs, binds: binds, tag: "gl" + hex.EncodeToString(b[:]), subnet: prefix}
	l.sw = l.tag + "sw"
	if err := ip("netns", "add", l.sw); err != nil {
		return nil, fmt.Errorf("lab network: %w", err)
	}
	for _, args := range [][]string{
		{"-n", l.sw, "link", "add", "br0", "type", "bridge"},
		{"-n", l.sw, "link", "set", "br0", "up"},
	} {
		if err := ip(args...); err != nil {
			l.Close()
			return nil, fmt.Errorf("lab network: %w", err)
		}
	}
	return l, nil
}

// Boot starts the machines and waits until each one's systemd has finished booting. Every
// machine's /etc/hosts names every machine of the lab (those booted before included).
func (l *Lab) Boot(ctx context.Context, specs ...Spec) ([]*Machine, error) {
	l.mu.Lock()
	for _, s := range specs {
		l.hosts = append(l.hosts, strings.Join(append([]string{s.IP, s.Name}, s.Aliases...), " "))
	}
	hosts := strings.Join(l.hosts, "\n") + "\n"
	l.mu.Unlock()
	var (
		out  []*Machine
		errs []error
	)
	for i, s := range specs {
		m, err := l.boot(ctx, s, len(l.machines)+i)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, m)
	}
	for _, m := range out {
		if err := m.ready(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	l.mu.Lock()
	l.machines = append(l.machines, out...)
	all := append([]*Machine(nil), l.machines...)
	l.mu.Unlock()
	for _, m := range all {
		if _, err := m.Run(ctx, "/", nil, "printf '%s' \"$1\" >> /etc/hosts", "\n# the stand-in lab\n"+hosts); err != nil {
			errs = append(errs, fmt.Errorf("%s: /etc/hosts: %w", m.Name, err))
		}
	}
	return out, errors.Join(errs...)
}

// Close powers every machine off (SIGTERM to systemd-nspawn, which halts the container's
// systemd; killed after a grace) and removes the network.
func (l *Lab) Close() {
	l.mu.Lock()
	ms := l.machines
	l.machines = nil
	l.mu.Unlock()
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.poweroff(30 * time.Second)
		}()
	}
	wg.Wait()
	for _, m := range ms {
		_ = ip("netns", "del", m.ns)
	}
	_ = ip("netns", "del", l.sw)
}

func ip(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
