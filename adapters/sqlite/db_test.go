package sqlite_test

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/adapters/sqlite"
	"github.com/agentwatch/agentwatch/adapters/storetest"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
	"github.com/agentwatch/agentwatch/projections/agentstats"
	"github.com/agentwatch/agentwatch/projections/executionindex"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

func TestOpenCreatesAndReopens(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "data")
	db, err := sqlite.Open(t.Context(), dir, nil)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, sqlite.FileName), db.Path())
	v, err := db.SchemaVersion(t.Context())
	require.NoError(t, err)
	assert.Equal(t, sqlite.SchemaVersion, v)
	events := storetest.GenerateEvents(1, 3, day)
	_, err = sqlite.NewJournalStore(db).Append(t.Context(), events)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	require.NoError(t, db.Close(), "Close is idempotent")
	_, err = os.Stat(filepath.Join(dir, sqlite.FileName))
	require.NoError(t, err)

	// A second open (another process, or a restart) finds the data and migrates nothing.
	db2, err := sqlite.Open(t.Context(), dir, nil)
	require.NoError(t, err)
	defer db2.Close()
	seq, err := sqlite.NewJournalStore(db2).MaxSeq(t.Context())
	require.NoError(t, err)
	assert.Equal(t, int64(len(events)), seq)
	gen, err := sqlite.NewReadModelStore(db2, 0).CurrentGeneration(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, gen)
}

func TestAppendRejectsInvalidEvents(t *testing.T) {
	journal := sqlite.NewJournalStore(openDB(t))
	good := storetest.GenerateEvents(1, 1, day)[0]
	bad := []domain.Event{
		{SK: good.SK, Status: good.Status, Timestamp: good.Timestamp},
		{SessionID: "s", SK: "2024-11-04", Status: good.Status, Timestamp: good.Timestamp},
		{SessionID: "s", SK: good.SK, Timestamp: good.Timestamp},
		{SessionID: "s", SK: good.SK, Status: good.Status},
		{SessionID: "s", SK: good.SK, Status: domain.StatusExecutionRunning, Timestamp: good.Timestamp},
	}
	for _, ev := range bad {
		_, err := journal.Append(t.Context(), []domain.Event{good, ev})
		assert.ErrorIs(t, err, domain.ErrInvalid)
	}
	seq, err := journal.MaxSeq(t.Context())
	require.NoError(t, err)
	assert.Zero(t, seq, "nothing of a rejected call is written")
}

func TestReadAfterAndScanSnapshot(t *testing.T) {
	journal := sqlite.NewJournalStore(openDB(t))
	events := storetest.GenerateEvents(2, 30, day)
	_, err := journal.Append(t.Context(), events)
	require.NoError(t, err)

	rows, err := journal.ReadAfter(t.Context(), 10, 5)
	require.NoError(t, err)
	require.Len(t, rows, 5)
	for i, r := range rows {
		assert.Equal(t, int64(11+i), r.Seq)
		assert.Equal(t, events[10+i].Item(), r.Event.Item())
	}
	rows, err = journal.ReadAfter(t.Context(), int64(len(events)), 5)
	require.NoError(t, err)
	assert.Empty(t, rows)

	n := 0
	pos, err := journal.ScanSnapshot(t.Context(), app.ScanOptions{}, func(b []domain.Event) error { n += len(b); return nil })
	require.NoError(t, err)
	assert.Equal(t, len(events), n)
	assert.Equal(t, strconv.Itoa(len(events)), pos, "the position of the snapshot's last row")
}

