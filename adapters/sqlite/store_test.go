package sqlite_test

import (
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/adapters/sqlite"
	"github.com/agentwatch/agentwatch/adapters/storetest"
)

// openDB opens a database in a fresh temporary directory, closed with the test.
func openDB(t testing.TB) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), t.TempDir(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	return db
}

func newStores(t *testing.T) storetest.Stores { return storesOn(t, openDB(t)) }

// storesOn returns the stores of db with generation 1 of the registered read models
// current.
func storesOn(t testing.TB, db *sqlite.DB) storetest.Stores {
	reg := storetest.Registry(t)
	gens := sqlite.NewReadModelStore(db, reg, 0)
	storetest.Prepare(t, gens, reg)
	return storetest.Stores{
		Registry:    reg,
		Journal:     sqlite.NewJournalStore(db),
		Projection:  sqlite.NewReadModelStore(db, reg, 1),
		Generations: gens,
		Alerts:      sqlite.NewAlertStore(db),
		Checkpoints: sqlite.NewCheckpointStore(db),
		Quarantine:  sqlite.NewQuarantineStore(db),
	}
}

func TestStoreContract(t *testing.T) {
	storetest.Run(t, newStores)
}

// The suite again through a store that follows the current generation.
func TestStoreContractCurrentGeneration(t *testing.T) {
	storetest.TestProjection(t, func(t *testing.T) storetest.Stores {
		db := openDB(t)
		s := storesOn(t, db)
		s.Projection = sqlite.NewReadModelStore(db, s.Registry, 0)
		return s
	})
}

// TestProjectionProgress: the backlog is what was appended after the projector's
// checkpoint, and the watermark the append time of its first row — the clock once there
// is none.
func TestProjectionProgress(t *testing.T) {
	db := openDB(t)
	ctx := t.Context()
	journal := sqlite.NewJournalStore(db)
	cps := sqlite.NewCheckpointStore(db)
	p := sqlite.NewProjectionProgress(db, "project_journal")

	n, err := p.Backlog(ctx)
	require.NoError(t, err)
	assert.Zero(t, n)
	before := time.Now()
	w, err := p.Watermark(ctx)
	require.NoError(t, err)
	assert.False(t, w.Before(before), "nothing to project: the clock")

	appendedFrom := time.Now().Truncate(time.Millisecond)
	_, err = journal.Append(ctx, storetest.GenerateEvents(3, 2, day))
	require.NoError(t, err)
	total, err := journal.MaxSeq(ctx)
	require.NoError(t, err)
	n, err = p.Backlog(ctx)
	require.NoError(t, err)
	assert.Equal(t, total, n)
	time.Sleep(5 * time.Millisecond) // the clock moves past the append time
	w, err = p.Watermark(ctx)
	require.NoError(t, err)
	assert.False(t, w.Before(appendedFrom), "the first unprojected row's append time")
	assert.True(t, w.Before(time.Now()), "behind the clock")

	require.NoError(t, cps.SetCheckpoint(ctx, "project_journal", strconv.FormatInt(total-1, 10)))
	n, err = p.Backlog(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 1, n)
	require.NoError(t, cps.SetCheckpoint(ctx, "project_journal", strconv.FormatInt(total, 10)))
	n, err = p.Backlog(ctx)
	require.NoError(t, err)
	assert.Zero(t, n)
	before = time.Now()
	w, err = p.Watermark(ctx)
	require.NoError(t, err)
	assert.False(t, w.Before(before), "caught up: the clock")
}
