package dynamodb_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	awdynamodb "github.com/agentwatch/agentwatch/adapters/dynamodb"
	"github.com/agentwatch/agentwatch/adapters/dynamodb/dynamotest"
	"github.com/agentwatch/agentwatch/adapters/storetest"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
)

// planBatch is what the projector commits for events: every session they touch, from
// the loaded state, with every registered read model's changes.
func planBatch(t *testing.T, store app.ProjectionStore, reg *projections.Registry, events []domain.Event, nowMs int64) app.Batch {
	t.Helper()
	byID := map[string][]*domain.Event{}
	var ids []string
	for i := range events {
		id := events[i].SessionID
		if _, ok := byID[id]; !ok {
			ids = append(ids, id)
		}
		byID[id] = append(byID[id], &events[i])
	}
	loaded, err := store.LoadSessions(t.Context(), ids)
	require.NoError(t, err)
	var b app.Batch
	for _, id := range ids {
		before := loaded[id]
		after := before.Session.Clone()
		for _, ev := range byID[id] {
			after.Apply(ev)
		}
		if after.Equal(&before.Session) {
			continue
		}
		sc := app.SessionChange{SessionWrite: app.SessionWrite{Session: after, Version: before.Version}}
		reg.Changes(&before.Session, &after, projections.Env{NowMs: nowMs}, &sc.Changes)
		b.Sessions = append(b.Sessions, sc)
	}
	return b
}

// renamed moves events to sessions of their own: GenerateEvents numbers sessions from 0.
func renamed(events []domain.Event, prefix string) []domain.Event {
	for i := range events {
		events[i].SessionID = prefix + events[i].SessionID
	}
	return events
}

// A batch beyond one transaction (100 actions) is split into transactions of whole
// sessions, each with its own stats deltas, and ends where one clean pass ends.
func TestCommitLargeBatch(t *testing.T) {
	ctx := t.Context()
	c := dynamotest.NewClient(t)
	cfg := dynamotest.MigratedWithoutStream(t, c)
	reg := dynamotest.Registry(t)
	store, err := awdynamodb.NewReadModelStore(c, cfg, reg, 1, nil)
	require.NoError(t, err)
	events := storetest.GenerateEvents(7, 80, time.Date(2024, 11, 4, 9, 0, 0, 0, time.UTC))
	want := projections.NewModel()
	for i := range events {
		want.Apply(&events[i])
	}
	// Two big batches: the first half of every session's events, then the rest.
	var first, second []domain.Event
	seen := map[string]int{}
	for _, ev := range events {
		seen[ev.SessionID]++
		if seen[ev.SessionID] <= 3 {
			first = append(first, ev)
		} else {
			second = append(second, ev)
		}
	}
	checkpoint := &app.Checkpoint{Name: "big", Position: "1"}
	for _, part := range [][]domain.Event{first, second} {
		b := planBatch(t, store, reg, part, 1000)
		writes := 0
		for _, sc := range b.Sessions {
			writes += 1 + len(sc.Changes.Puts) + len(sc.Changes.Deletes)
		}
		require.Greater(t, writes, 100, "a batch beyond one transaction")
		b.Checkpoint = checkpoint
		require.NoError(t, store.Commit(ctx, b))
		checkpoint = &app.Checkpoint{Name: "big", Position: "2"}
	}
	assert.Equal(t, storetest.StateSnapshot(reg, want.Derive(reg, projections.Env{NowMs: 1000})), storetest.Snapshot(t, reg, store))
	cps, err := awdynamodb.NewCheckpointStore(c, cfg)
	require.NoError(t, err)
	pos, err := cps.GetCheckpoint(ctx, "big")
	require.NoError(t, err)
	assert.Equal(t, "2", pos)
	loaded, err := store.LoadSessions(ctx, []string{"s-0000000", "s-0000079"})
	require.NoError(t, err)
	for id, vs := range loaded {
		assert.True(t, want.Session(id).Equal(&vs.Session), id)
		assert.Equal(t, int64(2), vs.Version)
	}

	// Replaying everything in one big batch changes nothing.
	b := planBatch(t, store, reg, events, 1000)
	assert.Empty(t, b.Sessions)

	// A big batch with a stale session conflicts; the transactions before it may have
	// committed, and the projector's reload and retry finishes the rest exactly once.
	more := renamed(storetest.GenerateEvents(8, 80, time.Date(2024, 11, 5, 9, 0, 0, 0, time.UTC)), "stale-")
	stale := planBatch(t, store, reg, more, 1000)
	stale.Sessions[len(stale.Sessions)-1].Version = 7
	require.ErrorIs(t, store.Commit(ctx, stale), domain.ErrConflict)
	retry := planBatch(t, store, reg, more, 1000)
	require.NoError(t, store.Commit(ctx, retry))
	assert.Empty(t, planBatch(t, store, reg, more, 1000).Sessions, "all done")
	for i := range more {
		want.Apply(&more[i])
	}
	assert.Equal(t, storetest.StateSnapshot(reg, want.Derive(reg, projections.Env{NowMs: 1000})), storetest.Snapshot(t, reg, store),
		"every counter counted once")

}

