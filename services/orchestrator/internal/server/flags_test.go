package server

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/genailab/genailab/pkg/config"
	"github.com/genailab/genailab/services/orchestrator/internal/agent"
	"github.com/genailab/genailab/services/orchestrator/internal/place"
)

func parseFlags(t *testing.T, args ...string) (Options, error) {
	t.Helper()
	var o Options
	fs := flag.NewFlagSet("genailab-orchestrator", flag.ContinueOnError)
	fs.SetOutput(&strings.Builder{})
	o.RegisterFlags(fs)
	return o, config.Parse(fs, args, "GENAILAB_ORCHESTRATOR_")
}

// -hosts, -agent-ports, -placement-policy and -queue-size are parsed with the flags (main
// parsed the first three and checked the last): their defaults, and a value from each source.
func TestParsedFlags(t *testing.T) {
	o, err := parseFlags(t)
	if err != nil {
		t.Fatal(err)
	}
	if o.Hosts != nil || o.DNSPorts != (agent.Ports{LLM: 50051, Diffusion: 50052, Monitor: 50053}) ||
		o.Placement.Policy != place.Binpack || o.QueueSize != 8 || o.GRPC.Addr != DefaultGRPCAddr {
		t.Fatalf("defaults: hosts %v, ports %+v, policy %v, queue %d, addr %q", o.Hosts, o.DNSPorts, o.Placement.Policy, o.QueueSize, o.GRPC.Addr)
	}

	yaml := filepath.Join(t.TempDir(), "orchestrator.yaml")
	if err := os.WriteFile(yaml, []byte("hosts: a=h:1,h:2,h:3;b=i:1,i:2,i:3\nplacement-policy: spread\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GENAILAB_ORCHESTRATOR_AGENT_PORTS", "1,2,3")
	o, err = parseFlags(t, "-config", yaml, "-queue-size", "2")
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Hosts) != 2 || o.Hosts[1].Name != "b" || o.Hosts[1].MonitorAddr != "i:3" || o.Placement.Policy != place.Spread ||
		o.DNSPorts != (agent.Ports{LLM: 1, Diffusion: 2, Monitor: 3}) || o.QueueSize != 2 {
		t.Fatalf("from YAML, env and flags: hosts %+v, ports %+v, policy %v, queue %d", o.Hosts, o.DNSPorts, o.Placement.Policy, o.QueueSize)
	}
}

func TestBadFlagsAreRefused(t *testing.T) {
	for _, args := range [][]string{
		{"-hosts", "no-equals"}, {"-agent-ports", "1,2"}, {"-placement-policy", "random"},
		{"-queue-size", "0"}, {"-queue-size", "8x"},
	} {
		if _, err := parseFlags(t, args...); err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%v: %v, want an error naming the flag", args, err)
		}
	}
	o, err := parseFlags(t, "-agent-keepalive-time", "-1s")
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Validate(); err == nil {
		t.Error("a negative keepalive must fail Validate")
	}
	if err := (Options{QueueSize: -1}).Validate(); err == nil {
		t.Error("a negative queue size must fail Validate")
	}
	if err := (Options{}).Validate(); err != nil {
		t.Errorf("zero options (defaults): %v", err)
	}
}
