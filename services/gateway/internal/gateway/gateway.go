// Package gateway is genailab's REST gateway: grpc-gateway handlers for every service,
// routed to the services' gRPC addresses, with the seed's JSON error shape, a body size
// cap, optional bearer-token auth, the OpenAPI document at /openapi.json (package
// apidoc), and the web control panel (package web) at /.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/genailab/genailab/clients/web"
	diffusionv1 "github.com/genailab/genailab/gen/diffusion/v1"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	modelsv1 "github.com/genailab/genailab/gen/models/v1"
	monitorv1 "github.com/genailab/genailab/gen/monitor/v1"
	"github.com/genailab/genailab/gen/openapi"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/pkg/auth"
	"github.com/genailab/genailab/pkg/grpcserver"
	"github.com/genailab/genailab/pkg/imagereq"
	"github.com/genailab/genailab/services/gateway/internal/apidoc"
	"github.com/genailab/genailab/services/gateway/internal/openai"
)

// DefaultMaxBodyBytes caps request bodies (prompts and model requests are small).
const DefaultMaxBodyBytes = 1 << 20

// DefaultMaxUploadBytes caps an image edit's multipart body: the image and its mask, each
// at most imagereq.MaxUploadBytes, and the form's text fields. The JSON image routes
// (imageParamsPaths) take its base64 plus MaxBodyBytes.
const DefaultMaxUploadBytes = 2*imagereq.MaxUploadBytes + 1<<20

// Backends are the gRPC addresses of the services behind the gateway. An empty address
// leaves that service's routes unregistered: they answer 404.
type Backends struct {
	LLM          string
	Diffusion    string
	Monitor      string
	Orchestrator string
}

// Options configure the gateway.
type Options struct {
	Backends Backends
	// DialOptions are used for every backend connection (TLS, per-RPC token). Without
	// them, connections are plaintext (loopback).
	DialOptions []grpc.DialOption
	// Token, when set, is required as a bearer token on every request except GET /health.
	Token string
	// MaxBodyBytes caps request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxUploadBytes caps the body of an image edit (POST /openai/v1/images/edits, the
	// uploaded images); 0 means DefaultMaxUploadBytes.
	MaxUploadBytes int64
	// HealthMaxAge is how old the orchestrator's answer to GET /health may be (from its
	// call's start to the request's arrival); 0 means DefaultHealthMaxAge, a negative
	// value a call started after every request's arrival.
	HealthMaxAge time.Duration
	Logger       *slog.Logger
}

// Gateway is the HTTP handler and the backend connections it owns.
type Gateway struct {
	handler http.Handler
	conns   []*grpc.ClientConn
}

