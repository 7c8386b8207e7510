package server

import (
	"errors"
	"flag"
	"maps"
	"testing"

	"github.com/genailab/genailab/pkg/config"
	"github.com/genailab/genailab/services/monitor/internal/telemetry"
)

func parseFlags(t *testing.T, args ...string) (Options, error) {
	t.Helper()
	var o Options
	fs := flag.NewFlagSet("genailab-monitor", flag.ContinueOnError)
	o.RegisterFlags(fs)
	return o, config.Parse(fs, args, "GENAILAB_MONITOR_")
}

// -managed-names is parsed while the flags are (it was parsed in main): its default, an empty
// value (no process managed by name), the environment, and a bad pair.
func TestManagedNamesFlag(t *testing.T) {
	o, err := parseFlags(t)
	if err != nil || !maps.Equal(o.ManagedProcessNames, telemetry.DefaultManagedNames()) || o.GRPC.Addr != DefaultGRPCAddr {
		t.Fatalf("defaults: %v, %v, %q", o.ManagedProcessNames, err, o.GRPC.Addr)
	}
	if o, err = parseFlags(t, "-managed-names", ""); err != nil || o.ManagedProcessNames == nil || len(o.ManagedProcessNames) != 0 {
		t.Fatalf("empty: %v, %v", o.ManagedProcessNames, err)
	}
	t.Setenv("GENAILAB_MONITOR_MANAGED_NAMES", "my-llama=llm")
	if o, err = parseFlags(t); err != nil || !maps.Equal(o.ManagedProcessNames, map[string]string{"my-llama": "llm"}) {
		t.Fatalf("env: %v, %v", o.ManagedProcessNames, err)
	}
	if _, err = parseFlags(t, "-managed-names", "bogus"); err == nil {
		t.Fatal("a pair without a role must fail")
	}
}

func TestValidateRefusesRemoteMetrics(t *testing.T) {
	if err := (Options{MetricsAddr: "0.0.0.0:0"}).Validate(); !errors.Is(err, ErrRemoteMetrics) {
		t.Fatalf("remote metrics: %v", err)
	}
	for _, o := range []Options{{}, {MetricsAddr: MetricsOff}, {MetricsAddr: "0.0.0.0:0", AllowRemoteMetrics: true}} {
		if err := o.Validate(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
}
