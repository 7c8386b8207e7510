package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/genailab/genailab/pkg/execfile"
	"github.com/genailab/genailab/pkg/ports"
)

// The etcd variables.
const (
	// RequireEtcdEnv=1 makes a missing etcd a failure instead of a skip (CI sets it).
	RequireEtcdEnv = "GENAILAB_REQUIRE_ETCD"
	// EtcdEnv names the etcd program to run (default: bin/etcd, then etcd on PATH).
	EtcdEnv = "GENAILAB_ETCD"
)

// FindEtcd finds a real etcd server: $GENAILAB_ETCD, else the repository's bin/etcd (built by
// `make tools` from the version pinned in tools/go.mod), else etcd on PATH (Debian's
// etcd-server). A configured path that is not a program is an error; nothing found is ErrMissing.
func FindEtcd() (string, error) {
	if p := os.Getenv(EtcdEnv); p != "" {
		if _, err := execfile.Check(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EtcdEnv, p, err)
		}
		return p, nil
	}
	if root, err := RepoRoot(); err == nil {
		p := filepath.Join(root, "bin", "etcd")
		if _, err := os.Stat(p); err == nil {
			if _, err := execfile.Check(p); err != nil {
				return "", fmt.Errorf("etcd: %w", err)
			}
			return p, nil
		}
	}
	if p, err := exec.LookPath("etcd"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w: no etcd (run `make tools`, which builds bin/etcd, or set %s)", ErrMissing, EtcdEnv)
}

// RequireEtcd returns the real etcd, or skips t (fails it under GENAILAB_REQUIRE_ETCD=1).
func RequireEtcd(t testing.TB) string {
	t.Helper()
	p, err := FindEtcd()
	Need(t, RequireEtcdEnv, err)
	return p
}

// EtcdCluster is a real etcd cluster of processes on loopback, for tests.
type EtcdCluster struct {
	Members []*EtcdMember
}

// EtcdMember is one member process of an EtcdCluster.
type EtcdMember struct {
	Name      string
	ClientURL string
	PeerURL   string
	Dir       string // its data directory and log (etcd.log)
	bin       string
	args      []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartEtcd starts a cluster of n members (ports picked by the kernel, data in t.TempDir)
// and waits until it is healthy; t's cleanup kills every member. It skips t when there is
// no etcd (fails under GENAILAB_REQUIRE_ETCD=1).
func StartEtcd(t testing.TB, n int) *EtcdCluster {
	t.Helper()
	RequireEtcd(t)
	c, err := RunEtcd(t.TempDir(), n)
	if err != nil {
		t.Fatalf("start an etcd cluster of %d: %v", n, err)
	}
	t.Cleanup(c.Kill)
	return c
}

// RunEtcd is StartEtcd for TestMain: the cluster's data goes in dir, the caller kills it.
// No etcd is ErrMissing (hand it to Need from each test).
func RunEtcd(dir string, n int) (*EtcdCluster, error) {
	bin, err := FindEtcd()
	if err != nil {
		return nil, err
	}
	var lastErr error
	// A port the kernel gave may be taken by another process before etcd binds it: the
	// cluster is started again on new ports.
	for attempt := range 3 {
		c, err := startEtcd(bin, filepath.Join(dir, fmt.Sprint("try", attempt)), n)
		if err == nil {
			return c, nil
		}
		lastErr = err
		if c != nil {
			c.Kill()
		}
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, lastErr
}

func startEtcd(bin, dir string, n int) (*EtcdCluster, error) {
	c := &EtcdCluster{}
	var initial []string
	for i := range n {
		cp, err := ports.Free("")
		if err != nil {
			return nil, err
		}
		pp, err := ports.Free("")
		if err != nil {
			return nil, err
		}
		m := &EtcdMember{
			Name: fmt.Sprintf("m%d", i), ClientURL: fmt.Sprintf("http://127.0.0.1:%d", cp),
			PeerURL: fmt.Sprintf("http://127.0.0.1:%d", pp), Dir: filepath.Join(dir, fmt.Sprintf("m%d", i)), bin: bin,
		}
		initial = append(initial, m.Name+"="+m.PeerURL)
		c.Members = append(c.Members, m)
	}
	for _, m := range c.Members {
		m.args = []string{
			"--name", m.Name, "--data-dir", filepath.Join(m.Dir, "data"),
			"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", m.PeerURL, "--initial-advertise-peer-urls", m.PeerURL,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "genailab-test", "--log-level", "warn",
			"--heartbeat-interval", "100", "--election-timeout", "1000",
		}
		if err := os.MkdirAll(m.Dir, 0o700); err != nil {
			return c, err
		}
		if err := m.Start(); err != nil {
			return c, err
		}
	}
	for _, m := range c.Members {
		if err := m.WaitHealthy(60 * time.Second); err != nil {
			return c, err
		}
	}
	return c, nil
}

// Endpoints are the client URLs of every member.
func (c *EtcdCluster) Endpoints() []string {
	var out []string
	for _, m := range c.Members {
		out = append(out, m.ClientURL)
	}
	return out
}

// Kill kills every member (SIGKILL) and waits for them.
func (c *EtcdCluster) Kill() {
	for _, m := range c.Members {
		m.Kill()
	}
}

// Start starts the member's process (again, on its data directory, after Kill).
func (m *EtcdMember) Start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return fmt.Errorf("etcd member %s is running", m.Name)
	}
	logf, err := os.OpenFile(filepath.Join(m.Dir, "etcd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(m.bin, m.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// A test binary that is killed (a timeout, a SIGKILL test's child) takes its etcd along.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start etcd member %s: %w", m.Name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	m.cmd, m.done = cmd, done
	return nil
}

// Kill kills the member's process (SIGKILL) and waits for it; nothing when it is not running.
func (m *EtcdMember) Kill() {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT) // a stopped process dies too
	_ = cmd.Process.Kill()
	<-done
}

// Signal sends sig (SIGSTOP, SIGCONT...) to the member's process.
func (m *EtcdMember) Signal(sig syscall.Signal) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return fmt.Errorf("etcd member %s is not running", m.Name)
	}
	return m.cmd.Process.Signal(sig)
}

// WaitHealthy waits until the member answers /health with health true (it is in a cluster
// with a leader), failing early when its process exits, with the tail of its log.
func (m *EtcdMember) WaitHealthy(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	m.mu.Lock()
	done := m.done
	m.mu.Unlock()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := m.healthy(ctx)
		if ok {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("etcd member %s exited: %s", m.Name, m.logTail())
		case <-ctx.Done():
			return fmt.Errorf("etcd member %s not healthy after %s (%v): %s", m.Name, timeout, err, m.logTail())
		case <-tick.C:
		}
	}
}

func (m *EtcdMember) healthy(ctx context.Context) (bool, error) {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, m.ClientURL+"/health", nil)
	if err != nil {
		return false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var h struct {
		Health string `json:"health"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return false, err
	}
	if h.Health != "true" {
		return false, errors.New("health " + h.Health)
	}
	return true, nil
}

func (m *EtcdMember) logTail() string {
	data, _ := os.ReadFile(filepath.Join(m.Dir, "etcd.log"))
	if i := len(data) - 2000; i > 0 {
		data = data[i:]
	}
	return string(bytes.TrimSpace(data))
}
