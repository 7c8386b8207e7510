// Package recovery brings the LLM back after the orchestrator died in the middle of an
// offload: on start, every saved state still in the database means an LLM that was stopped
// and never reloaded, so it is reloaded with its saved configuration (and the state is
// cleared once it is healthy, as in the normal cycle).
package recovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/services/orchestrator/internal/state"
)

// Reloader reloads the LLM from a saved state.
type Reloader interface {
	Reload(ctx context.Context, saved *orchestratorv1.SavedState, emit func(orchestratorv1.EventType, string, map[string]float64)) error
}

// Recover reloads the LLM of every saved state found in db. It returns when all reloads
// have ended (successfully or not; a failed one keeps its state for the next start).
func Recover(ctx context.Context, db *state.DB, r Reloader, log *slog.Logger) error {
	states, err := db.SavedStates("")
	if err != nil {
		return fmt.Errorf("read saved states: %w", err)
	}
	var errs []error
	for _, s := range states {
		if !s.GetWasRunning() {
			if _, err := db.ClearSavedState(s.GetHost()); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		log.Warn("found a saved LLM state from an offload that never finished; reloading the LLM",
			"host", s.GetHost(), "model", s.GetLlmConfig().GetModelId(), "saved_at", s.GetSavedAt().AsTime(), "job", s.GetReason())
		if err := r.Reload(ctx, s, nil); err != nil {
			errs = append(errs, fmt.Errorf("host %q: %w", s.GetHost(), err))
		}
	}
	return errors.Join(errs...)
}
