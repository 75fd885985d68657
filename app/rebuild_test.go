package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/adapters/sqlite"
	"github.com/agentwatch/agentwatch/adapters/storetest"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/app/simulate"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
	"github.com/agentwatch/agentwatch/projections/executionindex"
)

// snapshot renders every settled row of every registered table of the current
// generation: documents as JSON (execution items without indexedAt, the write time) with
// their guard, counters by row. Schedules differ between a live run and a rebuild (a
// rebuild schedules only deadlines ahead) and are left out.
func readSnapshot(t *testing.T, e *embedded) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, tb := range e.reg.Tables() {
		if tb.Kind == projections.Counters {
			rows, err := e.models.ReadCounters(context.Background(), tb.Name, "", "", "\uffff")
			require.NoError(t, err)
			for _, r := range rows {
				b, _ := json.Marshal(r.Counters)
				out[tb.Name+"/"+r.Partition+"/"+r.Sort] = string(b)
			}
			continue
		}
		for _, r := range storetest.AllDocuments(t, e.models, tb.Name) {
			if !e.reg.Settled(tb.Name, r.Doc) {
				continue
			}
			doc := r.Doc
			if it, ok := doc.(*executionindex.Item); ok {
				c := *it
				c.IndexedAt = ""
				doc = &c
			}
			b, _ := json.Marshal(doc)
			out[tb.Name+"/"+r.Key] = fmt.Sprintf("%s guard=%d", b, r.Guard)
		}
	}
	return out
}

func rebuilder(e *embedded) *app.Rebuilder {
	return app.NewRebuilder(e.reg, e.journal, sqlite.NewJournalTail(e.journal), e.models, e.cps,
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
	require.NotEmpty(t, live)

	rep, err := rebuilder(e).Rebuild(context.Background(), app.RebuildOptions{})
	require.NoError(t, err)
	require.Equal(t, 2, rep.ToGeneration)
	require.Equal(t, live, readSnapshot(t, e), "every read model, row by row")
	cps, err := e.cps.GetCheckpoint(context.Background(), app.GenerationCheckpoint(2))
	require.NoError(t, err)
	assert.Empty(t, cps, "the rebuild's catch-up checkpoint is gone with it")
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

	// A clean ordered pass of the whole journal, projected into a fresh file, is the
	// reference.
	ref := newEmbedded(t, filepath.Join(t.TempDir(), "ref"), start)
	require.NoError(t, e.journal.Scan(context.Background(), app.ScanOptions{}, func(b []domain.Event) error {
		_, err := ref.journal.Append(context.Background(), b)
		return err
	}))
	_, err = ref.projector.CatchUp(context.Background(), sqlite.NewJournalTail(ref.journal), ref.cps, app.HandlerProject, 1000)
	require.NoError(t, err)
	require.Equal(t, readSnapshot(t, ref), readSnapshot(t, e))
	gen, _, err := e.models.CurrentGeneration(context.Background())
	require.NoError(t, err)
	require.Equal(t, rep.ToGeneration, gen)
}
