package genailab

import (
	"crypto/tls"
	"errors"
	"fmt"

	"github.com/genailab/genailab/pkg/tlsconfig"
)

// usesTLS reports whether the options ask for TLS: a configuration or a CA file.
func (o Options) usesTLS() bool { return o.TLS != nil || o.CAFile != "" }

// tlsConfig builds the TLS configuration: o.TLS as given, or pkg/tlsconfig's client
// configuration (TLS 1.3) from the PEM files, the same as the services use to call each other.
func (o Options) tlsConfig() (*tls.Config, error) {
	files := o.CAFile != "" || o.CertFile != "" || o.KeyFile != ""
	switch {
	case o.TLS != nil && files:
		return nil, errors.New("tls: give a TLS configuration or PEM files, not both")
	case o.TLS != nil:
		cfg := o.TLS.Clone()
		if o.ServerName != "" {
			cfg.ServerName = o.ServerName
		}
		return cfg, nil
	case o.CAFile == "":
		return nil, errors.New("tls: a CA file is required with a client certificate, key or server name")
	}
	cfg, err := tlsconfig.Client(o.CAFile, o.CertFile, o.KeyFile, o.ServerName)
	if err != nil {
		return nil, fmt.Errorf("dial genailab: %w", err)
	}
	return cfg, nil
}
