package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// insertAlerts raises n alerts of kind, one a second, the newest raisedAt first; the
// sessions are prefix-00, prefix-01, ... with prefix-00 the newest.
func insertAlerts(t *testing.T, s *stack, prefix string, kind stuck.Kind, n int, newest time.Time) {
	t.Helper()
	for i := range n {
		require.NoError(t, s.alerts.InsertAlert(t.Context(), app.Alert{
			SessionID: fmt.Sprintf("%s-%02d", prefix, i), Kind: kind, AgentName: "my-agent",
			RaisedAt:  newest.Add(-time.Duration(i) * time.Second),
			Diagnosis: domain.Diagnosis{Outcome: domain.OutcomeInProgress, Summary: "in progress: waiting on the Agent background task"},
		}))
	}
}

// GET /v1/alerts pages with nextCursor and filters by state and kind; GET
// /v1/alerts/counts answers the true counts; acknowledging takes an alert off the open
// list and the open count.
func TestAlertPagingAndCounts(t *testing.T) {
	s := newStack(t, stackOptions{})
	newest := time.Now().UTC().Truncate(time.Millisecond)
	insertAlerts(t, s, "stuck", stuck.KindStuck, 68, newest)
	insertAlerts(t, s, "missing", stuck.KindMissingCompletion, 5, newest.Add(-time.Hour))
	require.NoError(t, s.alerts.Resolve(t.Context(), "missing-04", []stuck.Kind{stuck.KindMissingCompletion}, newest))

	type page struct {
		Items      []app.Alert `json:"items"`
		NextCursor *string     `json:"nextCursor"`
	}
	walk := func(t *testing.T, query url.Values) (keys []string, pages int) {
		t.Helper()
		for {
			a := s.get("/v1/alerts?" + query.Encode())
			require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
			var p page
			a.decode(t, &p)
			pages++
			for _, x := range p.Items {
				keys = append(keys, x.SessionID)
			}
			if p.NextCursor == nil {
				return keys, pages
			}
			query.Set("cursor", *p.NextCursor)
		}
	}
	counts := func(t *testing.T, query string) app.AlertCounts {
		t.Helper()
		a := s.get("/v1/alerts/counts?" + query)
		require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
		var c app.AlertCounts
		a.decode(t, &c)
		return c
	}

	t.Run("pages of 25 through 72 open alerts", func(t *testing.T) {
		keys, pages := walk(t, url.Values{"state": {"open"}, "limit": {"25"}})
		assert.Equal(t, 3, pages)
		require.Len(t, keys, 72)
		assert.Equal(t, "stuck-00", keys[0], "newest first")
		assert.Equal(t, "missing-03", keys[71])
	})
	t.Run("filtered by kind", func(t *testing.T) {
		keys, _ := walk(t, url.Values{"state": {"open"}, "kind": {"missing_completion"}, "limit": {"2"}})
		assert.Equal(t, []string{"missing-00", "missing-01", "missing-02", "missing-03"}, keys)
		keys, _ = walk(t, url.Values{"state": {"resolved"}, "kind": {"stuck,missing_completion"}})
		assert.Equal(t, []string{"missing-04"}, keys)
	})
	t.Run("true counts", func(t *testing.T) {
		assert.Equal(t, app.AlertCounts{Total: 72, ByKind: map[stuck.Kind]int64{stuck.KindStuck: 68, stuck.KindMissingCompletion: 4}},
			counts(t, "state=open"))
		assert.Equal(t, int64(73), counts(t, "").Total)
		assert.Equal(t, int64(68), counts(t, "state=open&kind=stuck").Total)
	})
	t.Run("acknowledging takes an alert off the open list and count", func(t *testing.T) {
		a := s.do(http.MethodPost, "/v1/alerts/stuck-00/stuck/ack", "application/json", []byte(`{"by":"alice"}`))
		require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
		assert.Equal(t, int64(71), counts(t, "state=open").Total)
		keys, _ := walk(t, url.Values{"state": {"open"}, "limit": {"1"}})
		require.Len(t, keys, 71)
		assert.Equal(t, "stuck-01", keys[0])
		keys, _ = walk(t, url.Values{"state": {"acknowledged"}})
		assert.Equal(t, []string{"stuck-00"}, keys)
	})
	t.Run("bad input names the field", func(t *testing.T) {
		for _, tt := range []struct{ path, field string }{
			{"/v1/alerts?state=closed", "state"},
			{"/v1/alerts?kind=bored", "kind"},
			{"/v1/alerts?cursor=zzz", "cursor"},
			{"/v1/alerts?limit=0", "limit"},
			{"/v1/alerts/counts?state=closed", "state"},
			{"/v1/alerts/counts?kind=stuck,bored", "kind"},
		} {
			t.Run(tt.path, func(t *testing.T) {
				a := s.get(tt.path)
				require.Equal(t, http.StatusBadRequest, a.status, "body: %s", a.body)
				m := a.json(t)
				assert.Equal(t, tt.field, m["field"])
				assert.NotContains(t, m["error"], "list alerts: list alerts", "context said once")
			})
		}
	})
}
