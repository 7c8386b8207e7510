// Package grpcserver is the gRPC server every genailab service runs: a listener, the
// standard health service, server reflection, bearer-token auth, panic recovery and
// request logging, and a graceful shutdown bound to a context.
package grpcserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/genailab/genailab/pkg/addrfile"
	"github.com/genailab/genailab/pkg/auth"
	"github.com/genailab/genailab/pkg/sdnotify"
)

// MaxRequestBytes bounds one message a service receives. gRPC's default (4 MiB) refused an
// image edit between the services: its init image and mask may each be 16 MiB
// (imagereq.MaxUploadBytes).
const MaxRequestBytes = 40 << 20

// MaxResponseBytes bounds one message a caller of the services accepts (grpc.MaxCallRecvMsgSize
// in DialOptions): a batch of images comes back as one message.
const MaxResponseBytes = 256 << 20

// CallOptions are the default call options of a connection to a genailab service.
func CallOptions() grpc.DialOption {
	return grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxResponseBytes), grpc.MaxCallSendMsgSize(MaxRequestBytes))
}

// Options configure a Server.
type Options struct {
	// Addr is the listen address, e.g. "127.0.0.1:50051"; port 0 picks a free port.
	Addr string
	// AddrFile, when set, receives the bound address once the server listens (written
	// atomically), so that a launcher can start services on ephemeral ports.
	AddrFile string
	// Token, when set, is required as a bearer token on every call except health checks.
	Token string
	// TLS, when set, serves TLS (with client certificates when its ClientAuth says so).
	// TLS alone only encrypts: off loopback, callers must also be authenticated, by Token
	// or by client certificates (see ClientCertsRequired).
	TLS *tls.Config
	// AllowInsecureRemote allows a non-loopback address without client authentication
	// (neither a token nor mutual TLS): anyone who reaches the address can call.
	AllowInsecureRemote bool
	// ShutdownGrace bounds the graceful stop; streams still open then are cut. Default 5 s.
	ShutdownGrace time.Duration
	// Logger receives request and lifecycle logs.
	Logger *slog.Logger
	// ServerOptions are appended to the server's options.
	ServerOptions []grpc.ServerOption
	// HealthAddr, when set, is a second, plaintext listener serving only grpc.health.v1
	// with the main server's statuses (the same health service), for probes such as
	// Kubernetes' native gRPC probes that present neither a token nor a certificate. It is
	// unauthenticated by design: it carries no data.
	HealthAddr string
	// KeepaliveMinTime is the shortest interval between a client's keepalive pings that
	// the server accepts, with or without open streams (a client that pings more often is
	// sent GOAWAY "too_many_pings"). Default DefaultKeepaliveMinTime, which admits every
	// grpc-go client: they never ping more often than every 10 s.
	KeepaliveMinTime time.Duration
}

// DefaultKeepaliveMinTime is the default of Options.KeepaliveMinTime.
const DefaultKeepaliveMinTime = 5 * time.Second

// ErrInsecureRemote is returned for a non-loopback address without client
// authentication. Listen wraps it with what to set.
var ErrInsecureRemote = errors.New("refusing to serve on a non-loopback address without client authentication")

// Server is a listening gRPC server. Register services on GRPC() before Serve.
type Server struct {
	opts   Options
	log    *slog.Logger
	lis    net.Listener
	grpc   *grpc.Server
	health *health.Server
	// hlis and hgrpc are the health-only listener and server (nil without HealthAddr).
	hlis  net.Listener
	hgrpc *grpc.Server
}

// Listen opens the listener and builds the server.
func Listen(opts Options) (*Server, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = 5 * time.Second
	}
	if opts.KeepaliveMinTime <= 0 {
		opts.KeepaliveMinTime = DefaultKeepaliveMinTime
	}
	if err := checkRemoteAuth(opts, log); err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", opts.Addr, err)
	}
	guard := auth.NewGuard(opts.Token, log)
	// Callers (the orchestrator) ping idle connections and streams to find dead links;
	// the default policy (5 min, none without streams) would answer them with GOAWAY.
	enforce := grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: opts.KeepaliveMinTime, PermitWithoutStream: true})
	so := []grpc.ServerOption{
		enforce,
		grpc.MaxRecvMsgSize(MaxRequestBytes),
		grpc.ChainUnaryInterceptor(recoverUnary(log), logUnary(log), guard.UnaryInterceptor()),
		grpc.ChainStreamInterceptor(recoverStream(log), logStream(log), guard.StreamInterceptor()),
	}
	if opts.TLS != nil {
		so = append(so, grpc.Creds(credentials.NewTLS(opts.TLS)))
	}
	so = append(so, opts.ServerOptions...)
	s := &Server{opts: opts, log: log, lis: lis, grpc: grpc.NewServer(so...), health: health.NewServer()}
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	if opts.HealthAddr != "" {
		hlis, err := net.Listen("tcp", opts.HealthAddr)
		if err != nil {
			lis.Close()
			return nil, fmt.Errorf("listen %s (health): %w", opts.HealthAddr, err)
		}
		s.hlis = hlis
		s.hgrpc = grpc.NewServer(enforce, grpc.ChainUnaryInterceptor(recoverUnary(log)), grpc.ChainStreamInterceptor(recoverStream(log)))
		healthpb.RegisterHealthServer(s.hgrpc, s.health)
	}
	if opts.AddrFile != "" {
		if err := addrfile.Write(opts.AddrFile, s.Addr()); err != nil {
			lis.Close()
			return nil, fmt.Errorf("write address file: %w", err)
		}
	}
	return s, nil
}

