package agent

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
)

// Spec is one host's configuration: its name and its services' gRPC addresses.
type Spec struct {
	Name                                string
	LLMAddr, DiffusionAddr, MonitorAddr string
	// BudgetBytes, when not 0, caps what this host's engines may use together (overrides
	// the orchestrator's -budget-bytes for this host).
	BudgetBytes uint64
	// Discovered marks a host found by DNS (removed when it leaves the answer).
	Discovered bool
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// ParseSpecs reads the -hosts flag: entries separated by ";" (or newlines), each
// "name=llm-addr,diffusion-addr,monitor-addr[,budget=BYTES]".
func ParseSpecs(s string) ([]Spec, error) {
	var out []Spec
	seen := map[string]bool{}
	for _, raw := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == '\n' }) {
		entry := strings.TrimSpace(raw)
		if entry == "" {
			continue
		}
		name, rest, ok := strings.Cut(entry, "=")
		if !ok {
			return nil, fmt.Errorf("host %q: want name=llm-addr,diffusion-addr,monitor-addr", entry)
		}
		name = strings.TrimSpace(name)
		if !nameRE.MatchString(name) {
			return nil, fmt.Errorf("host name %q: letters, digits, '.', '_' and '-' only, at most 63", name)
		}
		if seen[name] {
			return nil, fmt.Errorf("host %q is listed twice", name)
		}
		seen[name] = true
		parts := strings.Split(rest, ",")
		if len(parts) < 3 {
			return nil, fmt.Errorf("host %q: want three addresses (llm, diffusion, monitor), got %d", name, len(parts))
		}
		sp := Spec{Name: name}
		for i, p := range parts[:3] {
			p = strings.TrimSpace(p)
			if _, _, err := net.SplitHostPort(p); err != nil {
				return nil, fmt.Errorf("host %q: address %q: %w", name, p, err)
			}
			*[]*string{&sp.LLMAddr, &sp.DiffusionAddr, &sp.MonitorAddr}[i] = p
		}
		for _, opt := range parts[3:] {
			k, v, _ := strings.Cut(strings.TrimSpace(opt), "=")
			switch k {
			case "budget":
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("host %q: budget %q: %w", name, v, err)
				}
				sp.BudgetBytes = n
			default:
				return nil, fmt.Errorf("host %q: unknown option %q (budget=BYTES)", name, k)
			}
		}
		out = append(out, sp)
	}
	return out, nil
}

// Ports are the agents' gRPC ports on every host found by DNS.
type Ports struct{ LLM, Diffusion, Monitor int }

// ParsePorts reads "llm,diffusion,monitor" ports, e.g. "50051,50052,50053".
func ParsePorts(s string) (Ports, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return Ports{}, fmt.Errorf("agent ports %q: want llm,diffusion,monitor", s)
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || v < 1 || v > 65535 {
			return Ports{}, fmt.Errorf("agent port %q: want 1-65535", p)
		}
		n[i] = v
	}
	return Ports{n[0], n[1], n[2]}, nil
}

// SpecFor is the host found at ip by DNS: named by its address, its services on p.
func (p Ports) SpecFor(ip string) Spec {
	a := func(port int) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }
	return Spec{Name: ip, LLMAddr: a(p.LLM), DiffusionAddr: a(p.Diffusion), MonitorAddr: a(p.Monitor), Discovered: true}
}
