package tlsconfig

import (
	"crypto/tls"
	"errors"
	"flag"
	"log/slog"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// ServerFlags are a service's -tls-cert, -tls-key and -tls-client-ca flags.
type ServerFlags struct {
	Cert, Key, ClientCA string
}

// Register declares the flags on fs.
func (f *ServerFlags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.Cert, "tls-cert", "", "PEM certificate this service presents (with -tls-key: serve TLS 1.3)")
	fs.StringVar(&f.Key, "tls-key", "", "PEM private key of -tls-cert")
	fs.StringVar(&f.ClientCA, "tls-client-ca", "", "PEM CA certificate(s); when set, callers must present a certificate signed by one (mutual TLS)")
}

// Config returns nil when no flag is set (plain TCP), a mutual-TLS configuration with
// -tls-client-ca, or server-only TLS without it.
func (f ServerFlags) Config(log *slog.Logger) (*tls.Config, error) {
	switch {
	case f.Cert == "" && f.Key == "" && f.ClientCA == "":
		return nil, nil
	case f.Cert == "" || f.Key == "":
		return nil, errors.New("-tls-cert and -tls-key must be set together (and -tls-client-ca needs them)")
	case f.ClientCA == "":
		return ServerWithoutClientCerts(f.Cert, f.Key)
	default:
		return Server(f.Cert, f.Key, f.ClientCA, WithLogger(log))
	}
}

// ClientFlags are a caller's -tls-ca, -tls-client-cert, -tls-client-key and
// -tls-server-name flags, used to dial the services.
type ClientFlags struct {
	CA, Cert, Key, ServerName string
}

// Register declares the flags on fs; what names the services dialled.
func (f *ClientFlags) Register(fs *flag.FlagSet, what string) {
	fs.StringVar(&f.CA, "tls-ca", "", "PEM CA certificate(s) that sign the "+what+"' certificates (set: dial them over TLS 1.3)")
	fs.StringVar(&f.Cert, "tls-client-cert", "", "PEM client certificate presented to the "+what+" (mutual TLS)")
	fs.StringVar(&f.Key, "tls-client-key", "", "PEM private key of -tls-client-cert")
	fs.StringVar(&f.ServerName, "tls-server-name", "", "name expected in the "+what+"' certificates (default: the host of each address)")
}

// Config returns nil when no flag is set (plain TCP), else a client configuration.
func (f ClientFlags) Config() (*tls.Config, error) {
	if f.CA == "" && f.Cert == "" && f.Key == "" && f.ServerName == "" {
		return nil, nil
	}
	if f.CA == "" {
		return nil, errors.New("-tls-ca is required with -tls-client-cert, -tls-client-key or -tls-server-name")
	}
	return Client(f.CA, f.Cert, f.Key, f.ServerName)
}

// TransportCredentials returns TLS credentials for c, or insecure ones when c is nil.
func TransportCredentials(c *tls.Config) credentials.TransportCredentials {
	if c == nil {
		return insecure.NewCredentials()
	}
	return credentials.NewTLS(c)
}
