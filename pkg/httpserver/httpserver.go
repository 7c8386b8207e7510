// Package httpserver runs the small HTTP servers of genailab's services (the REST
// gateway, the diffusion service's seed wrapper, the monitor's /metrics): listen,
// report the bound address, serve in the background, and shut down gracefully.
package httpserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/genailab/genailab/pkg/addrfile"
)

// Options configure a server.
type Options struct {
	// Name says what the server is in logs ("seed HTTP wrapper", "metrics").
	Name string
	// Addr is the listen address; port 0 picks a free port.
	Addr string
	// AddrFile, when set, receives the bound address (written atomically) and is
	// removed at shutdown.
	AddrFile string
	Handler  http.Handler
	// TLS, when set, serves HTTPS (HTTP/2 and HTTP/1.1) with this configuration.
	TLS *tls.Config
	// ShutdownGrace bounds the graceful shutdown; default 5 s.
	ShutdownGrace time.Duration
	// BodyReadTimeout bounds reading one request's body (a slow-body client is cut off),
	// default 60 s; it is lifted once the body is read, so long streamed responses are not cut.
	BodyReadTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle that long; default 120 s.
	IdleTimeout time.Duration
	// MaxConns caps the connections served at once (more wait in the kernel's accept queue);
	// default 1024.
	MaxConns int
	Logger   *slog.Logger
}

// Server is a running HTTP server.
type Server struct {
	opts Options
	log  *slog.Logger
	addr string
	hs   *http.Server
	done chan struct{}
}

// Start listens and serves in the background.
func Start(opts Options) (*Server, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = 5 * time.Second
	}
	if opts.BodyReadTimeout <= 0 {
		opts.BodyReadTimeout = 60 * time.Second
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 120 * time.Second
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 1024
	}
	lis, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s for %s: %w", opts.Addr, opts.Name, err)
	}
	s := &Server{opts: opts, log: log, addr: lis.Addr().String(), done: make(chan struct{}),
		hs: &http.Server{Handler: bodyDeadline(opts.Handler, opts.BodyReadTimeout), ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout: opts.IdleTimeout, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}}
	lis = limitListener(lis, opts.MaxConns)
	if opts.AddrFile != "" {
		if err := addrfile.Write(opts.AddrFile, s.addr); err != nil {
			lis.Close()
			return nil, fmt.Errorf("write address file of %s: %w", opts.Name, err)
		}
	}
	go func() {
		defer close(s.done)
		serve := func() error { return s.hs.Serve(lis) }
		if opts.TLS != nil {
			s.hs.TLSConfig = opts.TLS
			serve = func() error { return s.hs.ServeTLS(lis, "", "") }
		}
		if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(opts.Name+" failed", "err", err)
		}
	}()
	log.Info(opts.Name+" listening", "addr", s.addr, "tls", opts.TLS != nil)
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.addr }

// Done is closed when the server has stopped serving.
func (s *Server) Done() <-chan struct{} { return s.done }

// Stop shuts down gracefully (bounded by ShutdownGrace, then closes the remaining
// connections) and removes the address file.
func (s *Server) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownGrace)
	defer cancel()
	if err := s.hs.Shutdown(ctx); err != nil {
		s.hs.Close()
	}
	<-s.done
	if s.opts.AddrFile != "" {
		_ = os.Remove(s.opts.AddrFile)
	}
}
