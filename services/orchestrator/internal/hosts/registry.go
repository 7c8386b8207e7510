// Package hosts is the orchestrator's registry of GPU hosts (each running the LLM,
// diffusion and monitor services, followed by an agent.Agent): hosts from the
// configuration and/or found by DNS (a Kubernetes headless service), each checked with
// grpc health, followed through the monitor's WatchUsage stream, and kept ready,
// unreachable or draining. Placement reads the cached telemetry only, so a decision never
// waits on a host. What runs on a host (its offload cycle, its event relay) is composed by
// the caller (Options.Compose), once per host.
//
// A host that becomes ready with an LLM state saved before an offload (the host died or
// the orchestrator stopped before the reload) gets its LLM reloaded before it takes an
// image.
package hosts

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/services/orchestrator/internal/agent"
	"github.com/genailab/genailab/services/orchestrator/internal/cycle"
	"github.com/genailab/genailab/services/orchestrator/internal/place"
	"github.com/genailab/genailab/services/orchestrator/internal/probe"
	"github.com/genailab/genailab/services/orchestrator/internal/state"
)

// ErrUnknownHost is returned for a host name the registry does not know.
var ErrUnknownHost = errors.New("unknown host")

// Host is one host of the registry: its agent (clients, health, telemetry) and what the
// composition runs on it.
type Host struct {
	*agent.Agent
	// Prober decides for an image on the host; Cycle runs images on it (offload,
	// generation, reload).
	Prober *probe.Prober
	Cycle  *cycle.Cycle

	run    func(ctx context.Context) // the composition's loops, while the host is followed
	busy   int                       // images (and LLM reloads) running on it; Registry.mu
	cancel context.CancelFunc
	done   chan struct{}
}

// Parts are what the composition runs on one host.
type Parts struct {
	// Prober decides for the host's images; Cycle runs them (both required).
	Prober *probe.Prober
	Cycle  *cycle.Cycle
	// Run, when set, runs while the host is followed (e.g. its engine-event relay) and
	// returns when ctx ends.
	Run func(ctx context.Context)
}

// Options configure the registry.
type Options struct {
	// Dial are the options every host connection is made with (TLS, token).
	Dial []grpc.DialOption
	// Compose builds what runs on a host, for each host the registry adds (configured
	// or found by DNS).
	Compose func(a *agent.Agent) (Parts, error)
	// CheckInterval is the time between health checks of a host; default 2 s.
	CheckInterval time.Duration
	// CheckTimeout bounds one health check; default 2 s.
	CheckTimeout time.Duration
	// UsageInterval is the monitor stream's interval; default 1 s.
	UsageInterval time.Duration
	// ModelsEvery refreshes a host's diffusion model list every this many checks; default 5.
	ModelsEvery int
	// FreshFor is how long a health check's facts are fresh for Supported: a refusal from
	// older ones asks the refusing hosts for a check first; default 1 s.
	FreshFor time.Duration
	// Place is what placement estimates images with (the lab's model, the decision's tuning).
	Place agent.PlaceOptions
	// DNSName and DNSPorts find hosts by DNS: each address of DNSName is a host whose
	// services listen on DNSPorts. DNSInterval is the time between lookups; default 30 s.
	DNSName     string
	DNSPorts    agent.Ports
	DNSInterval time.Duration
	// Resolver looks DNSName up (default net.DefaultResolver).
	Resolver interface {
		LookupHost(ctx context.Context, host string) ([]string, error)
	}
	// DB holds the LLM states saved before an offload (reloaded when a host comes back).
	DB *state.DB
	// ReloadTimeout bounds the reload of such a state; default 5 min.
	ReloadTimeout time.Duration
	Log           *slog.Logger
}