// HealthAddr returns the bound address of the health-only listener ("" without one).
func (s *Server) HealthAddr() string {
	if s.hlis == nil {
		return ""
	}
	return s.hlis.Addr().String()
}

// GRPC returns the server to register services on.
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// Addr returns the bound address ("127.0.0.1:50051").
func (s *Server) Addr() string { return s.lis.Addr().String() }

// SetServing marks service (full name, e.g. "genailab.llm.v1.LLMService"; "" for the whole
// server) as SERVING or NOT_SERVING in the health service.
func (s *Server) SetServing(service string, serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus(service, st)
}

// Serve marks every registered service SERVING and serves until ctx is done, then stops
// gracefully (bounded by ShutdownGrace). It returns nil after a shutdown caused by ctx.
func (s *Server) Serve(ctx context.Context) error {
	for name := range s.grpc.GetServiceInfo() {
		s.SetServing(name, true)
	}
	s.SetServing("", true)
	errc := make(chan error, 1)
	go func() { errc <- s.grpc.Serve(s.lis) }()
	if s.hgrpc != nil {
		go func() {
			if err := s.hgrpc.Serve(s.hlis); err != nil {
				s.log.Warn("health listener stopped", "error", err)
			}
		}()
		s.log.Info("gRPC health listener (plaintext, health only)", "addr", s.HealthAddr())
	}
	s.log.Info("gRPC server listening", "addr", s.Addr(), "auth", s.opts.Token != "", "tls", s.opts.TLS != nil, "mtls", ClientCertsRequired(s.opts.TLS))
	// Every listener of the service is bound by now (Listen, and the HTTP ones started
	// before Serve): a Type=notify unit is started from here on.
	if err := sdnotify.Ready(); err != nil {
		s.log.Warn("tell systemd the service is ready", "error", err)
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve gRPC: %w", err)
	case <-ctx.Done():
	}
	_ = sdnotify.Stopping()
	s.health.Shutdown()
	if s.hgrpc != nil {
		s.hgrpc.Stop()
	}
	done := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.opts.ShutdownGrace):
		s.log.Warn("graceful stop timed out; closing remaining streams", "grace", s.opts.ShutdownGrace)
		s.grpc.Stop()
		<-done
	}
	if s.opts.AddrFile != "" {
		_ = os.Remove(s.opts.AddrFile)
	}
	s.log.Info("gRPC server stopped")
	return nil
}

// Close stops the server at once (for tests and start-up failures).
func (s *Server) Close() {
	s.grpc.Stop()
	_ = s.lis.Close()
	if s.hgrpc != nil {
		s.hgrpc.Stop()
		_ = s.hlis.Close()
	}
}

// checkRemoteAuth refuses a non-loopback address whose callers would not be
// authenticated: a token or mutual TLS is needed there, since TLS without client
// certificates only encrypts. AllowInsecureRemote overrides it, with a warning.
func checkRemoteAuth(opts Options, log *slog.Logger) error {
	if IsLoopback(opts.Addr) || opts.Token != "" || ClientCertsRequired(opts.TLS) {
		return nil
	}
	if opts.AllowInsecureRemote {
		log.Warn("serving on a non-loopback address without client authentication (allowed explicitly): anyone who reaches it can call",
			"addr", opts.Addr, "tls", opts.TLS != nil)
		return nil
	}
	if opts.TLS != nil {
		return fmt.Errorf("listen %s: %w: TLS without client certificates (-tls-cert and -tls-key alone) only encrypts, anyone can call; "+
			"set a bearer token (-token) or require client certificates (-tls-client-ca)", opts.Addr, ErrInsecureRemote)
	}
	return fmt.Errorf("listen %s: %w: set a bearer token (-token) or mutual TLS (-tls-cert, -tls-key and -tls-client-ca), "+
		"or listen on loopback", opts.Addr, ErrInsecureRemote)
}

// ClientCertsRequired reports whether c makes every client present a verified
// certificate (mutual TLS): crypto/tls verifies it (RequireAndVerifyClientCert), or
// a client CA is set and the configuration verifies certificates itself, as
// pkg/tlsconfig.Server does per connection (GetConfigForClient, VerifyConnection or
// VerifyPeerCertificate). A nil configuration, or one that asks for no certificate,
// authenticates nobody.
func ClientCertsRequired(c *tls.Config) bool {
	if c == nil {
		return false
	}
	switch c.ClientAuth {
	case tls.RequireAndVerifyClientCert:
		return true
	case tls.NoClientCert:
		return false
	}
	return c.ClientCAs != nil && (c.GetConfigForClient != nil || c.VerifyConnection != nil || c.VerifyPeerCertificate != nil)
}

// IsLoopback reports whether a listen address binds only loopback interfaces.
// An empty host ("" or ":8080") binds every interface, so it is not loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
