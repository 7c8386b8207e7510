package deploy_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// proc is a service binary running for a test, with its output kept for assertions.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	addr string
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// start runs a built binary with args plus -addr-file, and waits for the bound address.
func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	p := &proc{}
	p.cmd = exec.Command(filepath.Join(binDir, name), append(args, "-addr-file", addrFile)...)
	p.cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			p.addr = string(b)
			return p
		}
		select {
		case <-done:
			t.Fatalf("%s exited before listening:\n%s", name, p.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen within 30s:\n%s", name, p.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func certs(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(filepath.Join(binDir, "genailab-certs"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("genailab-certs %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestMutualTLSThroughTheBinaries runs the real monitor with the flags the deployment files
// use (mTLS + token) and the real gateway in front of it over HTTPS: the wiring of
// -tls-cert/-tls-key/-tls-client-ca and -tls-ca/-tls-client-cert/-tls-client-key works end
// to end, and a gateway without a client certificate is refused and logged.
func TestMutualTLSThroughTheBinaries(t *testing.T) {
	binaryFlags(t)
	pki := t.TempDir()
	ca, agent, gw := filepath.Join(pki, "ca"), filepath.Join(pki, "agent"), filepath.Join(pki, "gw")
	certs(t, "ca", "-out", ca)
	certs(t, "host", "-ca", ca, "-name", "agent", "-dns", "localhost", "-ip", "127.0.0.1", "-out", agent)
	certs(t, "host", "-ca", ca, "-name", "gateway", "-dns", "localhost", "-ip", "127.0.0.1", "-out", gw)
	const labToken, apiToken = "lab-9c1d7e2f44", "api-5b8e0a1f93"

	monitor := start(t, "genailab-monitor", "-grpc-addr", "127.0.0.1:0", "-metrics-addr", "off", "-data-dir", t.TempDir(),
		"-tls-cert", filepath.Join(agent, "agent.crt"), "-tls-key", filepath.Join(agent, "agent.key"),
		"-tls-client-ca", filepath.Join(agent, "ca.crt"), "-token", labToken, "-log-level", "debug")
	gateway := func(withClientCert bool) *proc {
		args := []string{"-http-addr", "127.0.0.1:0", "-monitor-addr", monitor.addr,
			"-tls-cert", filepath.Join(gw, "gateway.crt"), "-tls-key", filepath.Join(gw, "gateway.key"),
			"-tls-ca", filepath.Join(gw, "ca.crt"), "-token", apiToken, "-backend-token", labToken}
		if withClientCert {
			args = append(args, "-tls-client-cert", filepath.Join(gw, "gateway.crt"), "-tls-client-key", filepath.Join(gw, "gateway.key"))
		}
		return start(t, "genailab-gateway", args...)
	}
	roots := x509.NewCertPool()
	caPEM, err := os.ReadFile(filepath.Join(ca, "ca.crt"))
	if err != nil || !roots.AppendCertsFromPEM(caPEM) {
		t.Fatalf("CA: %v", err)
	}
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13}}}
	get := func(addr, path, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "https://"+addr+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}

	good := gateway(true)
	if code, body := get(good.addr, "/v1/system", apiToken); code != http.StatusOK || !strings.HasPrefix(strings.TrimSpace(body), "{") {
		t.Fatalf("HTTPS → gateway → mTLS → monitor: %d %s\ngateway:\n%s\nmonitor:\n%s", code, body, good.output(), monitor.output())
	}
	if code, _ := get(good.addr, "/v1/system", ""); code != http.StatusUnauthorized {
		t.Errorf("no API token: %d, want 401", code)
	}
	// /health is open (it relays the orchestrator's health: 503 here, as none runs).
	if code, _ := get(good.addr, "/health", ""); code == http.StatusUnauthorized {
		t.Errorf("/health must stay open: %d", code)
	}
	// Plain HTTP to the HTTPS port is refused.
	if resp, err := http.Get("http://" + good.addr + "/health"); err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("plain HTTP served: %d", resp.StatusCode)
		}
	}

	bad := gateway(false)
	if code, body := get(bad.addr, "/v1/system", apiToken); code < 500 {
		t.Errorf("gateway without a client certificate reached the monitor: %d %s", code, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(monitor.output(), "refused TLS client") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	out := monitor.output()
	if !strings.Contains(out, "refused TLS client") || !strings.Contains(out, "no client certificate") {
		t.Errorf("the monitor did not log the refusal:\n%s", out)
	}
	for _, secret := range []string{labToken, apiToken, "PRIVATE KEY"} {
		for name, o := range map[string]string{"monitor": out, "gateway": good.output() + bad.output()} {
			if strings.Contains(o, secret) {
				t.Errorf("%s log holds a secret (%s)", name, secret)
			}
		}
	}
}
