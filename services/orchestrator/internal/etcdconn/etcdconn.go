// Package etcdconn is the orchestrator's connection to etcd (-state etcd): the endpoints,
// etcd's client TLS (CA, certificate, key files) and authentication (a user, its password
// read from a file: never on the command line), as flags, and the client they make.
package etcdconn

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Flags are the etcd client options.
type Flags struct {
	// Endpoints are etcd's client URLs, comma-separated on the command line.
	Endpoints string
	// CAFile, CertFile and KeyFile are etcd's client TLS: the CA that signed the members'
	// certificates, and this client's certificate and key (for client-cert-auth).
	CAFile, CertFile, KeyFile string
	// Username and PasswordFile authenticate with etcd's auth (the password is read from
	// the file, trailing newline removed).
	Username, PasswordFile string
	// DialTimeout bounds the first connection (default 5 s).
	DialTimeout time.Duration
}

// Register declares the flags on fs.
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.Endpoints, "etcd-endpoints", "", "with -state etcd: etcd's client `URLs`, comma-separated (e.g. https://etcd-0.etcd:2379,https://etcd-1.etcd:2379)")
	fs.StringVar(&f.CAFile, "etcd-ca-file", "", "etcd client TLS: the CA certificate of the etcd members (PEM)")
	fs.StringVar(&f.CertFile, "etcd-cert-file", "", "etcd client TLS: this orchestrator's client certificate (PEM)")
	fs.StringVar(&f.KeyFile, "etcd-key-file", "", "etcd client TLS: the key of -etcd-cert-file (PEM)")
	fs.StringVar(&f.Username, "etcd-user", "", "etcd authentication: the user name")
	fs.StringVar(&f.PasswordFile, "etcd-password-file", "", "etcd authentication: a file holding the password of -etcd-user")
	fs.DurationVar(&f.DialTimeout, "etcd-dial-timeout", 5*time.Second, "bound of the first connection to etcd")
}

// EndpointList is Endpoints split, empty entries dropped.
func (f Flags) EndpointList() []string {
	var out []string
	for _, e := range strings.Split(f.Endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// Validate checks the options that need no I/O.
func (f Flags) Validate() error {
	if len(f.EndpointList()) == 0 {
		return errors.New("-state etcd needs -etcd-endpoints")
	}
	if (f.CertFile == "") != (f.KeyFile == "") {
		return errors.New("-etcd-cert-file and -etcd-key-file go together")
	}
	if (f.Username == "") != (f.PasswordFile == "") {
		return errors.New("-etcd-user and -etcd-password-file go together")
	}
	return nil
}

// Client connects to etcd.
func (f Flags) Client() (*clientv3.Client, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	cfg := clientv3.Config{
		Endpoints: f.EndpointList(), DialTimeout: f.DialTimeout, Logger: zap.NewNop(),
		// A dead member's connection is found within seconds (the leader's lease is short).
		DialKeepAliveTime: 2 * time.Second, DialKeepAliveTimeout: 2 * time.Second,
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if f.CAFile != "" || f.CertFile != "" {
		tlsInfo := transport.TLSInfo{TrustedCAFile: f.CAFile, CertFile: f.CertFile, KeyFile: f.KeyFile}
		tc, err := tlsInfo.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("etcd client TLS: %w", err)
		}
		cfg.TLS = tc
	}
	if f.Username != "" {
		pw, err := os.ReadFile(f.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("etcd password: %w", err)
		}
		cfg.Username, cfg.Password = f.Username, strings.TrimRight(string(pw), "\r\n")
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to etcd %s: %w", f.Endpoints, err)
	}
	return cli, nil
}
