package storetest

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// TestOutbox runs the cases of the stores beside the read models: the alert outbox
// (exactly once per session and kind, delivery, resolve, ack, listing), quarantine and
// checkpoints.
func TestOutbox(t *testing.T, newStores Factory) {
	t.Run("AlertsExactlyOnce", func(t *testing.T) { testAlertsExactlyOnce(t, newStores(t)) })
	t.Run("AlertLifecycle", func(t *testing.T) { testAlertLifecycle(t, newStores(t)) })
	t.Run("Quarantine", func(t *testing.T) { testQuarantine(t, newStores(t)) })
	t.Run("Checkpoints", func(t *testing.T) { testCheckpoints(t, newStores(t)) })
}

func alert(session string, kind stuck.Kind, raised time.Time) app.Alert {
	return app.Alert{
		SessionID: session, Kind: kind, AgentName: "agent-a",
		ExecutionArn: "arn:aws:states:us-east-1:123456789012:execution:sm:" + session,
		Stage:        domain.StageBackgroundTask, LastStatus: domain.StatusBackgroundTaskStarted,
		LastEventAt: raised.Add(-31 * time.Minute), OverdueBy: "1m0s",
		Diagnosis: domain.Diagnosis{Outcome: domain.OutcomeInProgress, Stage: domain.StageBackgroundTask,
			Component: domain.ComponentBackgroundTask, Summary: "in progress: waiting on the Agent background task"},
		Link: "http://127.0.0.1:8080/#session=" + session, RaisedAt: raised,
	}
}

// sameAlert compares alerts with times compared as instants.
func sameAlert(t *testing.T, want, got app.Alert) {
	t.Helper()
	norm := func(a app.Alert) app.Alert {
		a.RaisedAt, a.LastEventAt = a.RaisedAt.UTC(), a.LastEventAt.UTC()
		if a.ResolvedAt != nil {
			r := a.ResolvedAt.UTC()
			a.ResolvedAt = &r
		}
		if a.AckedAt != nil {
			r := a.AckedAt.UTC()
			a.AckedAt = &r
		}
		return a
	}
	assert.Equal(t, norm(want), norm(got))
}

func testAlertsExactlyOnce(t *testing.T, s Stores) {
	ctx := t.Context()
	const workers = 20
	start := make(chan struct{})
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			<-start
			a := alert("session-1", stuck.KindStuck, t0.Add(time.Duration(i)*time.Second))
			errs[i] = s.Alerts.InsertAlert(ctx, a)
		})
	}
	close(start)
	wg.Wait()
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
			continue
		}
		assert.ErrorIs(t, err, domain.ErrDuplicate)
	}
	assert.Equal(t, 1, wins, "exactly one alert per session and kind")

	// Another kind of the same session, and the same kind of another session, are new.
	require.NoError(t, s.Alerts.InsertAlert(ctx, alert("session-1", stuck.KindMissingCompletion, t0)))
	require.NoError(t, s.Alerts.InsertAlert(ctx, alert("session-2", stuck.KindStuck, t0)))
	pending, err := s.Alerts.PendingAlerts(ctx, 100)
	require.NoError(t, err)
	assert.Len(t, pending, 3)

	// Even once sent and resolved, never again.
	require.NoError(t, s.Alerts.MarkSent(ctx, "session-1", stuck.KindStuck))
	require.NoError(t, s.Alerts.Resolve(ctx, "session-1", []stuck.Kind{stuck.KindStuck}, t0.Add(time.Hour)))
	require.ErrorIs(t, s.Alerts.InsertAlert(ctx, alert("session-1", stuck.KindStuck, t0.Add(2*time.Hour))), domain.ErrDuplicate)
}