// A rebuild loads a new generation next to the serving one and switches; stores that
// follow the current generation move with it, and their commits cannot land in the old
// one.
func TestGenerations(t *testing.T) {
	ctx := t.Context()
	c := dynamotest.NewClient(t)
	cfg := dynamotest.MigratedWithoutStream(t, c)
	cfg.GenerationRefresh = time.Hour // only commits see a switch at once
	reg := dynamotest.Registry(t)
	follow, err := awdynamodb.NewReadModelStore(c, cfg, reg, 0, nil)
	require.NoError(t, err)
	gen1, err := awdynamodb.NewReadModelStore(c, cfg, reg, 1, nil)
	require.NoError(t, err)
	gen2, err := awdynamodb.NewReadModelStore(c, cfg, reg, 2, nil)
	require.NoError(t, err)

	events := storetest.GenerateEvents(3, 40, time.Date(2024, 11, 4, 9, 0, 0, 0, time.UTC))
	require.NoError(t, follow.Commit(ctx, planBatch(t, follow, reg, events[:30], 1000)))

	want := projections.NewModel()
	for i := range events {
		want.Apply(&events[i])
	}
	st := want.Derive(reg, projections.Env{NowMs: 1000})
	require.NoError(t, gen2.BulkLoad(ctx, 2, app.GenerationOf(want.SessionValues(), st)))
	gens, err := follow.Generations(ctx)
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2}, gens)

	assert.Equal(t, storetest.StateSnapshot(reg, st), storetest.Snapshot(t, reg, gen2))
	loaded, err := gen2.LoadSessions(ctx, []string{events[0].SessionID})
	require.NoError(t, err)
	assert.Equal(t, int64(1), loaded[events[0].SessionID].Version)

	// The follower still reads generation 1 (cached), and its commit, planned there,
	// must not land once generation 2 is current.
	stale := planBatch(t, follow, reg, events[30:], 1000)
	require.ErrorIs(t, follow.SwitchGeneration(ctx, 3), domain.ErrNotFound)
	require.NoError(t, gen1.SwitchGeneration(ctx, 2))
	cur, _, err := follow.CurrentGeneration(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, cur)
	require.ErrorIs(t, follow.Commit(ctx, stale), domain.ErrConflict)
	g, err := follow.Generation(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, g, "a failed generation check makes the store read the generation again")
	assert.Equal(t, storetest.StateSnapshot(reg, st), storetest.Snapshot(t, reg, follow), "reads follow the switch")

	require.ErrorIs(t, follow.DropGeneration(ctx, 2), domain.ErrConflict, "the current generation stays")
	require.NoError(t, follow.DropGeneration(ctx, 1))
	gens, err = follow.Generations(ctx)
	require.NoError(t, err)
	assert.Equal(t, []int{2}, gens)
}
