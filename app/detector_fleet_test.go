package app_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/adapters/sqlite"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/app/simulate"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// fakeClock is a settable clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

// embedded is the embedded backend's stores on a temp file, on a fake clock.
type embedded struct {
	db        *sqlite.DB
	reg       *projections.Registry
	journal   *sqlite.JournalStore
	models    *sqlite.ReadModelStore
	alerts    *sqlite.AlertStore
	cps       *sqlite.CheckpointStore
	ingester  *app.Ingester
	projector *app.Projector
	clock     *fakeClock
}

func newEmbedded(t testing.TB, dir string, start time.Time) *embedded {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := sqlite.Open(context.Background(), dir, logger)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	reg, err := app.NewRegistry(app.Config{})
	require.NoError(t, err)
	e := &embedded{db: db, reg: reg, journal: sqlite.NewJournalStore(db), models: sqlite.NewReadModelStore(db, reg, 0),
		alerts: sqlite.NewAlertStore(db), cps: sqlite.NewCheckpointStore(db), clock: &fakeClock{t: start}}
	require.NoError(t, app.EnsureReadModels(context.Background(), reg, e.models, e.journal, nil, logger))
	e.ingester = app.NewIngester(e.journal, sqlite.NewQuarantineStore(db), nil, domain.MappingConfig{}, logger, nil)
	e.projector = app.NewProjector(e.models, reg, logger, nil)
	e.projector.SetClock(e.clock.Now)
	return e
}

