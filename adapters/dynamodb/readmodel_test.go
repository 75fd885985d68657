package dynamodb_test

import (
	"errors"
	"sort"
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
	"github.com/agentwatch/agentwatch/projections/agentstats"
	"github.com/agentwatch/agentwatch/projections/executionindex"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// planBatch is what the projector commits for events: every session they touch, from
// the loaded state.
func planBatch(t *testing.T, store app.ProjectionStore, events []domain.Event, nowMs int64) app.Batch {
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
		b.Sessions = append(b.Sessions, app.SessionWrite{Session: after, Version: before.Version})
		b.Index = executionindex.Changed(&before.Session, &after, b.Index)
		cb, okb := agentstats.ContributionOf(&before.Session)
		ca, oka := agentstats.ContributionOf(&after)
		b.Stats = append(b.Stats, agentstats.Deltas(&cb, okb, &ca, oka)...)
		_, watched := stuck.EntryOf(&before.Session)
		if e, ok := stuck.EntryOf(&after); ok {
			b.Stuck = append(b.Stuck, app.StuckWrite{Entry: e, NextCheckMs: nowMs})
		} else if watched {
			b.Stuck = append(b.Stuck, app.StuckWrite{Entry: e, Delete: true})
		}
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

func allBuckets(t *testing.T, r app.StatsReader) []agentstats.Bucket {
	t.Helper()
	var out []agentstats.Bucket
	for _, g := range []string{agentstats.DayPrefix, agentstats.HourPrefix} {
		b, err := r.Stats(t.Context(), app.StatsQuery{Granularity: g})
		require.NoError(t, err)
		out = append(out, b...)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Agent != out[j].Agent {
			return out[i].Agent < out[j].Agent
		}
		return out[i].Bucket < out[j].Bucket
	})
	return out
}

// A batch beyond one transaction (100 actions) is split into transactions of whole
// sessions, each with its own stats deltas, and ends where one clean pass ends.
func TestCommitLargeBatch(t *testing.T) {
	ctx := t.Context()
	c := dynamotest.NewClient(t)
	cfg := dynamotest.MigratedWithoutStream(t, c)
	store, err := awdynamodb.NewReadModelStore(c, cfg, 1, nil)
	require.NoError(t, err)
	events := storetest.GenerateEvents(7, 80, time.Date(2024, 11, 4, 9, 0, 0, 0, time.UTC))
	want := projections.NewModel()
	for i := range events {
		want.Apply(&events[i])
	}
	// Two big batches: the first half of every session's events, then the rest, so
	// that the second split needs the stored sessions' contributions.
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
		b := planBatch(t, store, part, 1000)
		require.Greater(t, len(b.Sessions)+len(b.Index)+len(b.Stats)+len(b.Stuck), 100, "a batch beyond one transaction")
		b.Checkpoint = checkpoint
		require.NoError(t, store.Commit(ctx, b))
		checkpoint = &app.Checkpoint{Name: "big", Position: "2"}
	}
	assert.Equal(t, want.Stats(), allBuckets(t, store))
	page, err := store.Query(ctx, executionindex.Query{Limit: executionindex.MaxLimit, Ascending: true})
	require.NoError(t, err)
	sort.Slice(page.Items, func(i, j int) bool { return page.Items[i].ExecutionArn < page.Items[j].ExecutionArn })
	wantIndex := want.Index()
	require.Len(t, page.Items, len(wantIndex))
	for i := range wantIndex {
		assert.True(t, executionindex.Equal(wantIndex[i], page.Items[i]), wantIndex[i].ExecutionArn)
	}
	open, err := store.OpenEntries(ctx)
	require.NoError(t, err)
	assert.Equal(t, want.Stuck(), open)
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
	b := planBatch(t, store, events, 1000)
	assert.Empty(t, b.Sessions)

	// A stale big batch conflicts before writing anything.
	stale := planBatch(t, store, renamed(storetest.GenerateEvents(8, 80, time.Date(2024, 11, 5, 9, 0, 0, 0, time.UTC)), "stale-"), 1000)
	stale.Sessions[len(stale.Sessions)-1].Version = 7
	err = store.Commit(ctx, stale)
	require.ErrorIs(t, err, domain.ErrConflict)
	loaded, err = store.LoadSessions(ctx, []string{stale.Sessions[0].Session.ID})
	require.NoError(t, err)
	assert.Empty(t, loaded, "nothing of the stale batch was written")

	// Stats deltas that are not the sessions' contribution changes cannot be split.
	odd := planBatch(t, store, renamed(storetest.GenerateEvents(9, 80, time.Date(2024, 11, 6, 9, 0, 0, 0, time.UTC)), "odd-"), 1000)
	odd.Stats = append(odd.Stats, agentstats.Delta{Agent: "x", Bucket: "DAY#2024-11-06", Counters: agentstats.Counters{"started": 1}})
	err = store.Commit(ctx, odd)
	require.Error(t, err)
	assert.False(t, errors.Is(err, domain.ErrConflict))
}

