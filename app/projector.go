package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
)

// Projector folds journal events into the read models through a ProjectionStore. Each
// call loads the sessions involved once, applies all of their events, asks every
// registered read model what changed, and commits the batch guarded by session
// versions, so that a redelivered or concurrently processed event never counts twice.
type Projector struct {
	store   ProjectionStore
	reg     *projections.Registry
	logger  *slog.Logger
	now     func() time.Time
	metrics *Metrics
	// MaxConflictRetries bounds reload-and-retry rounds after a version conflict.
	MaxConflictRetries int
}

// NewProjector returns a projector of the read models of reg over store.
func NewProjector(store ProjectionStore, reg *projections.Registry, logger *slog.Logger, metrics *Metrics) *Projector {
	return &Projector{store: store, reg: reg, logger: logger, now: time.Now, metrics: metrics, MaxConflictRetries: 20}
}

// SetClock replaces the clock (tests run the projector and the detector on a fake one).
func (p *Projector) SetClock(now func() time.Time) { p.now = now }

// Project applies events and commits the result, with cp stored in the same commit
// when set. It is safe to call concurrently and with events seen before.
func (p *Projector) Project(ctx context.Context, events []domain.Event, cp *Checkpoint) error {
	ids := sessionIDs(events)
	for attempt := 0; ; attempt++ {
		batch, err := p.plan(ctx, ids, events)
		if err == nil {
			batch.Checkpoint = cp
			err = p.store.Commit(ctx, batch)
			if err == nil {
				p.metrics.projected(len(events), len(batch.Sessions))
				return nil
			}
		}
		if !errors.Is(err, domain.ErrConflict) || attempt >= p.MaxConflictRetries {
			return fmt.Errorf("commit projection of %d events: %w", len(events), err)
		}
		p.metrics.conflict()
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// ProjectIsolating is Project for a page of events in which one session's events may be
// such that the store refuses them (domain.ErrInvalid: an item over a size limit, say).
// The page is committed at once when it can be; when the store refuses it as invalid,
// the sessions are bisected until the ones it refuses are found, their events go to
// poison with the reason, and every other session commits (each commit guarded by
// session versions as always). cp is committed once all of that is done. Any other error
// is returned as is.
func (p *Projector) ProjectIsolating(ctx context.Context, events []domain.Event, cp *Checkpoint,
	poison func(events []domain.Event, reason error) error) error {
	err := p.Project(ctx, events, cp)
	if err == nil || !errors.Is(err, domain.ErrInvalid) {
		return err
	}
	var isolate func(groups [][]domain.Event) error
	isolate = func(groups [][]domain.Event) error {
		var evs []domain.Event
		for _, g := range groups {
			evs = append(evs, g...)
		}
		err := p.Project(ctx, evs, nil)
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, domain.ErrInvalid):
			return err
		case len(groups) == 1:
			p.logger.Warn("projection of a session refused as invalid: its events are quarantined",
				"session", evs[0].SessionID, "events", len(evs), "error", err)
			return poison(evs, err)
		}
		mid := len(groups) / 2
		if err := isolate(groups[:mid]); err != nil {
			return err
		}
		return isolate(groups[mid:])
	}
	if err := isolate(bySession(events)); err != nil {
		return err
	}
	if cp == nil {
		return nil
	}
	return p.Project(ctx, nil, cp)
}

// bySession groups events by session, sessions in order of first appearance.
func bySession(events []domain.Event) [][]domain.Event {
	pos := map[string]int{}
	var out [][]domain.Event
	for _, ev := range events {
		i, ok := pos[ev.SessionID]
		if !ok {
			i = len(out)
			pos[ev.SessionID] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], ev)
	}
	return out
}

func sessionIDs(events []domain.Event) []string {
	seen := make(map[string]struct{}, len(events))
	ids := make([]string, 0, len(events))
	for i := range events {
		id := events[i].SessionID
		if _, ok := seen[id]; !ok {
			seen[id] = struct{}{}
			ids = append(ids, id)
		}
	}
	return ids
}

// plan loads the sessions and computes the batch that applying events produces: each
// changed session with every read model's changes for it.
func (p *Projector) plan(ctx context.Context, ids []string, events []domain.Event) (Batch, error) {
	loaded, err := p.store.LoadSessions(ctx, ids)
	if err != nil {
		return Batch{}, fmt.Errorf("load %d sessions: %w", len(ids), err)
	}
	after := make(map[string]*domain.Session, len(ids))
	changed := make(map[string]bool, len(ids))
	for _, id := range ids {
		v := loaded[id]
		s := v.Session.Clone()
		after[id] = &s
	}
	for i := range events {
		if after[events[i].SessionID].Apply(&events[i]) {
			changed[events[i].SessionID] = true
		}
	}
	var b Batch
	env := projections.Env{NowMs: p.now().UnixMilli()}
	for _, id := range ids {
		before, a := loaded[id], after[id]
		if !changed[id] || a.Equal(&before.Session) {
			continue
		}
		sc := SessionChange{SessionWrite: SessionWrite{Session: *a, Version: before.Version}}
		p.reg.Changes(&before.Session, a, env, &sc.Changes)
		b.Sessions = append(b.Sessions, sc)
	}
	return b, nil
}
