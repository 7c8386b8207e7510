// Package service implements genailab.llm.v1.LLMService: it supervises one
// llama-server process through pkg/supervisor and relays chat to it.
//
// One idea per file: config.go, autoconf.go and args.go resolve an LLMConfig
// into llama-server's command line (automatic threads, context and GPU
// layers, allow-listed extra arguments); spec.go turns it into a supervisor
// Spec (readiness on /health, parsed logs, stop escalation, restart policy);
// lifecycle.go holds Start, Stop and Restart; gate.go is the admission of
// chat requests (waiting while the server is offloaded or starting, draining,
// interrupting); chat.go relays chat; info.go, watch.go and logs.go serve
// GetInfo, WatchInfo and StreamLogs.
//
// The llama-server process is owned by the supervisor's goroutine; this
// package keeps only what the supervisor does not know: the configuration
// in use, whether the server is stopped for an offload, and the chat
// requests in flight.
package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	"github.com/genailab/genailab/pkg/logring"
	"github.com/genailab/genailab/pkg/modelstore"
	"github.com/genailab/genailab/pkg/supervisor"
)

// Defaults of Options.
const (
	DefaultReadyTimeout     = 120 * time.Second
	DefaultChatWaitTimeout  = 5 * time.Minute
	DefaultMaxTokens        = 1024
	DefaultMaxAutoContext   = 8192
	DefaultHealthInterval   = 5 * time.Second
	DefaultTermGrace        = 5 * time.Second
	DefaultLogLines         = 2000
	maxTokensLimit          = 1 << 20
	maxChatMessages         = 4096
	maxChatBytes            = 8 << 20
	engineName              = "llama-server"
	defaultEventRingEntries = 512
)

// Options configure a Service.
type Options struct {
	// Store is the llm model store; model ids resolve to files through it.
	Store *modelstore.Store
	// LlamaServer is the configured llama-server path; "" resolves it like
	// pkg/llamabin does (GENAILAB_LLAMA_SERVER, PATH, .engines), at every
	// start, so an engine installed later is found.
	LlamaServer string
	// DefaultModel is used when a StartRequest names no model.
	DefaultModel string
	// LogDir receives llama-server.log (rotated); "" keeps logs in memory
	// only. PidDir receives the pid file (see supervisor.ReapStale).
	LogDir string
	PidDir string
	// ReadyTimeout bounds a start when the request gives none.
	ReadyTimeout time.Duration
	// ChatWaitTimeout bounds how long a chat waits for an offloaded or
	// starting server when the request gives no wait_timeout_ms.
	ChatWaitTimeout time.Duration
	// DefaultMaxTokens is the max_tokens of a chat that gives none.
	DefaultMaxTokens int
	// MaxAutoContext caps the automatic context size.
	MaxAutoContext int
	// HealthInterval is the period of health checks while running.
	HealthInterval time.Duration
	// TermGrace is the wait after each SIGTERM before escalating.
	TermGrace time.Duration
	// Restart tunes automatic restarts (enabled per start by
	// LLMConfig.auto_restart); zero values take the supervisor's defaults:
	// never give up, back off up to 5 minutes, a 10-minute run ends a crash
	// streak.
	Restart supervisor.RestartPolicy
	// AllowRemoteBind lets a Start ask llama-server to listen on an address
	// other than loopback (LLMConfig.host). Without it such a Start is
	// refused (PermissionDenied) before anything is stopped: llama-server
	// has no authentication of its own by default, and the service relays
	// everything callers need. With it, every llama-server gets an API key
	// only this service holds (generated at New, passed in the engine's
	// environment as LLAMA_API_KEY, never on its command line), and the
	// service's own requests carry it.
	AllowRemoteBind bool
	// OnServing, when set, is called after every engine event with whether
	// the LLM can serve (false while crash looping) and why not; the server
	// reflects it in the grpc health status of LLMService.
	OnServing func(serving bool, reason string)
	// SlotDir is where the conversations' KV caches are saved across an
	// offload (llama-server's --slot-save-path; slots.go); "" turns slot
	// saving off. SlotBudget bounds the bytes saved (default
	// DefaultSlotBudget); the least recently used slots are dropped first.
	SlotDir    string
	SlotBudget int64
	// LogLines is the capacity of the log ring.
	LogLines int
	// HostFacts reads the machine for automatic configuration (default
	// HostFactsReader()).
	HostFacts func() HostFacts
	Logger    *slog.Logger
}

