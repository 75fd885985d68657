package app_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/adapters/sqlite"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/app/simulate"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// recordingSink records what it is sent; it fails while fail is set.
type recordingSink struct {
	mu   sync.Mutex
	sent []app.Alert
	fail error
}

func (s *recordingSink) Name() string { return "recording" }

func (s *recordingSink) Send(_ context.Context, a app.Alert) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.sent = append(s.sent, a)
	return nil
}

func (s *recordingSink) count(kind stuck.Kind) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, a := range s.sent {
		if a.Kind == kind {
			n++
		}
	}
	return n
}

func stalledSession(t *testing.T, e *embedded, id string, at time.Time) {
	t.Helper()
	var body []byte
	for i, st := range []domain.Status{domain.StatusSessionInitiated, domain.StatusInvocationStarted, domain.StatusInvocationSucceeded,
		domain.StatusEntrypointStarted, domain.StatusBackgroundTaskStarted} {
		ts := domain.FormatTime(at.Add(time.Duration(i) * time.Second))
		body = append(body, []byte(`{"PK":"SESSION#`+id+`","SK":"EVENT#`+ts+`","Status":"`+string(st)+`","Timestamp":"`+ts+`"}`+"\n")...)
	}
	_, err := e.ingester.IngestBody(context.Background(), "test", body)
	require.NoError(t, err)
	_, err = e.projector.CatchUp(context.Background(), sqlite.NewJournalTail(e.journal), e.cps, app.HandlerProject, 1000)
	require.NoError(t, err)
}

// TestDetectorCrashBetweenDecidingAndSending: the worker dies after the alert was
// decided (in the outbox) and before any sink took it; after a restart on the same
// data, the alert is delivered exactly once.
func TestDetectorCrashBetweenDecidingAndSending(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "crash")
	start := time.Date(2024, 11, 4, 10, 0, 0, 0, time.UTC)
	e := newEmbedded(t, dir, start)
	stalledSession(t, e, "s-crash", start)
	cfg := app.DetectorConfig{Stuck: stuck.DefaultConfig()}

	crashing := &recordingSink{fail: errors.New("process killed")}
	e.clock.t = start.Add(time.Hour)
	require.Error(t, e.detector(cfg, crashing).Tick(context.Background()), "the delivery failed: the crash")
	pending, err := e.alerts.PendingAlerts(context.Background(), 10)
	require.NoError(t, err)
	require.Len(t, pending, 1, "decided, not sent")
	require.NoError(t, e.db.Close())

	// Restart: a new process on the same file.
	e2 := newEmbedded(t, dir, start.Add(time.Hour+time.Minute))
	sink := &recordingSink{}
	det := e2.detector(cfg, sink)
	for range 3 {
		require.NoError(t, det.Tick(context.Background()))
		e2.clock.t = e2.clock.t.Add(5 * time.Second)
	}
	assert.Equal(t, 1, sink.count(stuck.KindStuck), "exactly one stuck alert delivered")
	pending, err = e2.alerts.PendingAlerts(context.Background(), 10)
	require.NoError(t, err)
	assert.Empty(t, pending)

	// Two workers ticking the same store raise it once too.
	e2.clock.t = e2.clock.t.Add(time.Hour)
	other := e2.detector(cfg, sink)
	require.NoError(t, det.Tick(context.Background()))
	require.NoError(t, other.Tick(context.Background()))
	assert.Equal(t, 1, sink.count(stuck.KindStuck))
}

// TestRebuildSendsNoAlert: a rebuild replays a journal full of sessions that are long
// overdue; the detector raises nothing for that history, while a session that becomes
// overdue after the rebuild is still alerted.
func TestRebuildSendsNoAlert(t *testing.T) {
	start := time.Date(2024, 11, 4, 10, 0, 0, 0, time.UTC)
	e := newEmbedded(t, filepath.Join(t.TempDir(), "rebuild"), start)
	objs, _, err := simulate.Generate(simulate.Config{Seed: 5, Sessions: 300, Start: start, Window: 10 * time.Minute})
	require.NoError(t, err)
	e.deliver(t, objs)
	stalledSession(t, e, "s-fresh", start.Add(24*time.Hour))

	now := start.Add(24*time.Hour + 10*time.Second)
	e.clock.t = now
	cfg := stuck.DefaultConfig()
	rep, err := rebuilder(e).Rebuild(context.Background(), app.RebuildOptions{Now: e.clock.Now})
	require.NoError(t, err)
	require.Positive(t, rep.Rows[stuck.Table])

	sink := &recordingSink{}
	det := e.detector(app.DetectorConfig{Stuck: cfg}, sink)
	require.NoError(t, det.Tick(context.Background()))
	assert.Empty(t, sink.sent, "no alert for replayed history")

	// The fresh session's background task deadline passes after the rebuild.
	e.clock.t = start.Add(24*time.Hour + 31*time.Minute)
	require.NoError(t, det.Tick(context.Background()))
	require.Len(t, sink.sent, 1)
	assert.Equal(t, "s-fresh", sink.sent[0].SessionID)
}