func (o *Options) defaults() {
	if o.CheckInterval <= 0 {
		o.CheckInterval = 2 * time.Second
	}
	if o.CheckTimeout <= 0 {
		o.CheckTimeout = 2 * time.Second
	}
	if o.UsageInterval <= 0 {
		o.UsageInterval = time.Second
	}
	if o.ModelsEvery <= 0 {
		o.ModelsEvery = 5
	}
	if o.FreshFor <= 0 {
		o.FreshFor = time.Second
	}
	if o.DNSInterval <= 0 {
		o.DNSInterval = 30 * time.Second
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// Registry holds the hosts.
type Registry struct {
	o Options

	mu      sync.Mutex
	hosts   map[string]*Host
	order   []*Host // sorted by name
	changed chan struct{}
	ctx     context.Context // set by Run
	wg      sync.WaitGroup
}

// New returns a registry with the configured hosts; Run starts following them.
func New(specs []agent.Spec, o Options) (*Registry, error) {
	o.defaults()
	if o.Compose == nil {
		return nil, errors.New("hosts: Options.Compose is required")
	}
	r := &Registry{o: o, hosts: map[string]*Host{}, changed: make(chan struct{})}
	for _, sp := range specs {
		if err := r.add(sp); err != nil {
			r.closeAll()
			return nil, err
		}
	}
	return r, nil
}

func (r *Registry) add(sp agent.Spec) error {
	if _, ok := r.hosts[sp.Name]; ok {
		return fmt.Errorf("host %q is configured twice", sp.Name)
	}
	a, err := agent.Dial(sp, r.o.Dial)
	if err != nil {
		return err
	}
	parts, err := r.o.Compose(a)
	if err == nil && (parts.Cycle == nil || parts.Prober == nil) {
		err = errors.New("no prober or offload cycle")
	}
	if err != nil {
		a.Close()
		return fmt.Errorf("host %s: %w", sp.Name, err)
	}
	h := &Host{Agent: a, Prober: parts.Prober, Cycle: parts.Cycle, run: parts.Run, done: make(chan struct{})}
	r.hosts[sp.Name] = h
	r.order = append(r.order, h)
	sort.Slice(r.order, func(i, j int) bool { return r.order[i].Spec.Name < r.order[j].Spec.Name })
	if r.ctx != nil {
		r.start(h)
	}
	return nil
}

// broadcastLocked wakes everyone waiting for a change.
func (r *Registry) broadcastLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *Registry) broadcast() {
	r.mu.Lock()
	r.broadcastLocked()
	r.mu.Unlock()
}

// Changed returns a channel closed on the next change of any host's state or load.
func (r *Registry) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// Get returns a host by name.
func (r *Registry) Get(name string) (*Host, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if h, ok := r.hosts[name]; ok {
		return h, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownHost, name)
}

// Hosts returns every host, sorted by name.
func (r *Registry) Hosts() []*Host {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Host(nil), r.order...)
}

// Run follows every host (and DNS, when configured) until ctx ends, then closes the
// connections.
func (r *Registry) Run(ctx context.Context) {
	r.mu.Lock()
	r.ctx = ctx
	for _, h := range r.order {
		r.start(h)
	}
	r.mu.Unlock()
	if r.o.DNSName != "" {
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.followDNS(ctx) }()
	}
	<-ctx.Done()
	r.wg.Wait()
	r.closeAll()
}

func (r *Registry) closeAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, h := range r.order {
		h.Close()
	}
}

// start runs the host's loops (r.mu held).
func (r *Registry) start(h *Host) {
	hctx, cancel := context.WithCancel(r.ctx)
	h.cancel = cancel
	r.wg.Add(2)
	go func() { defer r.wg.Done(); h.FollowUsage(hctx, r.o.UsageInterval, r.o.Log) }()
	go func() { defer r.wg.Done(); defer close(h.done); r.check(hctx, h) }()
	if h.run != nil {
		r.wg.Add(1)
		go func() { defer r.wg.Done(); h.run(hctx) }()
	}
}

// check runs the host's health checks until ctx ends.
func (r *Registry) check(ctx context.Context, h *Host) {
	t := time.NewTicker(r.o.CheckInterval)
	defer t.Stop()
	poked := false
	for n := 0; ; n++ {
		ok, why := h.Check(ctx, r.o.CheckTimeout, n%r.o.ModelsEvery == 0)
		if ctx.Err() != nil {
			return
		}
		r.setReachable(h, ok, why)
		if poked {
			// Someone waits on fresh telemetry (RefreshAll): let placement look again.
			r.broadcast()
		}
		poked = false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-h.Poked():
			n = -1 // refresh the models too
			poked = true
		}
	}
}

// setReachable records a health result. A host that becomes reachable with a saved LLM
// state (its LLM was offloaded when it or the orchestrator went away) is busy, reloading
// its LLM, from that moment: no image is placed on it before the LLM is back.
func (r *Registry) setReachable(h *Host, ok bool, why string) {
	var saved *orchestratorv1.SavedState
	if ok {
		var err error
		if saved, err = r.o.DB.SavedState(h.Name()); err != nil {
			r.o.Log.Warn("read saved state", "host", h.Name(), "error", err)
		}
	}
	r.mu.Lock()
	was, changed := h.RecordHealth(ok, why)
	reload := ok && !was && saved != nil && h.busy == 0 // else a job's own reload is still trying
	if reload {
		h.busy++
	}
	if changed {
		r.broadcastLocked()
	}
	r.mu.Unlock()
	switch {
	case ok && !was:
		r.o.Log.Info("host is reachable", "host", h.Name())
	case !ok && was:
		r.o.Log.Warn("host is unreachable", "host", h.Name(), "reason", why)
	}
	if reload {
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.reload(h, saved) }()
	}
}

// CheckNow checks the host's health now (bounded by the check timeout) and records the
// result as a periodic check does: it tells a host that cannot be reached (its connections
// fail or its services do not answer SERVING) from one that answered a call with an error.
func (r *Registry) CheckNow(ctx context.Context, h *Host) (ok bool, why string) {
	ok, why = h.Check(ctx, r.o.CheckTimeout, false)
	if ctx.Err() == nil {
		r.setReachable(h, ok, why)
	}
	return ok, why
}

