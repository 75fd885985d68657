package dynamodb_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
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

// rebuildStores are the stores of fresh tables: the journal, the read models that
// follow the current generation (as the live worker's), the generations, checkpoints.
func rebuildStores(t *testing.T) (*awdynamodb.JournalStore, *awdynamodb.ReadModelStore, *awdynamodb.ReadModelStore, *awdynamodb.CheckpointStore) {
	t.Helper()
	c := dynamotest.NewClient(t)
	cfg := dynamotest.MigratedWithoutStream(t, c)
	journal, err := awdynamodb.NewJournalStore(c, cfg, nil)
	require.NoError(t, err)
	reg := dynamotest.Registry(t)
	live, err := awdynamodb.NewReadModelStore(c, cfg, reg, 0, nil)
	require.NoError(t, err)
	gens, err := awdynamodb.NewReadModelStore(c, cfg, reg, 0, nil)
	require.NoError(t, err)
	cps, err := awdynamodb.NewCheckpointStore(c, cfg)
	require.NoError(t, err)
	return journal, live, gens, cps
}

// TestRebuildUnderLiveTrafficLosesNothing keeps appending events and projecting them as
// the live worker does (into whatever generation is current) while a rebuild runs,
// then checks that the new generation equals a clean fold of the whole journal: what
// live projection committed to the old generation during the rebuild was recorded and
// folded again into the new one. The records are gone afterwards.
func TestRebuildUnderLiveTrafficLosesNothing(t *testing.T) {
	ctx := t.Context()
	logger := slog.New(slog.DiscardHandler)
	journal, live, gens, cps := rebuildStores(t)
	reg := dynamotest.Registry(t)
	worker := app.NewProjector(live, reg, logger, nil)
	deliver := func(evs []domain.Event) {
		_, err := journal.Append(ctx, evs)
		require.NoError(t, err)
		require.NoError(t, worker.Project(ctx, evs, nil))
	}

	// Events of the second half belong to sessions of the first half too.
	events := storetest.ShuffleWithDuplicates(31, storetest.GenerateEvents(31, 300, time.Date(2024, 11, 4, 9, 0, 0, 0, time.UTC)))
	half := len(events) / 2
	for i := 0; i < half; i += 50 {
		deliver(events[i:min(i+50, half)])
	}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	var written atomic.Int64
	wg.Go(func() {
		// Small batches (one transaction each) and large ones (split in several).
		for i, k := half, 0; i < len(events); k++ {
			n := []int{5, 40}[k%2]
			select {
			case <-stop:
				return
			default:
			}
			deliver(events[i:min(i+n, len(events))])
			i = min(i+n, len(events))
			written.Store(int64(i))
		}
	})
	rb := app.NewRebuilder(reg, journal, nil, gens, cps, logger, nil).WithSessionRecorder(gens, journal)
	var progressTotal atomic.Int64
	rep, err := rb.Rebuild(ctx, app.RebuildOptions{Progress: func(_, total int64) { progressTotal.Store(total) }})
	close(stop)
	wg.Wait()
	require.NoError(t, err)
	require.Greater(t, int(written.Load()), half, "traffic ran during the rebuild")
	assert.Positive(t, progressTotal.Load(), "progress has an estimate of the journal's size (DescribeTable), for its ETA")
	t.Logf("rebuild folded %d events and %d again from recorded sessions; %d of %d events delivered meanwhile",
		rep.Events, rep.CaughtUp, int(written.Load())-half, len(events)-half)

	want := storetest.FoldJournal(t, journal)
	cur, _, err := live.CurrentGeneration(ctx)
	require.NoError(t, err)
	require.Equal(t, rep.ToGeneration, cur)
	require.Equal(t, storetest.StateSnapshot(reg, want.Derive(reg, projections.Env{})), storetest.Snapshot(t, reg, live),
		"every read model equals a clean fold of the journal")

	recorded, err := gens.RecordedSessions(ctx, rep.ToGeneration)
	require.NoError(t, err)
	assert.Empty(t, recorded, "the records are deleted")
	// Live commits no longer record anything.
	more := storetest.GenerateEvents(32, 3, time.Date(2024, 11, 5, 9, 0, 0, 0, time.UTC))
	deliver(more)
	recorded, err = gens.RecordedSessions(ctx, rep.ToGeneration)
	require.NoError(t, err)
	assert.Empty(t, recorded, "recording stopped")
}

