package genailab

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"

	"google.golang.org/grpc"

	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	modelsv1 "github.com/genailab/genailab/gen/models/v1"
	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/auth"
	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/pkg/tlsconfig"
)

// Default gRPC ports of a host's services (what `genailab up` uses).
const (
	DefaultLLMPort          = 50051
	DefaultDiffusionPort    = 50052
	DefaultMonitorPort      = 50053
	DefaultOrchestratorPort = 50054
	// DefaultHost is where the services are looked for when no address is given.
	DefaultHost = "127.0.0.1"
)

// Options say where the services are and how to reach them.
type Options struct {
	// Addr is the orchestrator: "host" (default port 50054) or "host:port"; empty means
	// 127.0.0.1. The other services default to the same host at their default ports.
	Addr string
	// LLMAddr, DiffusionAddr and MonitorAddr override a service's address: "host:port",
	// "host" (its default port) or ":port" (the orchestrator's host).
	LLMAddr, DiffusionAddr, MonitorAddr string

	// Token is sent as "authorization: Bearer <token>" with every call; empty sends none.
	// Without TLS it travels in clear text: use TLS beyond loopback.
	Token string

	// TLS, when set, is the TLS configuration to use.
	TLS *tls.Config
	// CAFile is a PEM file of the certificate authorities that sign the services'
	// certificates: set, the connections use TLS 1.3 (pkg/tlsconfig.Client).
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key (mutual TLS).
	CertFile, KeyFile string
	// ServerName overrides the name checked in the services' certificates (default: the
	// host of each address).
	ServerName string
	// Insecure allows sending the token without TLS to a service that is not on loopback
	// (otherwise Dial refuses: the token would travel in clear text).
	Insecure bool

	// DialOptions are appended to every channel's options.
	DialOptions []grpc.DialOption
}

// ErrBadAddress is returned for an address that is not "host" or "host:port".
var ErrBadAddress = errors.New("bad address")

// ErrTokenInClear is returned when a token would be sent without TLS beyond loopback.
var ErrTokenInClear = errors.New("refusing to send the token without TLS to a host that is not loopback (give a CA file, or allow it explicitly with Insecure)")

// Client holds one channel per service. It is safe for concurrent use.
type Client struct {
	addrs map[Service]string
	conns map[Service]*grpc.ClientConn
}

// Service names one of a host's services.
type Service string

// The services a Client talks to.
const (
	ServiceLLM          Service = "llm"
	ServiceDiffusion    Service = "diffusion"
	ServiceMonitor      Service = "monitor"
	ServiceOrchestrator Service = "orchestrator"
)

// Services lists every Service.
var Services = []Service{ServiceLLM, ServiceDiffusion, ServiceMonitor, ServiceOrchestrator}

// Addresses resolves the address of every service from the options.
func (o Options) Addresses() (map[Service]string, error) {
	host, orch, err := splitAddr(o.Addr, DefaultHost, DefaultOrchestratorPort)
	if err != nil {
		return nil, fmt.Errorf("orchestrator address: %w", err)
	}
	out := map[Service]string{ServiceOrchestrator: orch}
	for _, s := range []struct {
		svc  Service
		addr string
		port int
	}{{ServiceLLM, o.LLMAddr, DefaultLLMPort}, {ServiceDiffusion, o.DiffusionAddr, DefaultDiffusionPort}, {ServiceMonitor, o.MonitorAddr, DefaultMonitorPort}} {
		if s.addr == "" {
			out[s.svc] = net.JoinHostPort(host, strconv.Itoa(s.port))
			continue
		}
		_, a, err := splitAddr(s.addr, host, s.port)
		if err != nil {
			return nil, fmt.Errorf("%s address: %w", s.svc, err)
		}
		out[s.svc] = a
	}
	return out, nil
}