// New dials the backends (lazily: grpc connects on first use) and builds the handler.
func New(ctx context.Context, opts Options) (*Gateway, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxUploadBytes <= 0 {
		opts.MaxUploadBytes = DefaultMaxUploadBytes
	}
	if opts.HealthMaxAge == 0 {
		opts.HealthMaxAge = DefaultHealthMaxAge
	}
	mux := runtime.NewServeMux(
		runtime.WithErrorHandler(handleError),
		runtime.WithStreamErrorHandler(handleStreamError),
		runtime.WithRoutingErrorHandler(handleRoutingError),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &streamMarshaler{JSONPb: &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{},
		}}),
	)
	g := &Gateway{}
	dial := func(addr string) (*grpc.ClientConn, error) {
		if addr == "" {
			return nil, nil
		}
		do := opts.DialOptions
		if len(do) == 0 {
			do = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
		}
		do = append(do[:len(do):len(do)], grpcserver.CallOptions()) // a batch of images is one answer
		cc, err := grpc.NewClient(addr, do...)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		g.conns = append(g.conns, cc)
		return cc, nil
	}
	b := opts.Backends
	llm, err := dial(b.LLM)
	if err != nil {
		return nil, err
	}
	diff, err := dial(b.Diffusion)
	if err != nil {
		return nil, err
	}
	mon, err := dial(b.Monitor)
	if err != nil {
		return nil, err
	}
	orch, err := dial(b.Orchestrator)
	if err != nil {
		return nil, err
	}
	var errs []error
	if llm != nil {
		errs = append(errs, llmv1.RegisterLLMServiceHandler(ctx, mux, llm))
	}
	if diff != nil {
		errs = append(errs, diffusionv1.RegisterDiffusionServiceHandler(ctx, mux, diff))
	}
	if mon != nil {
		errs = append(errs, monitorv1.RegisterMonitorServiceHandler(ctx, mux, mon))
	}
	if orch != nil {
		errs = append(errs, orchestratorv1.RegisterOrchestratorServiceHandler(ctx, mux, orch))
	}
	router := &modelRouter{}
	if llm != nil {
		router.llm = modelsv1.NewModelServiceClient(llm)
	}
	if diff != nil {
		router.diffusion = modelsv1.NewModelServiceClient(diff)
	}
	errs = append(errs, modelsv1.RegisterModelServiceHandlerClient(ctx, mux, router))
	if err := errors.Join(errs...); err != nil {
		g.Close()
		return nil, fmt.Errorf("register gateway handlers: %w", err)
	}

	doc, err := apidoc.Build(openapi.JSON, apidoc.Fragment{JSON: openai.OpenAPI, ErrorDefinition: openai.ErrorDefinition})
	if err != nil {
		g.Close()
		return nil, err
	}
	top := http.NewServeMux()
	top.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	})
	top.Handle("/", mux)
	var health *healthGroup
	if orch != nil {
		health = &healthGroup{client: orchestratorv1.NewOrchestratorServiceClient(orch), mux: mux, maxAge: opts.HealthMaxAge}
		top.Handle("GET /health", health)
	}
	top.Handle(openai.Prefix, openai.New(orchestratorClient(orch), llmClient(llm), log))
	guard := auth.NewGuard(opts.Token, log)
	// An image edit's uploads are bigger than any other body: the routes that carry them
	// have their own caps (the multipart edit's, and base64 of it for the JSON routes).
	bodies, uploads := edge(top, opts.MaxBodyBytes), edge(top, opts.MaxUploadBytes)
	jsonUploads := edge(top, base64Len(opts.MaxUploadBytes)+opts.MaxBodyBytes)
	capped := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == openai.EditsPath:
			uploads.ServeHTTP(w, r)
		case imageParamsPaths[r.URL.Path]:
			jsonUploads.ServeHTTP(w, r)
		default:
			bodies.ServeHTTP(w, r)
		}
	})
	api := guard.Middleware(capped, "/health")
	// The web control panel's static files need no token (they hold no data; the page asks
	// for the token and sends it with every API call). Everything else, including unknown
	// paths (JSON 404), stays with the API.
	root := http.NewServeMux()
	panel := web.Handler()
	root.Handle("GET /{$}", panel)
	root.Handle("GET /index.html", panel)
	root.Handle("GET "+web.AssetPrefix, panel)
	root.Handle("/", api)
	g.handler = root
	if health != nil {
		g.handler = healthFirst(health, root)
	}
	return g, nil
}

// healthFirst answers a plain GET /health before any routing: a request that the chain
// would hand to health unchanged (the guard leaves /health open, edge finds nothing to
// refuse in a URL without a query or escapes and caps no body) skips two muxes and edge's
// wrappers, which cost more than sharing the orchestrator's answer (BenchmarkHealthHandler):
// probes and load balancers ask often. Any other request, /health with a query or a body
// included, takes the whole chain and gets the same answers as before.
func healthFirst(health, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" && r.URL.RawPath == "" && r.URL.RawQuery == "" && r.ContentLength == 0 &&
			(r.Method == http.MethodGet || r.Method == http.MethodHead) {
			health.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// imageParamsPaths are the JSON routes whose body holds ImageParams, whose init_image and
// mask (an edit's uploads, base64 in JSON) may each be up to imagereq.MaxUploadBytes: the
// panel's Diffusion tab sends edits to /v1/images/generate for its progress stream.
var imageParamsPaths = map[string]bool{
	"/v1/images/generate":    true, // OrchestratorService.GenerateImage
	"/v1/images/jobs":        true, // OrchestratorService.SubmitJob
	"/v1/diffusion/generate": true, // DiffusionService.GenerateImage
}

// base64Len is the length of n bytes in standard base64, padded.
func base64Len(n int64) int64 { return (n + 2) / 3 * 4 }

// ServeHTTP implements http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.handler.ServeHTTP(w, r) }

// Close closes the backend connections.
func (g *Gateway) Close() {
	for _, cc := range g.conns {
		_ = cc.Close()
	}
}

// orchestratorClient and llmClient give the OpenAI surface its clients (nil when the
// backend is not configured).
func orchestratorClient(cc *grpc.ClientConn) orchestratorv1.OrchestratorServiceClient {
	if cc == nil {
		return nil
	}
	return orchestratorv1.NewOrchestratorServiceClient(cc)
}

func llmClient(cc *grpc.ClientConn) llmv1.LLMServiceClient {
	if cc == nil {
		return nil
	}
	return llmv1.NewLLMServiceClient(cc)
}
