package grpcserver

import (
	"flag"
	"log/slog"

	"github.com/genailab/genailab/pkg/auth"
	"github.com/genailab/genailab/pkg/tlsconfig"
)

// Flags is the listener configuration every genailab gRPC service shares, as its command line
// gives it: -grpc-addr, -health-addr, -addr-file, -token (or -token-file), and -tls-cert,
// -tls-key and -tls-client-ca. A service's Options hold one; Options turns it into the
// server's Options when the service starts.
type Flags struct {
	// Addr is the listen address (-grpc-addr); port 0 picks a free port.
	Addr string
	// HealthAddr is the plaintext health-only listener for probes (-health-addr; empty: none).
	HealthAddr string
	// AddrFile receives the bound address once listening (-addr-file).
	AddrFile string
	// Token, when set, is required as a bearer token from callers (-token, -token-file).
	Token string
	// TLS are the server's certificate files (none: plain TCP; see tlsconfig.ServerFlags).
	TLS tlsconfig.ServerFlags
}

// Register declares the flags on fs: -grpc-addr defaults to addr, and tokenUsage says what
// the bearer token is for ("bearer token required from callers").
func (f *Flags) Register(fs *flag.FlagSet, addr, tokenUsage string) {
	fs.StringVar(&f.Addr, "grpc-addr", addr, "gRPC listen address")
	fs.StringVar(&f.HealthAddr, "health-addr", "", "plaintext gRPC health-only listen address for probes (empty: none)")
	fs.StringVar(&f.AddrFile, "addr-file", "", "write the bound gRPC address to this file once listening")
	auth.TokenFlags(fs, &f.Token, "token", tokenUsage)
	f.TLS.Register(fs)
}

// Options returns the server options the flags give, loading the TLS files; log is the
// server's Logger and receives the TLS configuration's logs. An empty Addr is defaultAddr.
func (f Flags) Options(defaultAddr string, log *slog.Logger) (Options, error) {
	tls, err := f.TLS.Config(log)
	if err != nil {
		return Options{}, err
	}
	addr := f.Addr
	if addr == "" {
		addr = defaultAddr
	}
	return Options{Addr: addr, HealthAddr: f.HealthAddr, AddrFile: f.AddrFile, Token: f.Token, TLS: tls, Logger: log}, nil
}
