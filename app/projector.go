package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/agentstats"
	"github.com/agentwatch/agentwatch/projections/executionindex"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// Projector folds journal events into the read models through a ProjectionStore. Each
// call loads the sessions involved, applies the events, and commits what changed in one
// atomic batch guarded by session versions, so that a redelivered or concurrently
// processed event never counts twice.
type Projector struct {
	store   ProjectionStore
	logger  *slog.Logger
	now     func() time.Time
	metrics *Metrics
	// MaxConflictRetries bounds reload-and-retry rounds after a version conflict.
	MaxConflictRetries int
}

// NewProjector returns a projector over store.
func NewProjector(store ProjectionStore, logger *slog.Logger, metrics *Metrics) *Projector {
	return &Projector{store: store, logger: logger, now: time.Now, metrics: metrics, MaxConflictRetries: 20}
}

// SetClock replaces the clock (tests run the projector and the detector on a fake one).
func (p *Projector) SetClock(now func() time.Time) { p.now = now }

// Project applies events and commits the result, with cp stored in the same commit
// when set. It is safe to call concurrently and with events seen before.
func (p *Projector) Project(ctx context.Context, events []domain.Event, cp *Checkpoint) error {
	ids := sessionIDs(events)
	for attempt := 0; ; attempt++ {
		batch, err := p.plan(ctx, ids, events)
		if err != nil {
			return err
		}
		batch.Checkpoint = cp
		err = p.store.Commit(ctx, batch)
		if err == nil {
			p.metrics.projected(len(events), len(batch.Sessions))
			return nil
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

// plan loads the sessions and computes the batch that applying events produces.
func (p *Projector) plan(ctx context.Context, ids []string, events []domain.Event) (Batch, error) {
	loaded, err := p.store.LoadSessions(ctx, ids)
	if err != nil {
		return Batch{}, fmt.Errorf("load %d sessions: %w", len(ids), err)
	}
	type work struct {
		before  domain.Session
		after   domain.Session
		version int64
		changed bool
	}
	ws := make(map[string]*work, len(ids))
	for _, id := range ids {
		v := loaded[id]
		ws[id] = &work{before: v.Session, after: v.Session.Clone(), version: v.Version}
	}
	for i := range events {
		w := ws[events[i].SessionID]
		if w.after.Apply(&events[i]) {
			w.changed = true
		}
	}
	var b Batch
	nowMs := p.now().UnixMilli()
	for _, id := range ids {
		w := ws[id]
		if !w.changed || w.after.Equal(&w.before) {
			continue
		}
		b.Sessions = append(b.Sessions, SessionWrite{Session: w.after, Version: w.version})
		b.Index = executionindex.Changed(&w.before, &w.after, b.Index)
		cb, okb := agentstats.ContributionOf(&w.before)
		ca, oka := agentstats.ContributionOf(&w.after)
		b.Stats = append(b.Stats, agentstats.Deltas(&cb, okb, &ca, oka)...)
		// A closed entry is written only over an open one: the detector looks once
		// more (an alert raised while it was open may be resolved by this very change)
		// and then drops it. A session that was never open to the detector — new in
		// this batch and already done, as most are when a page holds whole sessions —
		// cannot have an alert, and costs no write.
		if e, open := stuck.EntryOf(&w.after); e.Outcome != domain.OutcomeEmpty {
			if _, wasOpen := stuck.EntryOf(&w.before); open || wasOpen {
				b.Stuck = append(b.Stuck, StuckWrite{Entry: e, NextCheckMs: nowMs})
			}
		}
	}
	return b, nil
}