func TestGenerations(t *testing.T) {
	ctx := t.Context()
	db := openDB(t)
	current := sqlite.NewReadModelStore(db, 0)
	g1, g2 := sqlite.NewReadModelStore(db, 1), sqlite.NewReadModelStore(db, 2)

	item := func(status domain.ExecStatus) executionindex.Item {
		return executionindex.Item{ExecutionArn: "arn:exec", AgentName: "a", Status: string(status), StartDate: "2024-11-04T10:00:00.000Z",
			SessionID: "s", Rank: domain.Rank(status, 0)}
	}
	require.NoError(t, g1.Commit(ctx, app.Batch{Index: []executionindex.Item{item(domain.ExecRunning)}}))
	gens, err := current.Generations(ctx)
	require.NoError(t, err)
	assert.Equal(t, []int{1}, gens)

	// A rebuild fills generation 2 while 1 serves.
	require.ErrorIs(t, current.SwitchGeneration(ctx, 2), domain.ErrNotFound, "not created yet")
	require.NoError(t, current.CreateGeneration(ctx, 2))
	require.NoError(t, current.CreateGeneration(ctx, 2), "creating twice is harmless")
	require.NoError(t, g2.Commit(ctx, app.Batch{Index: []executionindex.Item{item(domain.ExecSucceeded)}}))
	got, err := current.Get(ctx, "arn:exec")
	require.NoError(t, err)
	assert.Equal(t, "RUNNING", got.Status, "generation 1 serves")

	require.NoError(t, current.SwitchGeneration(ctx, 2))
	gen, err := current.CurrentGeneration(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, gen)
	got, err = current.Get(ctx, "arn:exec")
	require.NoError(t, err)
	assert.Equal(t, "SUCCEEDED", got.Status, "the store of generation 0 follows the switch")
	got, err = g1.Get(ctx, "arn:exec")
	require.NoError(t, err)
	assert.Equal(t, "RUNNING", got.Status, "a store of generation 1 stays on it")

	require.ErrorIs(t, current.DropGeneration(ctx, 2), domain.ErrConflict, "the current generation stays")
	require.NoError(t, current.DropGeneration(ctx, 1))
	require.NoError(t, current.DropGeneration(ctx, 1), "dropping twice is harmless")
	gens, err = current.Generations(ctx)
	require.NoError(t, err)
	assert.Equal(t, []int{2}, gens)
	_, err = g1.Get(ctx, "arn:exec")
	assert.Error(t, err, "generation 1's tables are gone")
	require.Error(t, current.CreateGeneration(ctx, 0))
}

// TestBulkLoadMatchesModel loads a folded journal into a new generation and reads it
// back through the ports.
func TestBulkLoadMatchesModel(t *testing.T) {
	ctx := t.Context()
	db := openDB(t)
	events := storetest.GenerateEvents(9, 400, day)
	m := projections.NewModel()
	for i := range events {
		m.Apply(&events[i])
	}
	var sessions []domain.Session
	var stuckWrites []app.StuckWrite
	for _, s := range m.Sessions() {
		sessions = append(sessions, *s)
	}
	for _, e := range m.Stuck() {
		stuckWrites = append(stuckWrites, app.StuckWrite{Entry: e, NextCheckMs: stuck.FirstCheckMs(day)})
	}
	store := sqlite.NewReadModelStore(db, 3)
	require.NoError(t, store.BulkLoad(ctx, 3, app.GenerationOf(sessions, m.Index(), m.Stats(), stuckWrites)))

	ids := make([]string, len(sessions))
	for i := range sessions {
		ids[i] = sessions[i].ID
	}
	loaded, err := store.LoadSessions(ctx, ids)
	require.NoError(t, err)
	require.Len(t, loaded, len(ids))
	for _, s := range sessions {
		got := loaded[s.ID]
		assert.NotZero(t, got.Version)
		assert.True(t, s.Equal(&got.Session), "session %s", s.ID)
	}
	want := m.Index()
	page, err := store.Query(ctx, executionindex.Query{Limit: executionindex.MaxLimit, Ascending: true})
	require.NoError(t, err)
	require.Len(t, page.Items, len(want))
	sort.Slice(page.Items, func(i, j int) bool { return page.Items[i].ExecutionArn < page.Items[j].ExecutionArn })
	for i := range want {
		assert.True(t, executionindex.Equal(want[i], page.Items[i]))
		assert.NotEmpty(t, page.Items[i].IndexedAt)
	}
	var stats []agentstats.Bucket
	for _, g := range []string{agentstats.DayPrefix, agentstats.HourPrefix} {
		b, err := store.Stats(ctx, app.StatsQuery{Granularity: g})
		require.NoError(t, err)
		stats = append(stats, b...)
	}
	sort.Slice(stats, func(i, j int) bool {
		return stats[i].Agent < stats[j].Agent || stats[i].Agent == stats[j].Agent && stats[i].Bucket < stats[j].Bucket
	})
	assert.Equal(t, m.Stats(), stats)
	open, err := store.OpenEntries(ctx)
	require.NoError(t, err)
	assert.Equal(t, m.Stuck(), open)
	due, err := store.DueEntries(ctx, day.UnixMilli(), 0)
	require.NoError(t, err)
	assert.Len(t, due, len(open))

	// The live projector takes over from the loaded versions.
	s0 := sessions[0]
	require.NoError(t, store.Commit(ctx, app.Batch{Sessions: []app.SessionWrite{{Session: s0, Version: loaded[s0.ID].Version}}}))
	reloaded, err := store.LoadSessions(ctx, []string{s0.ID})
	require.NoError(t, err)
	// A second load of the same generation bumps versions, so a projector holding the
	// version it read before now conflicts instead of overwriting.
	require.NoError(t, store.BulkLoad(ctx, 3, app.GenerationOf(sessions[:1], nil, nil, nil)))
	err = store.Commit(ctx, app.Batch{Sessions: []app.SessionWrite{{Session: s0, Version: reloaded[s0.ID].Version}}})
	require.ErrorIs(t, err, domain.ErrConflict)

	// Loading does not touch the serving generation.
	gen, err := store.CurrentGeneration(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, gen)
}

