package app_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/adapters/sqlite"
	"github.com/agentwatch/agentwatch/adapters/storetest"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/app/simulate"
	"github.com/agentwatch/agentwatch/projections/agentstats"
	"github.com/agentwatch/agentwatch/projections/executionindex"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// snapshot is every read model of the current generation.
type snapshot struct {
	items []executionindex.Item
	stats []agentstats.Bucket
	stuck []stuck.Entry
}

func readSnapshot(t *testing.T, e *embedded) snapshot {
	t.Helper()
	ctx := context.Background()
	s := snapshot{items: storetest.AllItems(t, e.models)}
	for i := range s.items {
		s.items[i].IndexedAt = ""
	}
	for _, g := range []string{agentstats.HourPrefix, agentstats.DayPrefix} {
		b, err := e.models.Stats(ctx, app.StatsQuery{Granularity: g})
		require.NoError(t, err)
		s.stats = append(s.stats, b...)
	}
	sort.Slice(s.stats, func(i, j int) bool {
		return s.stats[i].Agent+s.stats[i].Bucket < s.stats[j].Agent+s.stats[j].Bucket
	})
	es, err := e.models.OpenEntries(ctx)
	require.NoError(t, err)
	for _, en := range es {
		if !en.Closed {
			s.stuck = append(s.stuck, en)
		}
	}
	sort.Slice(s.stuck, func(i, j int) bool { return s.stuck[i].SessionID < s.stuck[j].SessionID })
	return s
}

func requireSameItems(t *testing.T, want, got []executionindex.Item) {
	t.Helper()
	require.Equal(t, len(want), len(got), "executions")
	for i := range want {
		require.Truef(t, executionindex.Equal(want[i], got[i]), "execution %s:\nwant %+v\ngot  %+v", want[i].ExecutionArn, want[i], got[i])
	}
}

func rebuilder(e *embedded) *app.Rebuilder {
	return app.NewRebuilder(e.journal, sqlite.NewJournalTail(e.journal), sqlite.NewGenerationStore(e.db), e.cps, stuck.DefaultConfig(),
		slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
}

// TestRebuiltEqualsLive: after a live run (events projected batch by batch, shuffled
// and duplicated as the feeds deliver them), a rebuild from the journal produces read
// models equal to the live ones, item by item.
func TestRebuiltEqualsLive(t *testing.T) {
	start := time.Date(2024, 11, 4, 10, 0, 0, 0, time.UTC)
	e := newEmbedded(t, filepath.Join(t.TempDir(), "live"), start)
	objs, _, err := simulate.Generate(simulate.Config{Seed: 21, Sessions: 400, Start: start, Window: 15 * time.Minute,
		DuplicateRate: 0.1, ReorderRate: 0.2})
	require.NoError(t, err)
	for i := 0; i < len(objs); i += 37 {
		e.deliver(t, objs[i:min(i+37, len(objs))])
	}
	live := readSnapshot(t, e)
	require.NotEmpty(t, live.items)

	rep, err := rebuilder(e).Rebuild(context.Background(), app.RebuildOptions{})
	require.NoError(t, err)
	require.Equal(t, 2, rep.ToGeneration)
	rebuilt := readSnapshot(t, e)
	requireSameItems(t, live.items, rebuilt.items)
	require.Equal(t, live.stats, rebuilt.stats, "stats buckets")
	require.Equal(t, live.stuck, rebuilt.stuck, "detector entries")
}

// TestRebuildUnderLiveTrafficLosesNothing keeps ingesting and projecting events (as the
// live worker does, into whatever generation is current) while a rebuild runs, then
// checks that the new generation holds the effect of every event in the journal: it
// equals a clean fold of the whole journal.
func TestRebuildUnderLiveTrafficLosesNothing(t *testing.T) {
	start := time.Date(2024, 11, 4, 10, 0, 0, 0, time.UTC)
	e := newEmbedded(t, filepath.Join(t.TempDir(), "busy"), start)
	objs, _, err := simulate.Generate(simulate.Config{Seed: 22, Sessions: 1500, Start: start, Window: 30 * time.Minute})
	require.NoError(t, err)
	half := len(objs) / 2
	e.deliver(t, objs[:half])

	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	written := 0
	go func() {
		defer wg.Done()
		for i := half; i < len(objs); i += 25 {
			select {
			case <-stop:
				return
			default:
			}
			e.deliver(t, objs[i:min(i+25, len(objs))])
			written = min(i+25, len(objs))
		}
	}()
	rep, err := rebuilder(e).Rebuild(context.Background(), app.RebuildOptions{})
	close(stop)
	wg.Wait()
	require.NoError(t, err)
	require.Greater(t, written, half, "traffic ran during the rebuild")
	t.Logf("rebuild folded %d events, caught up %d; %d of %d objects delivered meanwhile", rep.Events, rep.CaughtUp, written-half, len(objs)-half)
	// The live worker's projection of what came after the rebuild's last catch-up.
	_, err = e.projector.CatchUp(context.Background(), sqlite.NewJournalTail(e.journal), e.cps, app.HandlerProject, 1000)
	require.NoError(t, err)

	m := storetest.FoldJournal(t, e.journal)
	got := readSnapshot(t, e)
	want := m.Index()
	requireSameItems(t, want, got.items)
	gen, err := e.models.CurrentGeneration(context.Background())
	require.NoError(t, err)
	require.Equal(t, rep.ToGeneration, gen)
}