func (e *embedded) detector(cfg app.DetectorConfig, sinks ...app.AlertSink) *app.Detector {
	d := app.NewDetector(cfg, stuck.NewStore(e.models, e.models), e.alerts, e.models, sinks, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	d.SetClock(e.clock.Now)
	return d
}

func (e *embedded) deliver(t testing.TB, objs []simulate.Object) {
	t.Helper()
	if len(objs) == 0 {
		return
	}
	var body bytes.Buffer
	require.NoError(t, simulate.WriteNDJSON(&body, objs))
	_, err := e.ingester.IngestBody(context.Background(), "test", body.Bytes())
	require.NoError(t, err)
	_, err = e.projector.CatchUp(context.Background(), sqlite.NewJournalTail(e.journal), e.cps, app.HandlerProject, 1000)
	require.NoError(t, err)
}

// TestDetectorFleetPrecisionRecall runs a simulated fleet with injected faults —
// crashes, hangs, late completions, never-started sessions, dropped Step Functions
// events, duplicates and reordering — on a fake clock through the real ingest,
// projector, SQLite stores and detector, and checks every alert against the ground
// truth: every faulty session alerted with the right kind (recall 100 %), healthy
// sessions not alerted (precision >= 99 %), each alert within its deadline plus one tick.
func TestDetectorFleetPrecisionRecall(t *testing.T) {
	if testing.Short() {
		t.Skip("long simulation")
	}
	start := time.Date(2024, 11, 4, 10, 0, 0, 0, time.UTC)
	objs, truth, err := simulate.Generate(simulate.Config{Seed: 99, Sessions: 800, Start: start, Window: 20 * time.Minute,
		DuplicateRate: 0.05, ReorderRate: 0.05})
	require.NoError(t, err)
	sort.SliceStable(objs, func(i, j int) bool { return objs[i].At.Before(objs[j].At) })
	// When each session's evidence was last delivered: a mismatch is only observable
	// once both sides of it arrived.
	delivered := map[string]time.Time{}
	for _, o := range objs {
		if !o.Redelivery && o.At.After(delivered[o.SessionID]) {
			delivered[o.SessionID] = o.At
		}
	}

	e := newEmbedded(t, filepath.Join(t.TempDir(), "fleet"), start)
	cfg := app.DetectorConfig{Stuck: stuck.DefaultConfig(), BatchLimit: 10_000}
	det := e.detector(cfg)
	const tick = 5 * time.Second
	end := objs[len(objs)-1].At.Add(cfg.Stuck.Timeout("", domain.StageBackgroundTask) + cfg.Stuck.CompletionGrace + time.Minute)
	next := 0
	for now := start; !now.After(end); now = now.Add(tick) {
		e.clock.t = now
		j := next
		for j < len(objs) && !objs[j].At.After(now) {
			j++
		}
		e.deliver(t, objs[next:j])
		next = j
		require.NoError(t, det.Tick(context.Background()))
	}

	alerts, err := e.alerts.ListAlerts(context.Background(), app.AlertFilter{State: "all"})
	require.NoError(t, err)
	raised := map[string]map[stuck.Kind]app.Alert{}
	for _, a := range alerts.Items {
		if raised[a.SessionID] == nil {
			raised[a.SessionID] = map[stuck.Kind]app.Alert{}
		}
		raised[a.SessionID][a.Kind] = a
	}

	// Confusion matrix over sessions: expected alert kind (truth) x raised problem kind.
	kinds := []string{"none", "stuck", "missing_completion", "never_started", "journal_mismatch"}
	matrix := map[string]map[string]int{}
	for _, k := range kinds {
		matrix[k] = map[string]int{}
	}
	var tp, fp, fn int
	for id, tr := range truth {
		want := string(tr.Expect(end, cfg.Stuck.Timeout, cfg.Stuck.CompletionGrace))
		got := "none"
		for _, k := range []stuck.Kind{stuck.KindStuck, stuck.KindMissingCompletion, stuck.KindNeverStarted, stuck.KindJournalMismatch} {
			if _, ok := raised[id][k]; ok {
				if got != "none" {
					got += "+" + string(k)
				} else {
					got = string(k)
				}
			}
		}
		if matrix[want] == nil {
			matrix[want] = map[string]int{}
		}
		matrix[want][got]++
		switch {
		case want == "none" && got == "none":
		case want == got:
			tp++
			a := raised[id][stuck.Kind(want)]
			due := tr.AlertDue(cfg.Stuck.Timeout, cfg.Stuck.CompletionGrace)
			if want == string(stuck.KindJournalMismatch) && delivered[id].After(due) {
				due = delivered[id]
			}
			if tr.Scenario == simulate.ScenarioLongRunning {
				due = tr.StalledAt.Add(cfg.Stuck.Timeout(tr.Agent, tr.Stage))
			}
			assert.Falsef(t, a.RaisedAt.Before(due), "session %s (%s): %s alert at %s before its deadline %s", id, tr.Scenario, want, a.RaisedAt, due)
			assert.Falsef(t, a.RaisedAt.After(due.Add(tick)), "session %s (%s): %s alert at %s, more than a tick after its deadline %s", id, tr.Scenario, want, a.RaisedAt, due)
		case want == "none":
			fp++
			t.Logf("false alarm: session %s (%s) raised %s", id, tr.Scenario, got)
		default:
			fn++
			t.Errorf("missed: session %s (%s, stage %s) expected %s, raised %s", id, tr.Scenario, tr.Stage, want, got)
		}
		// A late completion after a stuck alert resolves it.
		if _, ok := raised[id][stuck.KindStuck]; ok && !tr.RecoveredAt.IsZero() {
			_, rec := raised[id][stuck.KindRecovered]
			assert.Truef(t, rec, "session %s recovered at %s without a recovered alert", id, tr.RecoveredAt)
		}
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "confusion matrix (rows: expected, columns: raised) over %d sessions\n%-20s", len(truth), "")
	for _, k := range kinds {
		fmt.Fprintf(&out, "%20s", k)
	}
	for _, w := range kinds {
		fmt.Fprintf(&out, "\n%-20s", w)
		for _, g := range kinds {
			fmt.Fprintf(&out, "%20d", matrix[w][g])
		}
	}
	t.Log(out.String())
	recall := float64(tp) / float64(tp+fn)
	precision := float64(tp) / float64(tp+fp)
	t.Logf("alerts: %d true, %d false, %d missed; recall %.4f, precision %.4f", tp, fp, fn, recall, precision)
	require.Positive(t, tp)
	assert.Equal(t, 1.0, recall, "recall")
	assert.GreaterOrEqual(t, precision, 0.99, "precision")
}