func testAlertLifecycle(t *testing.T, s Stores) {
	ctx := t.Context()
	a := alert("session-1", stuck.KindStuck, t0)
	b := alert("session-1", stuck.KindMissingCompletion, t0.Add(time.Minute))
	c := alert("session-2", stuck.KindNeverStarted, t0.Add(2*time.Minute))
	for _, x := range []app.Alert{a, b, c} {
		require.NoError(t, s.Alerts.InsertAlert(ctx, x))
	}
	want := func(x app.Alert, state app.AlertState, attempts int) app.Alert {
		x.State, x.Attempts = state, attempts
		return x
	}

	pending, err := s.Alerts.PendingAlerts(ctx, 100)
	require.NoError(t, err)
	require.Len(t, pending, 3)
	sort.Slice(pending, func(i, j int) bool { return pending[i].RaisedAt.Before(pending[j].RaisedAt) })
	sameAlert(t, want(a, app.AlertPending, 0), pending[0])
	pending, err = s.Alerts.PendingAlerts(ctx, 2)
	require.NoError(t, err)
	assert.Len(t, pending, 2)

	// Delivery.
	require.NoError(t, s.Alerts.MarkSent(ctx, "session-1", stuck.KindStuck))
	require.NoError(t, s.Alerts.MarkSent(ctx, "session-1", stuck.KindStuck), "marking twice is harmless")
	require.ErrorIs(t, s.Alerts.MarkSent(ctx, "session-9", stuck.KindStuck), domain.ErrNotFound)
	pending, err = s.Alerts.PendingAlerts(ctx, 100)
	require.NoError(t, err)
	assert.Len(t, pending, 2)

	raised, open, err := s.Alerts.SessionAlerts(ctx, "session-1")
	require.NoError(t, err)
	assert.Equal(t, stuck.KindStuck.Bit()|stuck.KindMissingCompletion.Bit(), raised)
	assert.Equal(t, raised, open)

	// A late completion resolves the session's problems; the recovery is an alert too.
	resolvedAt := t0.Add(time.Hour)
	require.NoError(t, s.Alerts.Resolve(ctx, "session-1", []stuck.Kind{stuck.KindStuck, stuck.KindMissingCompletion}, resolvedAt))
	require.NoError(t, s.Alerts.InsertAlert(ctx, alert("session-1", stuck.KindRecovered, resolvedAt)))
	raised, open, err = s.Alerts.SessionAlerts(ctx, "session-1")
	require.NoError(t, err)
	assert.Equal(t, stuck.KindStuck.Bit()|stuck.KindMissingCompletion.Bit()|stuck.KindRecovered.Bit(), raised)
	assert.Zero(t, open, "nothing open once resolved; a recovery is never open")
	// Resolving again does not move the time.
	require.NoError(t, s.Alerts.Resolve(ctx, "session-1", []stuck.Kind{stuck.KindStuck}, resolvedAt.Add(time.Hour)))

	raised, open, err = s.Alerts.SessionAlerts(ctx, "no-such-session")
	require.NoError(t, err)
	assert.Zero(t, raised)
	assert.Zero(t, open)

	// Acknowledgement.
	ackAt := t0.Add(90 * time.Minute)
	require.NoError(t, s.Alerts.Ack(ctx, "session-2", stuck.KindNeverStarted, "oncall@example.com", ackAt))
	require.ErrorIs(t, s.Alerts.Ack(ctx, "session-2", stuck.KindStuck, "oncall@example.com", ackAt), domain.ErrNotFound)

	list := func(f app.AlertFilter) map[string]app.Alert {
		t.Helper()
		as, err := s.Alerts.ListAlerts(ctx, f)
		require.NoError(t, err)
		out := map[string]app.Alert{}
		for _, x := range as {
			out[x.SessionID+"/"+string(x.Kind)] = x
		}
		require.Len(t, out, len(as), "no alert listed twice")
		return out
	}
	openList := list(app.AlertFilter{State: "open"})
	require.Len(t, openList, 1)
	got := openList["session-2/never_started"]
	wantC := want(c, app.AlertPending, 0)
	wantC.AckedAt, wantC.AckedBy = &ackAt, "oncall@example.com"
	sameAlert(t, wantC, got)

	resolved := list(app.AlertFilter{State: "resolved"})
	require.Len(t, resolved, 2)
	wantA := want(a, app.AlertSent, 1)
	wantA.ResolvedAt = &resolvedAt
	sameAlert(t, wantA, resolved["session-1/stuck"])

	assert.Len(t, list(app.AlertFilter{State: "all"}), 4)
	assert.Len(t, list(app.AlertFilter{}), 4)
	assert.Len(t, list(app.AlertFilter{SessionID: "session-1"}), 3)
	assert.Len(t, list(app.AlertFilter{SessionID: "session-1", State: "open"}), 0)
	as, err := s.Alerts.ListAlerts(ctx, app.AlertFilter{Limit: 2})
	require.NoError(t, err)
	assert.Len(t, as, 2)
}

func testQuarantine(t *testing.T, s Stores) {
	ctx := t.Context()
	n, err := s.Quarantine.CountQuarantined(ctx)
	require.NoError(t, err)
	assert.Zero(t, n)

	in := []app.Quarantined{
		{Source: "http", Key: "req-1", Reason: "SK: must start with \"EVENT#\"", Payload: `{"PK":"SESSION#x","SK":"bad"}`, At: t0},
		{Source: "sqs", Key: "msg-2", Reason: "detail.startDate: must be epoch milliseconds", Payload: `{"detail":{}}`, At: t0.Add(time.Second)},
		{Source: "journal", Reason: "Timestamp: is not an ISO 8601 timestamp", Payload: "{}", At: t0.Add(2 * time.Second)},
	}
	for _, q := range in {
		require.NoError(t, s.Quarantine.Quarantine(ctx, q))
	}
	n, err = s.Quarantine.CountQuarantined(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(3), n)

	got, err := s.Quarantine.ListQuarantined(ctx, 10)
	require.NoError(t, err)
	require.Len(t, got, 3)
	ids := map[int64]bool{}
	for i := range got {
		ids[got[i].ID] = true
		got[i].ID = 0
		got[i].At = got[i].At.UTC()
	}
	assert.Len(t, ids, 3, "each gets its own id")
	sort.Slice(got, func(i, j int) bool { return got[i].At.Before(got[j].At) })
	assert.Equal(t, in, got)

	got, err = s.Quarantine.ListQuarantined(ctx, 2)
	require.NoError(t, err)
	assert.Len(t, got, 2)
}

func testCheckpoints(t *testing.T, s Stores) {
	ctx := t.Context()
	cp, err := s.Checkpoints.GetCheckpoint(ctx, "feed")
	require.NoError(t, err)
	assert.Empty(t, cp, "none yet")
	for i := range 3 {
		pos := fmt.Sprintf("shard-0001:%d", i)
		require.NoError(t, s.Checkpoints.SetCheckpoint(ctx, "feed", pos))
		cp, err = s.Checkpoints.GetCheckpoint(ctx, "feed")
		require.NoError(t, err)
		assert.Equal(t, pos, cp)
	}
	require.NoError(t, s.Checkpoints.SetCheckpoint(ctx, "other", "1"))
	cp, err = s.Checkpoints.GetCheckpoint(ctx, "feed")
	require.NoError(t, err)
	assert.Equal(t, "shard-0001:2", cp, "names are independent")
}
