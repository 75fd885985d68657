package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
)

// errStop ends a scan early.
var errStop = errors.New("stop")

// EnsureReadModels makes the current generation hold the registered read models. A
// store with no generation yet gets its first; a generation built for other read models
// (one was added, removed, or changed its version) is rebuilt from the journal when
// rebuild is given — the embedded backend does so before serving — and otherwise left
// as it is with a warning: in AWS mode creating tables and rebuilding are deployment
// steps (`agentwatch migrate`, `agentwatch rebuild`), not something every worker does
// at start.
func EnsureReadModels(ctx context.Context, reg *projections.Registry, gens GenerationStore, journal JournalScanner,
	rebuild *Rebuilder, logger *slog.Logger) error {
	want := reg.Signature()
	cur, sig, err := gens.CurrentGeneration(ctx)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		empty, err := journalEmpty(ctx, journal)
		if err != nil {
			return err
		}
		sig = ""
		if empty {
			sig = want
		}
		if err := gens.CreateGeneration(ctx, 1, sig); err != nil {
			return err
		}
		if err := gens.SwitchGeneration(ctx, 1); err != nil {
			return err
		}
		cur = 1
	case err != nil:
		return fmt.Errorf("read models: %w", err)
	}
	if sig == want {
		return nil
	}
	if rebuild == nil {
		logger.Warn("the read models of the current generation are not the registered ones: run `agentwatch migrate`, then `agentwatch rebuild`",
			"generation", cur, "built", sig, "registered", want)
		return nil
	}
	logger.Info("the registered read models changed: rebuilding them from the journal", "generation", cur, "built", sig, "registered", want)
	rep, err := rebuild.Rebuild(ctx, RebuildOptions{})
	if err != nil {
		return fmt.Errorf("rebuild the read models: %w", err)
	}
	logger.Info("read models rebuilt", "generation", rep.ToGeneration, "events", rep.Events, "took", rep.Total)
	return nil
}

func journalEmpty(ctx context.Context, journal JournalScanner) (bool, error) {
	empty := true
	err := journal.Scan(ctx, ScanOptions{Parallel: 1}, func(b []domain.Event) error {
		if len(b) > 0 {
			empty = false
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return false, fmt.Errorf("read models: look into the journal: %w", err)
	}
	return empty, nil
}

// EnsureParams are what checking the read models at start needs.
type EnsureParams struct {
	fx.In
	Lifecycle fx.Lifecycle
	Registry  *projections.Registry
	Gens      GenerationStore
	Journal   JournalScanner
	Rebuilder *Rebuilder
	// Tail is present where a rebuild at start is cheap and safe (the embedded backend):
	// only there does a change of read models rebuild them before serving.
	Tail   JournalTail `optional:"true"`
	Logger *slog.Logger
}

func ensureReadModels(p EnsureParams) {
	p.Lifecycle.Append(fx.StartHook(func(ctx context.Context) error {
		rb := p.Rebuilder
		if p.Tail == nil {
			rb = nil
		}
		return EnsureReadModels(ctx, p.Registry, p.Gens, p.Journal, rb, p.Logger)
	}))
}
