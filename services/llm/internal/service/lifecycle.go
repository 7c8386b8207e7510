package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	"github.com/genailab/genailab/pkg/llamabin"
	"github.com/genailab/genailab/pkg/supervisor"
)

// Start implements LLMService: it launches llama-server and returns once it
// is ready.
func (s *Service) Start(ctx context.Context, req *llmv1.StartRequest) (*llmv1.StartResponse, error) {
	if !s.startMu.TryLock() {
		return nil, toStatus(ErrStartInProgress)
	}
	defer s.startMu.Unlock()
	switch st := s.sup.Snapshot().State; st {
	case supervisor.StateStarting, supervisor.StateRunning, supervisor.StateStopping:
		return nil, toStatus(fmt.Errorf("start llama-server: %w (state %s; stop it first or use Restart)", supervisor.ErrAlreadyRunning, st))
	}
	if req.GetReadyTimeoutMs() < 0 {
		return nil, toStatus(fmt.Errorf("%w: ready_timeout_ms must not be negative", ErrInvalidRequest))
	}
	r, err := s.resolve(ctx, req.GetConfig())
	if err != nil {
		return nil, toStatus(err)
	}
	for _, f := range req.GetRestoreSlotFiles() {
		if !validSlotFile(f) {
			return nil, toStatus(fmt.Errorf("%w: restore_slot_files: %q is not a slot file name of this service", ErrInvalidRequest, f))
		}
	}
	restored, err := s.launch(ctx, r, req.GetReadyTimeoutMs(), req.GetRestoreSlotFiles())
	if err != nil {
		return nil, toStatus(err)
	}
	return &llmv1.StartResponse{Info: s.info(), StartupMs: s.startupMs(), SlotRestore: restored}, nil
}

// launch starts r and waits for readiness; then it restores the slot files
// named by restore (slots.go) while chats still wait. It clears the offload
// state once the server is ready. startMu must be held.
func (s *Service) launch(ctx context.Context, r *resolved, readyTimeoutMs int64, restore []string) (*llmv1.SlotRestore, error) {
	bin, err := llamabin.Resolve(s.opts.LlamaServer)
	if err != nil {
		if !errors.Is(err, llamabin.ErrNotFound) {
			err = fmt.Errorf("%w: %w", errEngineUnusable, err)
		}
		return nil, fmt.Errorf("start llama-server: %w", err)
	}
	timeout := s.opts.ReadyTimeout
	if readyTimeoutMs > 0 {
		timeout = time.Duration(readyTimeoutMs) * time.Millisecond
	}
	spec := s.spec(r, bin.Path, timeout)
	if s.opts.SlotDir != "" {
		if err := os.MkdirAll(s.opts.SlotDir, 0o700); err != nil {
			return nil, fmt.Errorf("start llama-server: slot directory: %w", err)
		}
		spec.Args = append(slices.Clone(spec.Args), "--slot-save-path", s.opts.SlotDir)
	}
	s.mu.Lock()
	s.cur, s.binary = r, bin.Path
	s.restoring = len(restore) > 0
	s.notifyLocked()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.restoring = false
		s.notifyLocked()
		s.mu.Unlock()
	}()
	if err := s.sup.Start(ctx, spec); err != nil {
		return nil, explainStart(err)
	}
	var restored *llmv1.SlotRestore
	if len(restore) > 0 {
		restored = s.restoreSlots(ctx, r, baseURL(r.cfg.GetHost(), int(r.cfg.GetPort())), restore)
	}
	s.mu.Lock()
	s.offloaded = false
	s.offload = offloadInfo{}
	s.notifyLocked()
	s.mu.Unlock()
	s.log.Info("llama-server ready", "model", r.cfg.GetModelId(), "port", r.cfg.GetPort(),
		"threads", r.cfg.GetThreads(), "context", r.cfg.GetContextSize(), "startup_ms", s.startupMs())
	return restored, nil
}

func (s *Service) startupMs() int64 {
	snap := s.sup.Snapshot()
	if snap.ReadyAt.IsZero() || snap.StartedAt.IsZero() {
		return 0
	}
	return snap.ReadyAt.Sub(snap.StartedAt).Milliseconds()
}

