package main

import (
	"bytes"
	"context"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/agentwatch/agentwatch/adapters/alerts"
	"github.com/agentwatch/agentwatch/adapters/httpapi"
	"github.com/agentwatch/agentwatch/adapters/sqlite"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/app/simulate"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/agentstats"
	"github.com/agentwatch/agentwatch/projections/executionindex"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// TestValidateWorkerGraph checks the real fx graph of `run` (and of the listings).
func TestValidateWorkerGraph(t *testing.T) {
	cfg := app.Config{}
	cfg.SetDefaults()
	g := &globals{backend: "sqlite", dataDir: t.TempDir()}
	mods, err := g.backendModules(true)
	require.NoError(t, err)
	opts := append([]fx.Option{fx.Supply(cfg, g.logger(), httpapi.Config{Addr: "127.0.0.1:0"}, alerts.Config{}, app.DemoConfig{}),
		app.CoreModule, app.WorkerModule, alerts.Module, httpapi.Module, app.DemoModule}, mods...)
	require.NoError(t, fx.ValidateApp(opts...))
	mods, err = g.backendModules(false)
	require.NoError(t, err)
	var q *app.Queries
	require.NoError(t, fx.ValidateApp(append([]fx.Option{fx.Supply(cfg, g.logger()), app.CoreModule, fx.Populate(&q)}, mods...)...))
}

// worker is a running embedded worker on a real SQLite file, built through fx.
type worker struct {
	app       *fxtest.App
	queries   *app.Queries
	ingester  *app.Ingester
	projector *app.Projector
	pub       app.StatusChangePublisher
	tail      app.JournalTail
	cps       app.CheckpointStore
	journal   *sqlite.JournalStore
	cfg       app.Config
}

func startWorker(t *testing.T, dir string, withRouter bool) *worker {
	t.Helper()
	return startWorkerTB(t, dir, withRouter)
}

func startWorkerB(b *testing.B, dir string) *worker { return startWorkerTB(b, dir, true) }

func startWorkerTB(t testing.TB, dir string, withRouter bool) *worker {
	t.Helper()
	w := &worker{}
	w.cfg.SetDefaults()
	g := &globals{backend: "sqlite", dataDir: dir, logLevel: "warn"}
	mods, err := g.backendModules(withRouter)
	require.NoError(t, err)
	opts := append([]fx.Option{fx.Supply(w.cfg, g.logger()), app.CoreModule,
		fx.Populate(&w.queries, &w.ingester, &w.projector, &w.tail, &w.cps, &w.journal)}, mods...)
	if withRouter {
		opts = append(opts, app.WorkerModule, fx.Populate(&w.pub), fx.Provide(func() []app.AlertSink { return nil }))
	}
	w.app = fxtest.New(t, opts...)
	w.app.RequireStart()
	t.Cleanup(w.app.RequireStop)
	return w
}

// readModels reads every execution, stats bucket and detector entry.
func (w *worker) readModels(t *testing.T) ([]executionindex.Item, []app.AgentStatsView, []stuck.Entry) {
	t.Helper()
	ctx := context.Background()
	var items []executionindex.Item
	q := executionindex.Query{Limit: executionindex.MaxLimit, Ascending: true}
	for {
		page, err := w.queries.Executions(ctx, q)
		require.NoError(t, err)
		items = append(items, page.Items...)
		if page.NextCursor == "" {
			break
		}
		q.Cursor = page.NextCursor
	}
	for i := range items {
		items[i].IndexedAt = ""
	}
	var stats []app.AgentStatsView
	for _, gran := range []string{agentstats.HourPrefix, agentstats.DayPrefix} {
		s, err := w.queries.Stats(ctx, app.StatsQuery{Granularity: gran})
		require.NoError(t, err)
		stats = append(stats, s...)
	}
	page, err := w.queries.Stuck(ctx, "", executionindex.MaxLimit)
	require.NoError(t, err)
	require.Empty(t, page.NextCursor, "every entry on one page")
	return items, stats, page.Items
}

// TestComponentShuffledDuplicatedMalformed is the embedded worker end to end through
// fx on a real SQLite file: status changes and journal items delivered through the
// router's ingest handler shuffled, duplicated and with malformed objects mixed in give
// read models identical to a clean, ordered, duplicate-free ingest — and every malformed
// object is in the quarantine with its reason.
func TestComponentShuffledDuplicatedMalformed(t *testing.T) {
	objs, _, err := simulate.Generate(simulate.Config{Seed: 42, Sessions: 150, DuplicateRate: 0.2, ReorderRate: 0.2, MalformedRate: 0.05})
	require.NoError(t, err)

	var clean []simulate.Object
	seen := map[string]bool{}
	malformed := 0
	for _, o := range objs {
		if o.Kind == simulate.KindMalformed {
			malformed++
			continue
		}
		if !seen[string(o.Body)] {
			seen[string(o.Body)] = true
			clean = append(clean, o)
		}
	}
	require.Positive(t, malformed)

	// Reference: a clean ordered run, ingested directly and projected by catch-up.
	ref := startWorker(t, filepath.Join(t.TempDir(), "ref"), false)
	var body bytes.Buffer
	require.NoError(t, simulate.WriteNDJSON(&body, clean))
	rep, err := ref.ingester.IngestBody(t.Context(), "test", body.Bytes())
	require.NoError(t, err)
	require.Zero(t, rep.Rejected)
	require.Equal(t, len(clean), rep.Accepted)
	_, err = ref.projector.CatchUp(t.Context(), ref.tail, ref.cps, ref.cfg.CheckpointName, 100)
	require.NoError(t, err)

	// Faulty: everything, shuffled further, through the router (GoChannel -> ingest
	// handler -> journal -> tail -> project handler).
	w := startWorker(t, filepath.Join(t.TempDir(), "faulty"), true)
	faulty := append([]simulate.Object(nil), objs...)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(faulty), func(i, j int) { faulty[i], faulty[j] = faulty[j], faulty[i] })
	for _, o := range faulty {
		require.NoError(t, w.pub.Publish(app.TopicStatusChanges, message.NewMessage(watermill.NewUUID(), o.Body)))
	}
	waitCaughtUp(t, w, len(clean), malformed)

	wantItems, wantStats, wantStuck := ref.readModels(t)
	gotItems, gotStats, gotStuck := w.readModels(t)
	require.NotEmpty(t, wantItems)
	assert.Equal(t, wantItems, gotItems, "execution index")
	assert.Equal(t, wantStats, gotStats, "agent stats")
	assert.Equal(t, wantStuck, gotStuck, "stuck entries")

	qs, total, err := w.queries.Quarantined(t.Context(), 1000)
	require.NoError(t, err)
	assert.EqualValues(t, malformed, total, "every malformed object quarantined, nothing else")
	for _, q := range qs {
		assert.NotEmpty(t, q.Reason)
		assert.NotEmpty(t, q.Payload)
	}
}

// waitCaughtUp polls until the journal holds every clean object, the quarantine every
// malformed one, and the projection checkpoint reached the end of the journal.
func waitCaughtUp(t *testing.T, w *worker, events, malformed int) {
	t.Helper()
	ctx := t.Context()
	deadline := time.Now().Add(60 * time.Second)
	for {
		maxSeq, err := w.journal.MaxSeq(ctx)
		require.NoError(t, err)
		rows := 0
		require.NoError(t, w.journal.Scan(ctx, app.ScanOptions{}, func(b []domain.Event) error { rows += len(b); return nil }))
		cp, err := w.cps.GetCheckpoint(ctx, w.cfg.CheckpointName)
		require.NoError(t, err)
		_, quarantined, err := w.queries.Quarantined(ctx, 1)
		require.NoError(t, err)
		if rows == events && cp == strconv.FormatInt(maxSeq, 10) && quarantined == int64(malformed) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not caught up: journal %d/%d events (max seq %d), checkpoint %q, quarantine %d/%d", rows, events, maxSeq, cp, quarantined, malformed)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
