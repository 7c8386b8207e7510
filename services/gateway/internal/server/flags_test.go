package server

import (
	"errors"
	"flag"
	"testing"

	"github.com/genailab/genailab/pkg/config"
	"github.com/genailab/genailab/pkg/grpcserver"
)

// The gateway's flags fill Options from the command line and GENAILAB_GATEWAY_* alike,
// TLS file flags included (they were main's).
func TestRegisterFlags(t *testing.T) {
	var o Options
	fs := flag.NewFlagSet("genailab-gateway", flag.ContinueOnError)
	o.RegisterFlags(fs)
	t.Setenv("GENAILAB_GATEWAY_TLS_CA", "/ca.pem")
	if err := config.Parse(fs, []string{"-tls-cert", "/c.pem", "-backend-token", "b"}, "GENAILAB_GATEWAY_"); err != nil {
		t.Fatal(err)
	}
	if o.HTTPAddr != DefaultHTTPAddr || o.TLS.Cert != "/c.pem" || o.BackendTLS.CA != "/ca.pem" || o.BackendToken != "b" || o.Backends.Orchestrator != "127.0.0.1:50054" {
		t.Fatalf("%+v", o)
	}
}

func TestValidateRefusesAnOpenRemoteGateway(t *testing.T) {
	if err := (Options{HTTPAddr: "0.0.0.0:8080"}).Validate(); !errors.Is(err, grpcserver.ErrInsecureRemote) {
		t.Fatalf("remote without a token: %v", err)
	}
	for _, o := range []Options{{}, {HTTPAddr: "0.0.0.0:8080", Token: "t"}, {HTTPAddr: "0.0.0.0:8080", AllowInsecureRemote: true}} {
		if err := o.Validate(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
}