func (o *Options) defaults() error {
	if o.Store == nil {
		return errors.New("llm service: no model store")
	}
	if o.Store.Type() != modelstore.TypeLLM {
		return fmt.Errorf("llm service: model store of type %q, want llm", o.Store.Type())
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = DefaultReadyTimeout
	}
	if o.ChatWaitTimeout <= 0 {
		o.ChatWaitTimeout = DefaultChatWaitTimeout
	}
	if o.DefaultMaxTokens <= 0 {
		o.DefaultMaxTokens = DefaultMaxTokens
	}
	if o.MaxAutoContext <= 0 {
		o.MaxAutoContext = DefaultMaxAutoContext
	}
	if o.HealthInterval <= 0 {
		o.HealthInterval = DefaultHealthInterval
	}
	if o.TermGrace <= 0 {
		o.TermGrace = DefaultTermGrace
	}
	if o.LogLines <= 0 {
		o.LogLines = DefaultLogLines
	}
	if o.HostFacts == nil {
		o.HostFacts = HostFactsReader()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Service implements llmv1.LLMServiceServer. Create it with New.
type Service struct {
	llmv1.UnimplementedLLMServiceServer
	opts   Options
	log    *slog.Logger
	sup    *supervisor.Supervisor
	hc     *http.Client // to llama-server
	apiKey string       // llama-server's API key ("" without AllowRemoteBind)
	events *logring.Ring[*llmv1.WatchInfoResponse]
	bridge chan struct{} // closed when the event bridge ended

	// metrics are the Prometheus series (metrics.go).
	metrics *metrics

	// startMu serializes Start and Restart (a second one is refused).
	startMu sync.Mutex
	// prefetchMu lets one Prefetch run at a time (prefetch.go).
	prefetchMu sync.Mutex

	mu         sync.Mutex
	cur        *resolved   // configuration of the current or last process
	binary     string      // llama-server in use
	offloaded  bool        // stopped for an offload: chats wait
	restarting bool        // a Restart is between its stop and its start
	restoring  bool        // saved slots are being restored: chats wait
	offload    offloadInfo // what the Stop of the offload said (gate.go)
	draining   int         // Stops in progress: no new chat begins
	closing    bool        // shutting down: no chat begins or waits
	chats      map[uint64]context.CancelCauseFunc
	chatID     uint64
	changed    chan struct{} // closed and replaced on every change
}

// New creates the service and its supervisor. The supervisor (and
// llama-server with it) lives until Close or until ctx ends.
func New(ctx context.Context, opts Options) (*Service, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	sup, err := supervisor.New(ctx, supervisor.Config{
		Name: engineName, Logger: opts.Logger, LogLines: opts.LogLines, PidDir: opts.PidDir,
	})
	if err != nil {
		return nil, fmt.Errorf("llm service: %w", err)
	}
	var apiKey string
	if opts.AllowRemoteBind {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("llm service: generate llama-server's API key: %w", err)
		}
		apiKey = hex.EncodeToString(b[:])
	}
	s := &Service{
		opts:    opts,
		apiKey:  apiKey,
		log:     opts.Logger,
		sup:     sup,
		hc:      newHTTPClient(),
		events:  logring.New[*llmv1.WatchInfoResponse](defaultEventRingEntries),
		bridge:  make(chan struct{}),
		chats:   map[uint64]context.CancelCauseFunc{},
		changed: make(chan struct{}),
		metrics: newMetrics(),
	}
	go s.runBridge()
	go s.followEngine()
	return s, nil
}

// BeginShutdown refuses new chats and ends those waiting for the server, so
// that a graceful stop of the gRPC server is not held up by them. Chats
// being served go on until Close.
func (s *Service) BeginShutdown() {
	s.mu.Lock()
	s.closing = true
	s.notifyLocked()
	s.mu.Unlock()
}

// Close stops llama-server (the full SIGTERM, SIGTERM, SIGKILL sequence)
// and ends the supervisor; it waits until both are done or ctx ends.
func (s *Service) Close(ctx context.Context) error {
	s.BeginShutdown()
	s.cancelChats(fmt.Errorf("%w: the llm service is shutting down", ErrInterrupted))
	if err := s.sup.Close(ctx); err != nil {
		return fmt.Errorf("stop llama-server: %w", err)
	}
	select {
	case <-s.bridge:
	case <-ctx.Done():
	}
	return nil
}

// ModelInUse reports whether the llama-server process (starting, running,
// stopping, or about to be restarted after a crash) serves model id; the
// model store refuses to delete such a model unless forced.
func (s *Service) ModelInUse(id string) bool {
	s.mu.Lock()
	cur := s.cur
	s.mu.Unlock()
	if cur == nil || cur.cfg.GetModelId() != id {
		return false
	}
	snap := s.sup.Snapshot()
	switch snap.State {
	case supervisor.StateStarting, supervisor.StateRunning, supervisor.StateStopping:
		return true
	case supervisor.StateCrashed:
		return !snap.NextRestartAt.IsZero() // an automatic restart will load it again
	}
	return snap.Pid != 0
}

// notifyLocked wakes everyone waiting for a change. s.mu must be held.
func (s *Service) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Service) notify() {
	s.mu.Lock()
	s.notifyLocked()
	s.mu.Unlock()
}