// TestBulkLoadFailsWhole: a part found bad after the sessions were written (an index
// item twice, known only once the items are ready) fails the load, and nothing of it is
// left in the generation.
func TestBulkLoadFailsWhole(t *testing.T) {
	ctx := t.Context()
	db := openDB(t)
	m := projections.NewModel()
	events := storetest.GenerateEvents(3, 50, day)
	for i := range events {
		m.Apply(&events[i])
	}
	items := m.Index()
	require.NotEmpty(t, items)
	bad := app.GenerationData{
		Sessions: m.Sessions(),
		Items: func() []executionindex.Item {
			time.Sleep(50 * time.Millisecond) // ready while the sessions are being written
			return append(items, items[0])
		},
		Buckets: func() []agentstats.Bucket { return nil },
		Stuck:   func() []app.StuckWrite { return nil },
	}
	store := sqlite.NewReadModelStore(db, 2)
	require.NoError(t, store.CreateGeneration(ctx, 2))
	err := store.BulkLoad(ctx, 2, bad)
	require.Error(t, err)
	assert.Contains(t, err.Error(), items[0].ExecutionArn)
	assert.Contains(t, err.Error(), "appears twice")

	loaded, err := store.LoadSessions(ctx, []string{m.Sessions()[0].ID})
	require.NoError(t, err)
	assert.Empty(t, loaded, "the sessions written before the failure are rolled back")
}

// TestCommitFollowsSwitch: a projector on the current generation never writes a
// session loaded from one generation into another, even when another process switches
// generations between its load and its commit.
func TestCommitFollowsSwitch(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, dir, nil)
	require.NoError(t, err)
	defer db.Close()
	other, err := sqlite.Open(ctx, dir, nil) // the CLI's rebuild, say
	require.NoError(t, err)
	defer other.Close()

	live := sqlite.NewReadModelStore(db, 0)
	events := storetest.GenerateEvents(3, 1, day)
	var s domain.Session
	s.Apply(&events[0])
	require.NoError(t, live.Commit(ctx, app.Batch{Sessions: []app.SessionWrite{{Session: s}}}))
	loaded, err := live.LoadSessions(ctx, []string{s.ID})
	require.NoError(t, err)

	// The rebuild loads generation 2 (the session at its own version) and switches.
	rebuild := sqlite.NewReadModelStore(other, 0)
	require.NoError(t, rebuild.BulkLoad(ctx, 2, app.GenerationOf([]domain.Session{s}, nil, nil, nil)))
	require.NoError(t, rebuild.SwitchGeneration(ctx, 2))

	s.Apply(&events[1])
	err = live.Commit(ctx, app.Batch{Sessions: []app.SessionWrite{{Session: s, Version: loaded[s.ID].Version}}})
	require.ErrorIs(t, err, domain.ErrConflict, "loaded from generation 1, current is 2")

	loaded, err = live.LoadSessions(ctx, []string{s.ID})
	require.NoError(t, err)
	require.NoError(t, live.Commit(ctx, app.Batch{Sessions: []app.SessionWrite{{Session: s, Version: loaded[s.ID].Version}}}))
	got, err := sqlite.NewReadModelStore(other, 2).LoadSessions(ctx, []string{s.ID})
	require.NoError(t, err)
	landed := got[s.ID].Session
	assert.True(t, s.Equal(&landed), "the commit landed in generation 2")
	old, err := sqlite.NewReadModelStore(other, 1).LoadSessions(ctx, []string{s.ID})
	require.NoError(t, err)
	stale := old[s.ID].Session
	assert.False(t, s.Equal(&stale), "and not in generation 1")
}
