package sqlite_test

import (
	"os"
	"path/filepath"
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
	"github.com/agentwatch/agentwatch/projections/executionindex"
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
	_, _, err = sqlite.NewReadModelStore(db2, storetest.Registry(t), 0).CurrentGeneration(t.Context())
	require.ErrorIs(t, err, domain.ErrNotFound, "the read models' first generation comes with the first use (app.EnsureReadModels)")
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

// TestBulkLoadMatchesModel loads a folded journal into a new generation and reads it
// back through the ports.
func TestBulkLoadMatchesModel(t *testing.T) {
	ctx := t.Context()
	db := openDB(t)
	s := storesOn(t, db)
	events := storetest.GenerateEvents(9, 400, day)
	m := projections.NewModel()
	for i := range events {
		m.Apply(&events[i])
	}
	sessions := m.SessionValues()
	env := projections.Env{NowMs: day.UnixMilli()}
	store := sqlite.NewReadModelStore(db, s.Registry, 3)
	require.NoError(t, store.BulkLoad(ctx, 3, app.GenerationOf(sessions, m.Derive(s.Registry, env))))
	s.Projection = store
	storetest.CompareWithModel(t, s, m, env)

	// The live projector takes over from the loaded versions.
	ids := []string{sessions[0].ID}
	loaded, err := store.LoadSessions(ctx, ids)
	require.NoError(t, err)
	s0 := sessions[0]
	commit := func(v int64) error {
		return store.Commit(ctx, app.Batch{Sessions: []app.SessionChange{{SessionWrite: app.SessionWrite{Session: s0, Version: v}}}})
	}
	require.NoError(t, commit(loaded[s0.ID].Version))
	reloaded, err := store.LoadSessions(ctx, ids)
	require.NoError(t, err)
	// A second load of the same generation bumps versions, so a projector holding the
	// version it read before now conflicts instead of overwriting.
	require.NoError(t, store.BulkLoad(ctx, 3, app.GenerationOf(sessions[:1], nil)))
	require.ErrorIs(t, commit(reloaded[s0.ID].Version), domain.ErrConflict)

	// Loading does not touch the serving generation.
	gen, _, err := store.CurrentGeneration(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, gen)
}

// TestBulkLoadFailsWhole: a table found bad after the sessions were written (a
// document twice, known only once the derivation is ready) fails the load, and nothing
// of it is left in the generation.
func TestBulkLoadFailsWhole(t *testing.T) {
	ctx := t.Context()
	db := openDB(t)
	reg := storetest.Registry(t)
	m := projections.NewModel()
	events := storetest.GenerateEvents(3, 50, day)
	for i := range events {
		m.Apply(&events[i])
	}
	st := m.Derive(reg, projections.Env{NowMs: day.UnixMilli()})
	docs := st.Documents(executionindex.Table)
	require.NotEmpty(t, docs)
	bad := app.GenerationData{
		Sessions: m.Sessions(),
		Rows: func(table string) app.TableRows {
			if table != executionindex.Table {
				return app.TableRows{}
			}
			time.Sleep(50 * time.Millisecond) // ready while the sessions are being written
			return app.TableRows{Documents: append(docs, docs[0])}
		},
	}
	store := sqlite.NewReadModelStore(db, reg, 2)
	require.NoError(t, store.CreateGeneration(ctx, 2, reg.Signature()))
	err := store.BulkLoad(ctx, 2, bad)
	require.Error(t, err)
	assert.Contains(t, err.Error(), docs[0].Key)
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

	reg := storetest.Registry(t)
	storetest.Prepare(t, sqlite.NewReadModelStore(db, reg, 0), reg)
	live := sqlite.NewReadModelStore(db, reg, 0)
	events := storetest.GenerateEvents(3, 1, day)
	var s domain.Session
	s.Apply(&events[0])
	commit := func(v int64) error {
		return live.Commit(ctx, app.Batch{Sessions: []app.SessionChange{{SessionWrite: app.SessionWrite{Session: s, Version: v}}}})
	}
	require.NoError(t, commit(0))
	loaded, err := live.LoadSessions(ctx, []string{s.ID})
	require.NoError(t, err)

	// The rebuild loads generation 2 (the session at its own version) and switches.
	rebuild := sqlite.NewReadModelStore(other, reg, 0)
	require.NoError(t, rebuild.BulkLoad(ctx, 2, app.GenerationOf([]domain.Session{s}, nil)))
	require.NoError(t, rebuild.SwitchGeneration(ctx, 2))

	s.Apply(&events[1])
	require.ErrorIs(t, commit(loaded[s.ID].Version), domain.ErrConflict, "loaded from generation 1, current is 2")

	loaded, err = live.LoadSessions(ctx, []string{s.ID})
	require.NoError(t, err)
	require.NoError(t, commit(loaded[s.ID].Version))
	got, err := sqlite.NewReadModelStore(other, reg, 2).LoadSessions(ctx, []string{s.ID})
	require.NoError(t, err)
	landed := got[s.ID].Session
	assert.True(t, s.Equal(&landed), "the commit landed in generation 2")
	old, err := sqlite.NewReadModelStore(other, reg, 1).LoadSessions(ctx, []string{s.ID})
	require.NoError(t, err)
	stale := old[s.ID].Session
	assert.False(t, s.Equal(&stale), "and not in generation 1")
}