// A rebuild loads a new generation next to the serving one and switches; stores that
// follow the current generation move with it, and their commits cannot land in the old
// one.
func TestGenerations(t *testing.T) {
	ctx := t.Context()
	c := dynamotest.NewClient(t)
	cfg := dynamotest.MigratedWithoutStream(t, c)
	cfg.GenerationRefresh = time.Hour // only commits see a switch at once
	follow, err := awdynamodb.NewReadModelStore(c, cfg, 0, nil)
	require.NoError(t, err)
	gen1, err := awdynamodb.NewReadModelStore(c, cfg, 1, nil)
	require.NoError(t, err)
	gen2, err := awdynamodb.NewReadModelStore(c, cfg, 2, nil)
	require.NoError(t, err)

	events := storetest.GenerateEvents(3, 40, time.Date(2024, 11, 4, 9, 0, 0, 0, time.UTC))
	require.NoError(t, follow.Commit(ctx, planBatch(t, follow, events[:30], 1000)))

	want := projections.NewModel()
	for i := range events {
		want.Apply(&events[i])
	}
	var stuckWrites []app.StuckWrite
	for _, e := range want.Stuck() {
		stuckWrites = append(stuckWrites, app.StuckWrite{Entry: e, NextCheckMs: 1000})
	}
	require.NoError(t, gen2.BulkLoad(ctx, 2, app.GenerationOf(want.SessionValues(), want.Index(), want.Stats(), stuckWrites)))
	gens, err := follow.Generations(ctx)
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2}, gens)

	assert.Equal(t, want.Stats(), allBuckets(t, gen2))
	loaded, err := gen2.LoadSessions(ctx, []string{events[0].SessionID})
	require.NoError(t, err)
	assert.Equal(t, int64(1), loaded[events[0].SessionID].Version)
	page, err := gen2.Query(ctx, executionindex.Query{Limit: executionindex.MaxLimit})
	require.NoError(t, err)
	assert.Len(t, page.Items, len(want.Index()))
	open, err := gen2.OpenEntries(ctx)
	require.NoError(t, err)
	assert.Equal(t, want.Stuck(), open)

	// The follower still reads generation 1 (cached), and its commit, planned there,
	// must not land once generation 2 is current.
	stale := planBatch(t, follow, events[30:], 1000)
	require.ErrorIs(t, follow.SwitchGeneration(ctx, 3), domain.ErrNotFound)
	require.NoError(t, gen1.SwitchGeneration(ctx, 2))
	cur, err := follow.CurrentGeneration(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, cur)
	require.ErrorIs(t, follow.Commit(ctx, stale), domain.ErrConflict)
	g, err := follow.Generation(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, g, "a failed generation check makes the store read the generation again")
	assert.Equal(t, want.Stats(), allBuckets(t, follow), "reads follow the switch")

	require.ErrorIs(t, follow.DropGeneration(ctx, 2), domain.ErrConflict, "the current generation stays")
	require.NoError(t, follow.DropGeneration(ctx, 1))
	gens, err = follow.Generations(ctx)
	require.NoError(t, err)
	assert.Equal(t, []int{2}, gens)
}