// A rebuild that died while loading leaves live commits recording for its generation:
// dropping the generation stops that and deletes the records.
func TestDropGenerationStopsRecording(t *testing.T) {
	ctx := t.Context()
	_, live, gens, _ := rebuildStores(t)
	worker := app.NewProjector(live, dynamotest.Registry(t), slog.New(slog.DiscardHandler), nil)
	events := storetest.GenerateEvents(33, 4, time.Date(2024, 11, 4, 9, 0, 0, 0, time.UTC))

	// The live store has read the generation state (and trusts it for a while) before
	// the mark is set.
	last := events[len(events)-1:]
	require.NoError(t, worker.Project(ctx, last, nil))
	require.NoError(t, gens.CreateGeneration(ctx, 7, ""))
	require.NoError(t, gens.StartRecording(ctx, 7))
	first := slices.DeleteFunc(slices.Clone(events), func(e domain.Event) bool { return e.SessionID != events[0].SessionID })
	require.NotEqual(t, last[0].SessionID, first[0].SessionID)
	require.NoError(t, worker.Project(ctx, first, nil), "its commit fails the generation check, reads the mark and records")
	recorded, err := gens.RecordedSessions(ctx, 7)
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{events[0].SessionID: 1}, recorded)

	require.NoError(t, gens.DropGeneration(ctx, 7))
	recorded, err = gens.RecordedSessions(ctx, 7)
	require.NoError(t, err)
	assert.Empty(t, recorded)
	require.NoError(t, worker.Project(ctx, events[1:], nil))
	recorded, err = gens.RecordedSessions(ctx, 7)
	require.NoError(t, err)
	assert.Empty(t, recorded, "nothing recorded once the generation is gone")
}

// failingScan is a journal whose scan fails after live commits were recorded.
type failingScan struct {
	during func()
}

func (f failingScan) Scan(context.Context, app.ScanOptions, func([]domain.Event) error) error {
	f.during()
	return errors.New("scan failed")
}

// A rebuild that fails leaves the serving generation, stops recording and deletes the
// records.
func TestFailedRebuildStopsRecording(t *testing.T) {
	ctx := t.Context()
	journal, live, gens, cps := rebuildStores(t)
	reg := dynamotest.Registry(t)
	worker := app.NewProjector(live, reg, slog.New(slog.DiscardHandler), nil)
	events := storetest.GenerateEvents(34, 4, time.Date(2024, 11, 4, 9, 0, 0, 0, time.UTC))

	recordedDuring := 0
	scan := failingScan{during: func() {
		require.NoError(t, worker.Project(ctx, events, nil))
		recorded, err := gens.RecordedSessions(ctx, 2)
		require.NoError(t, err)
		recordedDuring = len(recorded)
	}}
	rb := app.NewRebuilder(reg, scan, nil, gens, cps, slog.New(slog.DiscardHandler), nil).WithSessionRecorder(gens, journal)
	_, err := rb.Rebuild(ctx, app.RebuildOptions{})
	require.ErrorContains(t, err, "scan failed")
	assert.Equal(t, 4, recordedDuring, "live commits recorded their sessions while the rebuild ran")

	cur, _, err := gens.CurrentGeneration(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, cur)
	all, err := gens.Generations(ctx)
	require.NoError(t, err)
	assert.Equal(t, []int{1}, all, "the partial generation is gone")
	recorded, err := gens.RecordedSessions(ctx, 2)
	require.NoError(t, err)
	assert.Empty(t, recorded)
	require.NoError(t, worker.Project(ctx, storetest.GenerateEvents(35, 2, time.Date(2024, 11, 5, 9, 0, 0, 0, time.UTC)), nil))
	recorded, err = gens.RecordedSessions(ctx, 2)
	require.NoError(t, err)
	assert.Empty(t, recorded, "recording stopped")
}