// splitAddr accepts "host", "host:port", ":port" (defHost) or "" (defHost, defPort) and
// returns the host and the full address.
func splitAddr(addr, defHost string, defPort int) (host, full string, err error) {
	if addr == "" {
		return defHost, net.JoinHostPort(defHost, strconv.Itoa(defPort)), nil
	}
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		// A bare host (or a bare IPv6 address).
		if ip := net.ParseIP(addr); ip != nil || validHost(addr) {
			return addr, net.JoinHostPort(addr, strconv.Itoa(defPort)), nil
		}
		return "", "", fmt.Errorf("%w %q: want host or host:port", ErrBadAddress, addr)
	}
	if h == "" {
		h = defHost
	}
	if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("%w %q: port must be 1..65535", ErrBadAddress, addr)
	}
	if net.ParseIP(h) == nil && !validHost(h) {
		return "", "", fmt.Errorf("%w %q: bad host name", ErrBadAddress, addr)
	}
	return h, net.JoinHostPort(h, p), nil
}

// validHost accepts DNS-style host names.
func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.', r == '_':
		default:
			return false
		}
	}
	return true
}

// Dial creates the client. Channels connect lazily: an unreachable service shows up as
// an Unavailable error on its first call, not here. Dial fails only on bad options
// (addresses, TLS files).
func Dial(o Options) (*Client, error) {
	addrs, err := o.Addresses()
	if err != nil {
		return nil, err
	}
	var cfg *tls.Config
	if o.usesTLS() || o.CertFile != "" || o.KeyFile != "" || o.ServerName != "" {
		if cfg, err = o.tlsConfig(); err != nil {
			return nil, err
		}
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(tlsconfig.TransportCredentials(cfg))}
	if o.Token != "" && cfg == nil && !o.Insecure {
		for _, svc := range Services {
			if !grpcserver.IsLoopback(addrs[svc]) {
				return nil, fmt.Errorf("%w: %s at %s", ErrTokenInClear, svc, addrs[svc])
			}
		}
	}
	if o.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(auth.TokenCredentials{Token: o.Token, Secure: o.usesTLS()}))
	}
	opts = append(opts, grpcserver.CallOptions()) // a batch of images is one answer
	opts = append(opts, o.DialOptions...)
	c := &Client{addrs: addrs, conns: map[Service]*grpc.ClientConn{}}
	for _, svc := range Services {
		cc, err := grpc.NewClient(addrs[svc], opts...)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("%s channel to %s: %w", svc, addrs[svc], err)
		}
		c.conns[svc] = cc
	}
	return c, nil
}

// Close closes every channel.
func (c *Client) Close() error {
	var errs []error
	for _, cc := range c.conns {
		errs = append(errs, cc.Close())
	}
	return errors.Join(errs...)
}

// Addr returns the address a service is reached at.
func (c *Client) Addr(s Service) string { return c.addrs[s] }

// Conn returns the channel of a service (for stubs the client has no accessor for,
// such as grpc.health.v1).
func (c *Client) Conn(s Service) *grpc.ClientConn { return c.conns[s] }

// LLM is the LLM service.
func (c *Client) LLM() llmv1.LLMServiceClient { return llmv1.NewLLMServiceClient(c.conns[ServiceLLM]) }

// Diffusion is the diffusion service.
func (c *Client) Diffusion() diffusionv1.DiffusionServiceClient {
	return diffusionv1.NewDiffusionServiceClient(c.conns[ServiceDiffusion])
}

// Monitor is the monitor service.
func (c *Client) Monitor() monitorv1.MonitorServiceClient {
	return monitorv1.NewMonitorServiceClient(c.conns[ServiceMonitor])
}

// Orchestrator is the orchestrator.
func (c *Client) Orchestrator() orchestratorv1.OrchestratorServiceClient {
	return orchestratorv1.NewOrchestratorServiceClient(c.conns[ServiceOrchestrator])
}

// Models is the model store of a type: the LLM service serves the LLM models, the
// diffusion service the diffusion models. For any other type every call fails with
// InvalidArgument.
func (c *Client) Models(t modelsv1.ModelType) modelsv1.ModelServiceClient {
	switch t {
	case modelsv1.ModelType_MODEL_TYPE_LLM:
		return modelsv1.NewModelServiceClient(c.conns[ServiceLLM])
	case modelsv1.ModelType_MODEL_TYPE_DIFFUSION:
		return modelsv1.NewModelServiceClient(c.conns[ServiceDiffusion])
	}
	return modelsv1.NewModelServiceClient(badTypeConn{t})
}
