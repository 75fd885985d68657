package storetest

import (
	"fmt"
	"slices"
	"sort"
	"strings"
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
	t.Run("AlertListing", func(t *testing.T) { testAlertListing(t, newStores(t)) })
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
		page, err := s.Alerts.ListAlerts(ctx, f)
		require.NoError(t, err)
		out := map[string]app.Alert{}
		for _, x := range page.Items {
			out[x.SessionID+"/"+string(x.Kind)] = x
		}
		require.Len(t, out, len(page.Items), "no alert listed twice")
		return out
	}
	assert.Empty(t, list(app.AlertFilter{State: "open"}), "acknowledged: off the open list")
	ackedList := list(app.AlertFilter{State: "acknowledged"})
	require.Len(t, ackedList, 1)
	got := ackedList["session-2/never_started"]
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
	page, err := s.Alerts.ListAlerts(ctx, app.AlertFilter{Limit: 2})
	require.NoError(t, err)
	assert.Len(t, page.Items, 2)
	assert.NotEmpty(t, page.NextCursor)
}

// testAlertListing pages through alerts newest first, filtered by state and kind, with
// true counts: alerts raised at the same instant (ties broken by session, then kind),
// pages that end inside such a tie, acknowledged and resolved alerts, bad filters.
func testAlertListing(t *testing.T, s Stores) {
	ctx := t.Context()
	kinds := []stuck.Kind{stuck.KindStuck, stuck.KindMissingCompletion, stuck.KindNeverStarted}
	var all []string // newest first, as the listing must answer
	for i := 24; i >= 0; i-- {
		// Every third pair of sessions shares its instant, to cut pages inside ties.
		raised := t0.Add(time.Duration(i/3*3) * time.Minute)
		session := fmt.Sprintf("session-%02d", i)
		k := kinds[i%len(kinds)]
		require.NoError(t, s.Alerts.InsertAlert(ctx, alert(session, k, raised)))
	}
	for i := 24; i >= 0; i-- {
		all = append(all, fmt.Sprintf("session-%02d/%s", i, kinds[i%len(kinds)]))
	}
	// Newest first, ties by session ascending.
	sort.SliceStable(all, func(i, j int) bool {
		ni, nj := sessionNumber(all[i])/3, sessionNumber(all[j])/3
		if ni != nj {
			return ni > nj
		}
		return all[i] < all[j]
	})
	// session-03 is acknowledged, session-06 resolved, session-09 acknowledged and
	// then resolved.
	ackAt := t0.Add(3 * time.Hour)
	require.NoError(t, s.Alerts.Ack(ctx, "session-03", stuck.KindStuck, "oncall", ackAt))
	require.NoError(t, s.Alerts.Resolve(ctx, "session-06", []stuck.Kind{stuck.KindStuck}, ackAt))
	require.NoError(t, s.Alerts.Ack(ctx, "session-09", stuck.KindStuck, "oncall", ackAt))
	require.NoError(t, s.Alerts.Resolve(ctx, "session-09", []stuck.Kind{stuck.KindStuck}, ackAt))
	require.NoError(t, s.Alerts.InsertAlert(ctx, alert("session-06", stuck.KindRecovered, ackAt)))

	walk := func(t *testing.T, f app.AlertFilter) []string {
		t.Helper()
		var out []string
		for pages := 0; ; pages++ {
			require.Less(t, pages, 100, "the cursor must advance")
			page, err := s.Alerts.ListAlerts(ctx, f)
			require.NoError(t, err)
			if f.Limit > 0 {
				require.LessOrEqual(t, len(page.Items), f.Limit)
			}
			for _, a := range page.Items {
				out = append(out, a.SessionID+"/"+string(a.Kind))
			}
			if page.NextCursor == "" {
				return out
			}
			f.Cursor = page.NextCursor
		}
	}
	without := func(list []string, drop ...string) []string {
		var out []string
		for _, x := range list {
			if !slices.Contains(drop, x) {
				out = append(out, x)
			}
		}
		return out
	}
	only := func(list []string, keep func(string) bool) []string {
		var out []string
		for _, x := range list {
			if keep(x) {
				out = append(out, x)
			}
		}
		return out
	}
	open := without(all, "session-03/stuck", "session-06/stuck", "session-09/stuck")
	for _, limit := range []int{1, 2, 4, 7, 25, 0} {
		t.Run(fmt.Sprintf("open, %d a page", limit), func(t *testing.T) {
			assert.Equal(t, open, walk(t, app.AlertFilter{State: app.AlertFilterOpen, Limit: limit}))
		})
	}
	t.Run("all, 4 a page", func(t *testing.T) {
		assert.Equal(t, append([]string{"session-06/recovered"}, all...), walk(t, app.AlertFilter{Limit: 4}))
	})
	t.Run("acknowledged", func(t *testing.T) {
		assert.Equal(t, []string{"session-03/stuck"}, walk(t, app.AlertFilter{State: app.AlertFilterAcknowledged, Limit: 3}))
	})
	t.Run("resolved", func(t *testing.T) {
		assert.Equal(t, []string{"session-09/stuck", "session-06/stuck"}, walk(t, app.AlertFilter{State: app.AlertFilterResolved, Limit: 1}))
	})
	t.Run("open, of two kinds, 3 a page", func(t *testing.T) {
		want := only(open, func(x string) bool {
			return strings.HasSuffix(x, "/"+string(stuck.KindStuck)) || strings.HasSuffix(x, "/"+string(stuck.KindNeverStarted))
		})
		assert.Equal(t, want, walk(t, app.AlertFilter{State: app.AlertFilterOpen, Kinds: []stuck.Kind{stuck.KindStuck, stuck.KindNeverStarted}, Limit: 3}))
	})
	t.Run("one session", func(t *testing.T) {
		assert.Equal(t, []string{"session-06/recovered", "session-06/stuck"}, walk(t, app.AlertFilter{SessionID: "session-06", Limit: 1}))
		assert.Empty(t, walk(t, app.AlertFilter{SessionID: "session-06", State: app.AlertFilterOpen}))
	})

	count := func(t *testing.T, f app.AlertFilter) app.AlertCounts {
		t.Helper()
		c, err := s.Alerts.CountAlerts(ctx, f)
		require.NoError(t, err)
		return c
	}
	t.Run("counts", func(t *testing.T) {
		c := count(t, app.AlertFilter{State: app.AlertFilterOpen, Limit: 1})
		assert.Equal(t, int64(len(open)), c.Total, "the true count, not a page")
		assert.Equal(t, map[stuck.Kind]int64{stuck.KindStuck: 6, stuck.KindMissingCompletion: 8, stuck.KindNeverStarted: 8}, c.ByKind)
		c = count(t, app.AlertFilter{})
		assert.Equal(t, int64(26), c.Total)
		assert.Equal(t, int64(1), c.ByKind[stuck.KindRecovered])
		c = count(t, app.AlertFilter{State: app.AlertFilterOpen, Kinds: []stuck.Kind{stuck.KindMissingCompletion}})
		assert.Equal(t, app.AlertCounts{Total: 8, ByKind: map[stuck.Kind]int64{stuck.KindMissingCompletion: 8}}, c)
		c = count(t, app.AlertFilter{State: app.AlertFilterAcknowledged})
		assert.Equal(t, int64(1), c.Total)
		c = count(t, app.AlertFilter{SessionID: "session-06"})
		assert.Equal(t, int64(2), c.Total)
	})
	t.Run("acknowledging takes an alert off the open list and count", func(t *testing.T) {
		require.NoError(t, s.Alerts.Ack(ctx, "session-24", stuck.KindStuck, "oncall", ackAt))
		assert.Equal(t, without(open, "session-24/stuck"), walk(t, app.AlertFilter{State: app.AlertFilterOpen, Limit: 5}))
		assert.Equal(t, int64(len(open)-1), count(t, app.AlertFilter{State: app.AlertFilterOpen}).Total)
		_, gotOpen, err := s.Alerts.SessionAlerts(ctx, "session-24")
		require.NoError(t, err)
		assert.Equal(t, stuck.KindStuck.Bit(), gotOpen, "still open for the detector, which may resolve it")
	})
	t.Run("bad filters name the field", func(t *testing.T) {
		for _, tt := range []struct {
			f     app.AlertFilter
			field string
		}{
			{app.AlertFilter{State: "closed"}, "state"},
			{app.AlertFilter{Kinds: []stuck.Kind{"bored"}}, "kind"},
			{app.AlertFilter{Cursor: "not-a-cursor"}, "cursor"},
		} {
			_, err := s.Alerts.ListAlerts(ctx, tt.f)
			var fe *domain.FieldError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tt.field, fe.Field)
			_, err = s.Alerts.CountAlerts(ctx, tt.f)
			if tt.field == "cursor" {
				assert.NoError(t, err, "counting ignores the cursor")
				continue
			}
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tt.field, fe.Field)
		}
	})
}

// sessionNumber reads N of "session-NN/kind".
func sessionNumber(key string) int {
	var n int
	_, _ = fmt.Sscanf(key, "session-%d/", &n)
	return n
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
