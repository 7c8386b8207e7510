package tlsconfig_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/pkg/tlsconfig/pki"
)

// echoService is a hand-written service with one unary method that answers Empty.
var echoService = grpc.ServiceDesc{
	ServiceName: "test.Echo",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Ping",
		Handler: func(srv any, ctx context.Context, dec func(any) error, in grpc.UnaryServerInterceptor) (any, error) {
			req := new(emptypb.Empty)
			if err := dec(req); err != nil {
				return nil, err
			}
			h := func(context.Context, any) (any, error) { return &emptypb.Empty{}, nil }
			return in(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/test.Echo/Ping"}, h)
		},
	}},
}

// lab is a set of real certificate files: a lab CA, another CA, and leaves.
type lab struct {
	dir     string
	ca      *pki.Authority
	otherCA *pki.Authority
}

func newLab(t *testing.T) *lab {
	t.Helper()
	ca, err := pki.NewCA("genailab test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewCA("some other CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	l := &lab{dir: t.TempDir(), ca: ca, otherCA: other}
	l.write(t, "ca.crt", ca.CertPEM)
	l.write(t, "other-ca.crt", other.CertPEM)
	return l
}

func (l *lab) write(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(l.dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// issue writes <name>.crt and <name>.key signed by ca and returns their paths.
func (l *lab) issue(t *testing.T, ca *pki.Authority, name string, r pki.Request) (certFile, keyFile string) {
	t.Helper()
	r.CommonName = name
	is, err := ca.Issue(r)
	if err != nil {
		t.Fatal(err)
	}
	return l.write(t, name+".crt", is.CertPEM), l.write(t, name+".key", is.KeyPEM)
}

func (l *lab) path(name string) string { return filepath.Join(l.dir, name) }

// logBuffer collects a server's log lines; safe for the server's goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls the log for a line with every one of parts (the server logs a refusal
// before it sends the alert the client reacts to, but on its own goroutine).
func (b *logBuffer) waitFor(t *testing.T, parts ...string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, line := range strings.Split(b.String(), "\n") {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(line, p)
			}
			if ok {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q in:\n%s", parts, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// serve runs a real grpcserver on loopback with cfg and token; it returns the address.
func serve(t *testing.T, cfg *tls.Config, token string, logs *logBuffer) string {
	t.Helper()
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := grpcserver.Listen(grpcserver.Options{Addr: "127.0.0.1:0", TLS: cfg, Token: token, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	s.GRPC().RegisterService(&echoService, struct{}{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s.Addr()
}

// ping dials addr with the client configuration (and token) and calls test.Echo/Ping once.
func ping(t *testing.T, addr string, cfg *tls.Config, opts ...grpc.DialOption) error {
	t.Helper()
	cc, err := grpc.NewClient(addr, append(opts, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cc.Invoke(ctx, "/test.Echo/Ping", &emptypb.Empty{}, &emptypb.Empty{})
}

var loopback = []net.IP{net.ParseIP("127.0.0.1")}

func newLogger(b *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
