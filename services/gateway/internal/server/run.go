// Package server runs the REST gateway as an HTTP server bound to a context.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"

	"github.com/genailab/genailab/pkg/auth"
	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/pkg/tlsconfig"
	"github.com/genailab/genailab/services/gateway/internal/gateway"
)

// Options configure the gateway process.
type Options struct {
	// HTTPAddr is the listen address, default 127.0.0.1:8080.
	HTTPAddr string
	// AddrFile receives the bound address once listening.
	AddrFile string
	Backends gateway.Backends
	// Token is required from HTTP clients when set.
	Token string
	// BackendToken is sent to the gRPC services.
	BackendToken string
	// TLS, when set, serves HTTPS (asking for client certificates when it says so).
	TLS *tls.Config
	// BackendTLS, when set, dials the gRPC services over TLS (with its client certificate).
	BackendTLS *tls.Config
	// AllowInsecureRemote allows a non-loopback address without a token.
	AllowInsecureRemote bool
	MaxBodyBytes        int64
	Logger              *slog.Logger
}

// Run serves until ctx is done, then shuts down gracefully.
func Run(ctx context.Context, opts Options) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.HTTPAddr == "" {
		opts.HTTPAddr = "127.0.0.1:8080"
	}
	if !grpcserver.IsLoopback(opts.HTTPAddr) && opts.Token == "" && !opts.AllowInsecureRemote {
		return fmt.Errorf("gateway on %s: %w", opts.HTTPAddr, grpcserver.ErrInsecureRemote)
	}
	dial := []grpc.DialOption{grpc.WithTransportCredentials(tlsconfig.TransportCredentials(opts.BackendTLS))}
	if opts.BackendToken != "" {
		dial = append(dial, grpc.WithPerRPCCredentials(auth.TokenCredentials{Token: opts.BackendToken, Secure: opts.BackendTLS != nil}))
	}
	g, err := gateway.New(ctx, gateway.Options{
		Backends: opts.Backends, DialOptions: dial, Token: opts.Token,
		MaxBodyBytes: opts.MaxBodyBytes, Logger: log,
	})
	if err != nil {
		return err
	}
	defer g.Close()
	lis, err := net.Listen("tcp", opts.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", opts.HTTPAddr, err)
	}
	if opts.AddrFile != "" {
		if err := writeFileAtomic(opts.AddrFile, lis.Addr().String()); err != nil {
			lis.Close()
			return fmt.Errorf("write address file: %w", err)
		}
		defer os.Remove(opts.AddrFile)
	}
	srv := &http.Server{Handler: g, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	if opts.TLS != nil {
		srv.TLSConfig = opts.TLS
		go func() { errc <- srv.ServeTLS(lis, "", "") }()
	} else {
		go func() { errc <- srv.Serve(lis) }()
	}
	log.Info("REST gateway listening", "addr", lis.Addr().String(), "auth", opts.Token != "", "tls", opts.TLS != nil)
	select {
	case err := <-errc:
		return fmt.Errorf("serve HTTP: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shut down HTTP: %w", err)
	}
	return nil
}

func writeFileAtomic(path, content string) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