// reload brings the host's LLM back from its saved state; the host was marked busy.
func (r *Registry) reload(h *Host, saved *orchestratorv1.SavedState) {
	defer r.Release(h)
	if !saved.GetWasRunning() {
		_, _ = r.o.DB.ClearSavedState(h.Name())
		return
	}
	r.o.Log.Warn("host is reachable with its LLM offloaded; reloading it", "host", h.Name(), "model", saved.GetLlmConfig().GetModelId(), "job", saved.GetReason())
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), cmp.Or(r.o.ReloadTimeout, 5*time.Minute))
	defer cancel()
	if err := h.Cycle.Reload(ctx, saved, nil); err != nil {
		r.o.Log.Error("reload of the LLM failed; the saved state is kept", "host", h.Name(), "error", err)
	}
}

// Release ends a job (or reload) on the host and asks for fresh telemetry.
func (r *Registry) Release(h *Host) {
	r.mu.Lock()
	if h.busy > 0 {
		h.busy--
	}
	r.broadcastLocked()
	r.mu.Unlock()
	h.Refresh()
}

// Acquire places an image: it chooses a host from the cached telemetry and marks it busy
// (Release ends that). queued counts the images waiting for each pinned host; exclude
// lists hosts not to use (those that already failed the job). It does not wait:
// place.ErrAllBusy says to wait for Changed and try again.
func (r *Registry) Acquire(req agent.ImageRequest, pr place.Request, queued map[string]int, exclude map[string]bool) (*Host, place.Choice, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cands := make([]place.Candidate, 0, len(r.order))
	for _, h := range r.order {
		c := h.Candidate(r.o.Place, req, h.busy, queued[h.Spec.Name])
		if exclude[c.Name] {
			c.Usable, c.Busy, c.Why = false, false, "failed this job already"
		}
		cands = append(cands, c)
	}
	ch, err := place.Choose(cands, pr)
	if err != nil {
		return nil, ch, err
	}
	r.hosts[ch.Name].busy++
	return r.hosts[ch.Name], ch, nil
}

// Supported refuses, with place.ErrUnsupported naming each host's mode and what it lacks,
// a request that no host's diffusion engine (or the pinned host's) can run in its mode. It
// reads the capabilities the health checks gathered: an acceptance, or a refusal from facts
// checked within FreshFor, makes no call. A refusal from older facts (the engine may have
// been restarted in another mode since) asks those hosts for a check now, coalesced with
// any other (Refresh), and answers from the fresh facts, waiting at most the check timeout.
// A host not checked yet, or whose engine is stopped, lets the request through: its probe
// refuses it at run time, before anything is offloaded, if it must.
func (r *Registry) Supported(ctx context.Context, needs place.Needs, pin string) error {
	if needs.Plain() {
		return nil
	}
	req := place.Request{Pin: pin, Needs: needs}
	asked := time.Now()
	var timeout <-chan time.Time
	for {
		changed := r.Changed()
		hs := r.Hosts()
		cands := make([]place.Candidate, len(hs))
		var stale []*Host
		for i, h := range hs {
			caps, at := h.Capabilities()
			cands[i] = place.Candidate{Name: h.Name(), Caps: caps}
			if (pin == "" || h.Name() == pin) && asked.Sub(at) > r.o.FreshFor {
				stale = append(stale, h)
			}
		}
		err := place.Supported(cands, req)
		if err == nil || len(stale) == 0 {
			return err
		}
		if timeout == nil {
			for _, h := range stale {
				h.Refresh()
			}
			t := time.NewTimer(r.o.CheckTimeout)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("check the hosts' capabilities: %w", ctx.Err())
		case <-timeout:
			return err
		case <-changed:
		}
	}
}

// RefreshAll asks every host for a health check and fresh telemetry now; Changed fires
// once each has answered.
func (r *Registry) RefreshAll() {
	for _, h := range r.Hosts() {
		h.Refresh()
	}
}

// SetDraining drains (or undrains) a host: a draining host finishes its running image
// and takes no new one.
func (r *Registry) SetDraining(name string, draining bool) (*Host, error) {
	h, err := r.Get(name)
	if err != nil {
		return nil, err
	}
	h.Agent.SetDraining(draining)
	r.o.Log.Info("host drain changed", "host", name, "draining", draining)
	r.broadcast()
	return h, nil
}

// View renders one host for the API; queued counts the images waiting for it alone.
func (r *Registry) View(h *Host, queued int) *orchestratorv1.Host {
	r.mu.Lock()
	running := h.busy
	r.mu.Unlock()
	saved, _ := r.o.DB.SavedState(h.Spec.Name)
	return h.Agent.View(agent.Load{Running: running, Queued: queued, Offloaded: saved != nil}, r.o.Place.Probe.GPUIndex)
}

// List renders every host for the API; queued counts the images waiting for each pinned host.
func (r *Registry) List(queued map[string]int) []*orchestratorv1.Host {
	var out []*orchestratorv1.Host
	for _, h := range r.Hosts() {
		out = append(out, r.View(h, queued[h.Spec.Name]))
	}
	return out
}