// Stop implements LLMService.
func (s *Service) Stop(ctx context.Context, req *llmv1.StopRequest) (*llmv1.StopResponse, error) {
	if req.GetDrainTimeoutMs() < 0 {
		return nil, toStatus(fmt.Errorf("%w: drain_timeout_ms must not be negative", ErrInvalidRequest))
	}
	snap := s.sup.Snapshot()
	wasRunning := snap.State == supervisor.StateStarting || snap.State == supervisor.StateRunning ||
		(snap.State == supervisor.StateCrashed && !snap.NextRestartAt.IsZero())

	s.mu.Lock()
	var prev *llmv1.LLMConfig
	if s.cur != nil {
		// The resolved configuration, with the port as requested: an
		// automatic port is chosen afresh when it is started again.
		prev = proto.CloneOf(s.cur.cfg)
		prev.Port = s.cur.requested.GetPort()
	}
	cur := s.cur
	s.draining++
	s.offloaded = req.GetForOffload() && wasRunning
	if s.offloaded {
		s.offload = newOffloadInfo(req)
	}
	s.notifyLocked()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.draining--
		s.notifyLocked()
		s.mu.Unlock()
	}()

	if d := req.GetDrainTimeoutMs(); d > 0 {
		s.drain(ctx, time.Duration(d)*time.Millisecond)
	}
	var saved *llmv1.SlotSave
	if req.GetForOffload() && snap.State == supervisor.StateRunning && cur != nil {
		// After the drain, before the stop: what is in the slots now is
		// every conversation's context.
		s.cancelChats(fmt.Errorf("%w: the llm server is being stopped for an offload", ErrInterrupted))
		saved = s.saveSlots(ctx, cur, baseURL(cur.cfg.GetHost(), snap.Port))
	}
	if err := s.stop(ctx); err != nil {
		return nil, toStatus(err)
	}
	return &llmv1.StopResponse{Info: s.info(), PreviousConfig: prev, WasRunning: wasRunning, SlotSave: saved}, nil
}

// stop interrupts the chats still in flight (a request in progress keeps
// llama-server from honouring SIGTERM) and stops the process.
func (s *Service) stop(ctx context.Context) error {
	s.cancelChats(fmt.Errorf("%w: the llm server is being stopped", ErrInterrupted))
	if err := s.sup.Stop(ctx); err != nil {
		return fmt.Errorf("stop llama-server: %w", err)
	}
	return nil
}

// Restart implements LLMService: stop, then start with the new
// configuration, or again with the current one. A new configuration is
// checked before the running server is touched. Chats wait meanwhile.
func (s *Service) Restart(ctx context.Context, req *llmv1.RestartRequest) (*llmv1.RestartResponse, error) {
	if !s.startMu.TryLock() {
		return nil, toStatus(ErrStartInProgress)
	}
	defer s.startMu.Unlock()
	if req.GetReadyTimeoutMs() < 0 {
		return nil, toStatus(fmt.Errorf("%w: ready_timeout_ms must not be negative", ErrInvalidRequest))
	}
	cfg := req.GetConfig()
	if cfg == nil {
		s.mu.Lock()
		if s.cur != nil {
			cfg = s.cur.requested
		}
		s.mu.Unlock()
		if cfg == nil {
			return nil, toStatus(fmt.Errorf("restart llama-server: %w: it was never started and no config was given", supervisor.ErrNotRunning))
		}
	}
	r, err := s.resolve(ctx, cfg)
	if err != nil {
		return nil, toStatus(err)
	}
	s.mu.Lock()
	s.restarting = true
	s.notifyLocked()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.restarting = false
		s.notifyLocked()
		s.mu.Unlock()
	}()
	if err := s.stop(ctx); err != nil {
		return nil, toStatus(err)
	}
	if _, err := s.launch(ctx, r, req.GetReadyTimeoutMs(), nil); err != nil {
		return nil, toStatus(err)
	}
	return &llmv1.RestartResponse{Info: s.info()}, nil
}
