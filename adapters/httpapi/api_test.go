package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/adapters/httpapi"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/executionindex"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

var day = time.Date(2024, 11, 4, 0, 0, 0, 0, time.UTC)

// The History of seed 000, plus one execution the day before and one of another agent.
var (
	abc123 = execution{agent: "my-agent", name: "abc123", session: "s-abc123", start: day.Add(12*time.Hour + 35*time.Minute)}
	def456 = execution{agent: "my-agent", name: "def456", session: "s-def456", start: day.Add(12*time.Hour + 40*time.Minute + 15*time.Second)}
	ghi789 = execution{agent: "my-agent", name: "ghi789", session: "s-ghi789", start: day.Add(12*time.Hour + 30*time.Minute)}
	mno345 = execution{agent: "other-agent", name: "mno345", session: "s-mno345", start: day.Add(9 * time.Hour)}
	jkl012 = execution{agent: "other-agent", name: "jkl012", session: "s-jkl012", start: day.Add(-time.Hour)}
)

const throttled = "ClientError: ThrottlingException - Rate exceeded"

// seedHistory posts the executions above with their sessions' agent events.
func seedHistory(s *stack) {
	s.t.Helper()
	var objs []any
	add := func(x execution, status string, d time.Duration, scenario int, errCode, cause, agentErr string) {
		objs = append(objs, statusChange(x, "RUNNING", time.Time{}, "", ""))
		if status != "RUNNING" {
			objs = append(objs, statusChange(x, status, x.start.Add(d), errCode, cause))
		}
		objs = append(objs, lifecycle(x.session, x.start, scenario, d-5*time.Second, agentErr)...)
	}
	add(abc123, "SUCCEEDED", 10*time.Second, 0, "", "", "")
	add(def456, "RUNNING", 0, 4, "", "", "")
	add(ghi789, "FAILED", 5*time.Second, 3, "States.TaskFailed", "background task failed", throttled)
	add(mno345, "TIMED_OUT", 10*time.Minute, 1, "States.Timeout", "", "Failed to invoke AgentCore: Timeout")
	add(jkl012, "SUCCEEDED", 45*time.Second, 0, "", "", "")
	s.post(objs...)
}

func names(t *testing.T, a answer) []string {
	t.Helper()
	require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
	var page struct {
		Items      []executionindex.Item `json:"items"`
		NextCursor *string               `json:"nextCursor"`
	}
	a.decode(t, &page)
	out := make([]string, 0, len(page.Items))
	for _, it := range page.Items {
		out = append(out, it.ExecutionName)
	}
	return out
}

func TestListExecutions(t *testing.T) {
	s := newStack(t, stackOptions{})
	seedHistory(s)
	tests := []struct {
		name  string
		query string
		want  []string
	}{
		{"all newest first", "", []string{"def456", "abc123", "ghi789", "mno345", "jkl012"}},
		{"oldest first", "?order=asc", []string{"jkl012", "mno345", "ghi789", "abc123", "def456"}},
		{"one agent", "?agent=my-agent", []string{"def456", "abc123", "ghi789"}},
		{"one status", "?status=FAILED", []string{"ghi789"}},
		{"status in lower case", "?status=running", []string{"def456"}},
		{"status all", "?status=all&agent=other-agent", []string{"mno345", "jkl012"}},
		{"agent and status", "?agent=other-agent&status=SUCCEEDED", []string{"jkl012"}},
		{"one date", "?from=2024-11-04&to=2024-11-04", []string{"def456", "abc123", "ghi789", "mno345"}},
		{"day before", "?to=2024-11-03", []string{"jkl012"}},
		{"timestamps", "?from=2024-11-04T12:30:00Z&to=2024-11-04T12:35:00.000Z", []string{"abc123", "ghi789"}},
		{"offset with unescaped plus", "?from=2024-11-04T13:30:00+01:00", []string{"def456", "abc123", "ghi789"}},
		{"today", "?from=today", []string{}},
		{"limit", "?limit=2", []string{"def456", "abc123"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, names(t, s.get("/v1/executions"+tt.query)))
		})
	}

	t.Run("items carry the fields of seed 000", func(t *testing.T) {
		var page struct {
			Items []map[string]any `json:"items"`
		}
		s.get("/v1/executions?status=SUCCEEDED&agent=my-agent").decode(t, &page)
		require.Len(t, page.Items, 1)
		it := page.Items[0]
		assert.Equal(t, executionArn("my-agent", "abc123"), it["executionArn"])
		assert.Equal(t, "my-agent", it["agentName"])
		assert.Equal(t, "SUCCEEDED", it["status"])
		assert.Equal(t, "2024-11-04T12:35:00.000Z", it["startDate"])
		assert.Equal(t, "2024-11-04T12:35:10.000Z", it["stopDate"])
		assert.InDelta(t, 10.0, it["durationSeconds"], 1e-9)
		assert.Equal(t, "s-abc123", it["sessionId"])
		for _, k := range []string{"stateMachineArn", "executionName", "indexedAt"} {
			assert.NotEmpty(t, it[k], k)
		}
	})

	t.Run("pages follow nextCursor to the end", func(t *testing.T) {
		var got []string
		cursor := ""
		for range 10 {
			var page struct {
				Items      []executionindex.Item `json:"items"`
				NextCursor *string               `json:"nextCursor"`
			}
			a := s.get("/v1/executions?limit=2&cursor=" + url.QueryEscape(cursor))
			require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
			a.decode(t, &page)
			for _, it := range page.Items {
				got = append(got, it.ExecutionName)
			}
			if page.NextCursor == nil {
				assert.Contains(t, string(a.body), `"nextCursor":null`)
				break
			}
			cursor = *page.NextCursor
		}
		assert.Equal(t, []string{"def456", "abc123", "ghi789", "mno345", "jkl012"}, got)
	})
}

func TestBadParamsNameTheField(t *testing.T) {
	s := newStack(t, stackOptions{})
	tests := []struct {
		path  string
		field string
	}{
		{"/v1/executions?limit=0", "limit"},
		{"/v1/executions?limit=many", "limit"},
		{"/v1/executions?limit=1001", "limit"},
		{"/v1/executions?status=DONE", "status"},
		{"/v1/executions?from=last+tuesday", "from"},
		{"/v1/executions?to=2024-13-45", "to"},
		{"/v1/executions?from=2024-11-05&to=2024-11-04", "to"},
		{"/v1/executions?order=sideways", "order"},
		{"/v1/executions?cursor=bogus", "cursor"},
		{"/v1/sessions/x/events?order=up", "order"},
		{"/v1/sessions/x/events?after=soon", "after"},
		{"/v1/sessions/x/events?limit=-1", "limit"},
		{"/v1/agents/my-agent/stats?granularity=week", "granularity"},
		{"/v1/stats?from=never", "from"},
		{"/v1/alerts?state=closed", "state"},
		{"/v1/alerts?limit=x", "limit"},
		{"/v1/quarantine?limit=0", "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			a := s.get(tt.path)
			require.Equal(t, http.StatusBadRequest, a.status, "body: %s", a.body)
			assert.Equal(t, "application/json; charset=utf-8", a.header.Get("Content-Type"))
			m := a.json(t)
			assert.Equal(t, tt.field, m["field"])
			assert.Contains(t, m["error"], tt.field)
		})
	}
}

func TestGetExecution(t *testing.T) {
	s := newStack(t, stackOptions{})
	seedHistory(s)
	arn := executionArn("my-agent", "ghi789")
	tests := []struct {
		name   string
		path   string
		status int
	}{
		{"raw ARN", "/v1/executions/" + arn, http.StatusOK},
		{"escaped ARN", "/v1/executions/" + strings.ReplaceAll(arn, ":", "%3A"), http.StatusOK},
		{"escaped in lower case", "/v1/executions/" + strings.ReplaceAll(arn, ":", "%3a"), http.StatusOK},
		{"unknown ARN", "/v1/executions/" + executionArn("my-agent", "nope"), http.StatusNotFound},
		{"no ARN", "/v1/executions/", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := s.get(tt.path)
			require.Equal(t, tt.status, a.status, "body: %s", a.body)
			m := a.json(t)
			if tt.status != http.StatusOK {
				assert.NotEmpty(t, m["error"])
				return
			}
			assert.Equal(t, arn, m["executionArn"])
			assert.Equal(t, "FAILED", m["status"])
			assert.Equal(t, "States.TaskFailed", m["error"])
			assert.InDelta(t, 5.0, m["durationSeconds"], 1e-9)
		})
	}
}

func TestSeed002RoundTrip(t *testing.T) {
	s := newStack(t, stackOptions{})
	a := s.do(http.MethodPost, "/v1/events", "application/json", []byte(seed002))
	require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
	var rep app.IngestReport
	a.decode(t, &rep)
	assert.Equal(t, 6, rep.Accepted)

	var posted []json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(seed002), &posted))
	itemsOf := func(t *testing.T, path string) []json.RawMessage {
		t.Helper()
		a := s.get(path)
		require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
		var l struct {
			Items []json.RawMessage `json:"items"`
		}
		a.decode(t, &l)
		return l.Items
	}
	asJSON := func(items []json.RawMessage) string {
		b, _ := json.Marshal(items)
		return string(b)
	}
	reversed := func(in []json.RawMessage) []json.RawMessage {
		out := make([]json.RawMessage, len(in))
		for i := range in {
			out[len(in)-1-i] = in[i]
		}
		return out
	}

	tests := []struct {
		name  string
		query string
		want  []json.RawMessage
	}{
		{"all events, chronological (--scan-index-forward)", "", posted},
		{"reverse chronological", "?order=desc", reversed(posted)},
		{"one event type", "?status=AGENT_BACKGROUND_TASK_COMPLETED", posted[5:]},
		{"failure events", "?contains=FAILED", nil},
		{"latest N", "?order=desc&limit=2", reversed(posted)[:2]},
		{"monitoring: after a time", "?after=2024-11-04T10:30:03.789Z&order=desc", reversed(posted[4:])},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := itemsOf(t, "/v1/sessions/abc-123-def/events"+tt.query)
			if tt.want == nil {
				assert.Empty(t, got)
				return
			}
			// Seed form: exactly the attributes posted, byte for byte after decoding.
			assert.JSONEq(t, asJSON(tt.want), asJSON(got))
		})
	}

	t.Run("timeline and diagnosis", func(t *testing.T) {
		var v app.SessionView
		a := s.get("/v1/sessions/abc-123-def")
		require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
		a.decode(t, &v)
		assert.Equal(t, domain.OutcomeCompleted, v.Diagnosis.Outcome)
		require.Len(t, v.Timeline, 6)
		assert.Equal(t, int64(1234), v.Timeline[1].SincePreviousMs)
		assert.Equal(t, int64(5*60*1000+45678), v.Timeline[5].SinceStartMs)
	})

	t.Run("unknown session", func(t *testing.T) {
		a := s.get("/v1/sessions/nobody")
		assert.Equal(t, http.StatusNotFound, a.status)
		assert.Contains(t, a.json(t)["error"], "not found")
		// Like the session itself: 404, not an empty list that looks like a session
		// without events.
		assert.Equal(t, http.StatusNotFound, s.get("/v1/sessions/nobody/events").status)
	})
}

func TestSessionScenarios(t *testing.T) {
	s := newStack(t, stackOptions{})
	start := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	msgs := map[int]string{1: "Failed to invoke AgentCore: Timeout", 2: "ValueError: Invalid request format", 3: throttled, 4: "States.Timeout"}
	for sc := range 5 {
		s.post(lifecycle("scenario-"+string(rune('0'+sc)), start, sc, 5*time.Minute, msgs[sc])...)
	}
	// Scenario 4 is an execution that ended without the agent's completion event.
	x := execution{agent: "my-agent", name: "run-4", session: "scenario-4", start: start}
	s.post(statusChange(x, "RUNNING", time.Time{}, "", ""), statusChange(x, "TIMED_OUT", start.Add(time.Hour), "States.Timeout", ""))
	for sc := range 5 {
		t.Run("scenario "+string(rune('0'+sc)), func(t *testing.T) {
			var v app.SessionView
			a := s.get("/v1/sessions/scenario-" + string(rune('0'+sc)))
			require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
			a.decode(t, &v)
			assert.Equal(t, sc, v.Diagnosis.Scenario, "diagnosis %+v", v.Diagnosis)
			assert.Equal(t, msgs[sc], v.Diagnosis.ErrorMessage)
			assert.NotEmpty(t, v.Diagnosis.Summary)
		})
	}
	t.Run("failure events of scenario 3", func(t *testing.T) {
		var l struct {
			Items []domain.JournalItem `json:"items"`
		}
		s.get("/v1/sessions/scenario-3/events?contains=FAILED").decode(t, &l)
		require.Len(t, l.Items, 1)
		assert.Equal(t, "AGENT_BACKGROUND_TASK_FAILED", l.Items[0].Status)
		assert.Equal(t, throttled, l.Items[0].ErrorMessage)
	})
	t.Run("stuck lists the sessions in progress", func(t *testing.T) {
		var l struct {
			Items []stuck.Entry `json:"items"`
		}
		a := s.get("/v1/stuck")
		require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
		a.decode(t, &l)
		open := map[string]bool{}
		for _, e := range l.Items {
			open[e.SessionID] = !e.Closed
		}
		// Closed entries stay listed until the detector has had its last look.
		assert.True(t, open["scenario-4"], "entries %+v", l.Items)
		assert.False(t, open["scenario-0"], "entries %+v", l.Items)
	})
}

func TestIngest(t *testing.T) {
	at := time.Date(2024, 11, 4, 10, 30, 0, 0, time.UTC)
	item := func(session string, i int) string {
		b, _ := json.Marshal(agentEvent(session, "SESSION_INITIATED", at.Add(time.Duration(i)*time.Second), ""))
		return string(b)
	}
	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
		accepted    int
		duplicate   int
		rejected    int
		// lines are the results' lines, in order, when checked.
		lines []int
		// readable sessions must have their events in the journal afterwards.
		readable []string
	}{
		{name: "one object", contentType: "application/json", body: item("one", 0), status: 200, accepted: 1, readable: []string{"one"}},
		{name: "array", body: "[" + item("arr", 0) + "," + item("arr", 1) + "]", status: 200, accepted: 2},
		{name: "duplicate", body: "[" + item("dup", 0) + "," + item("dup", 0) + "]", status: 200, accepted: 1, duplicate: 1},
		{
			name: "NDJSON with a line that is not JSON, declared", contentType: "application/x-ndjson",
			body:   item("nd1", 0) + "\nthis is not json\n" + item("nd2", 1) + "\n\n" + item("nd3", 2) + "\n",
			status: 200, accepted: 3, rejected: 1, lines: []int{1, 2, 3, 5}, readable: []string{"nd1", "nd2", "nd3"},
		},
		{
			name: "NDJSON with a broken object, declared JSON", contentType: "application/json",
			body:   item("nd4", 0) + "\n{\"PK\": broken\n" + item("nd5", 1),
			status: 200, accepted: 2, rejected: 1, lines: []int{1, 2, 3}, readable: []string{"nd4", "nd5"},
		},
		{
			name: "NDJSON with an array line, declared", contentType: "application/x-ndjson; charset=utf-8",
			body:   item("nd6", 0) + "\n[" + item("nd7", 0) + "]\n42\n" + item("nd8", 0),
			status: 200, accepted: 3, rejected: 1, lines: []int{1, 2, 3, 4}, readable: []string{"nd6", "nd7", "nd8"},
		},
		{name: "invalid item", body: `{"PK": "SESSION#x", "SK": "nope", "Status": "SESSION_INITIATED"}`, status: 400, rejected: 1},
		{name: "every object rejected", contentType: "application/x-ndjson", body: "nope\n{\"a\":1}\n", status: 400, rejected: 2},
		{name: "empty body", body: "", status: 400, rejected: 1},
		{name: "EventBridge envelope", body: mustJSON(statusChange(abc123, "RUNNING", time.Time{}, "", "")), status: 200, accepted: 1, readable: []string{"s-abc123"}},
	}
	s := newStack(t, stackOptions{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := tt.contentType
			if ct == "" && tt.body != "" {
				ct = "application/json"
			}
			a := s.do(http.MethodPost, "/v1/events", ct, []byte(tt.body))
			require.Equal(t, tt.status, a.status, "body: %s", a.body)
			var rep app.IngestReport
			a.decode(t, &rep)
			assert.Equal(t, tt.accepted, rep.Accepted, "accepted: %s", a.body)
			assert.Equal(t, tt.duplicate, rep.Duplicate, "duplicate: %s", a.body)
			assert.Equal(t, tt.rejected, rep.Rejected, "rejected: %s", a.body)
			require.Len(t, rep.Results, tt.accepted+tt.duplicate+tt.rejected)
			for i, r := range rep.Results {
				assert.Equal(t, i, r.Index)
				if r.Status == app.IngestRejected {
					assert.NotEmpty(t, r.Reason)
				}
			}
			if tt.lines != nil {
				var lines []int
				for _, r := range rep.Results {
					lines = append(lines, r.Line)
				}
				assert.Equal(t, tt.lines, lines)
			}
			for _, id := range tt.readable {
				var l struct {
					Items []domain.JournalItem `json:"items"`
				}
				s.get("/v1/sessions/"+id+"/events").decode(t, &l)
				assert.NotEmpty(t, l.Items, "session %s", id)
			}
		})
	}

	t.Run("rejected objects are quarantined", func(t *testing.T) {
		var q struct {
			Items []app.Quarantined `json:"items"`
			Total int64             `json:"total"`
		}
		a := s.get("/v1/quarantine?limit=2")
		require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
		a.decode(t, &q)
		assert.Len(t, q.Items, 2)
		assert.GreaterOrEqual(t, q.Total, int64(7))
		assert.Equal(t, "http", q.Items[0].Source)
		assert.NotEmpty(t, q.Items[0].Reason)
	})
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestIngestBodyLimit(t *testing.T) {
	s := newStack(t, stackOptions{config: httpapi.Config{MaxBodyBytes: 1024}})
	var objs []any
	for i := range 20 {
		objs = append(objs, agentEvent("big", "SESSION_INITIATED", day.Add(time.Duration(i)*time.Second), ""))
	}
	body := []byte(mustJSON(objs))
	require.Greater(t, len(body), 1024)
	a := s.do(http.MethodPost, "/v1/events", "application/json", body)
	require.Equal(t, http.StatusRequestEntityTooLarge, a.status, "body: %s", a.body)
	m := a.json(t)
	assert.Contains(t, m["error"], "1024 bytes")
	assert.Contains(t, m["error"], "1 KiB")
	assert.InDelta(t, 1024, m["limit"], 0)
	// Nothing of a body over the limit is ingested.
	assert.Equal(t, http.StatusNotFound, s.get("/v1/sessions/big").status)

	t.Run("default limit is 10 MiB", func(t *testing.T) {
		s := newStack(t, stackOptions{})
		a := s.do(http.MethodPost, "/v1/events", "application/x-ndjson", []byte(strings.Repeat(" ", 10<<20+1)))
		require.Equal(t, http.StatusRequestEntityTooLarge, a.status)
		assert.Contains(t, a.json(t)["error"], "10 MiB")
	})
}

func TestIngestFailures(t *testing.T) {
	t.Run("journal failure is a logged 500", func(t *testing.T) {
		s := newStack(t, stackOptions{failJournal: true})
		a := s.do(http.MethodPost, "/v1/events", "application/json", []byte(seed002))
		require.Equal(t, http.StatusInternalServerError, a.status, "body: %s", a.body)
		assert.NotContains(t, string(a.body), "disk on fire")
		assert.Contains(t, s.logs.String(), "disk on fire")
	})
	t.Run("no ingester", func(t *testing.T) {
		s := newStack(t, stackOptions{noIngester: true})
		a := s.do(http.MethodPost, "/v1/events", "application/json", []byte(seed002))
		require.Equal(t, http.StatusNotImplemented, a.status, "body: %s", a.body)
		assert.Contains(t, a.json(t)["error"], "disabled")
	})
}

func TestStats(t *testing.T) {
	s := newStack(t, stackOptions{})
	seedHistory(s)
	tests := []struct {
		name    string
		path    string
		status  int
		buckets []string
		started int64
	}{
		{"days", "/v1/agents/my-agent/stats", 200, []string{"DAY#2024-11-04"}, 3},
		{"hours", "/v1/agents/my-agent/stats?granularity=hour", 200, []string{"HOUR#2024-11-04T12"}, 3},
		{"range", "/v1/agents/other-agent/stats?from=2024-11-03&to=2024-11-03", 200, []string{"DAY#2024-11-03"}, 1},
		{"range with no bucket", "/v1/agents/other-agent/stats?from=2024-12-01", 404, nil, 0},
		{"unknown agent", "/v1/agents/nobody/stats", 404, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := s.get(tt.path)
			require.Equal(t, tt.status, a.status, "body: %s", a.body)
			if tt.status != http.StatusOK {
				assert.NotEmpty(t, a.json(t)["error"])
				return
			}
			var v app.AgentStatsView
			a.decode(t, &v)
			var buckets []string
			for _, b := range v.Buckets {
				buckets = append(buckets, b.Bucket)
			}
			assert.Equal(t, tt.buckets, buckets)
			assert.Equal(t, tt.started, v.Total.Started)
		})
	}
	t.Run("all agents", func(t *testing.T) {
		var l struct {
			Items []app.AgentStatsView `json:"items"`
		}
		a := s.get("/v1/stats")
		require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
		a.decode(t, &l)
		require.Len(t, l.Items, 2)
		assert.Equal(t, "my-agent", l.Items[0].AgentName)
		assert.Equal(t, "other-agent", l.Items[1].AgentName)
		assert.Equal(t, int64(1), l.Items[0].Total.Statuses["FAILED"])
	})
}

func TestAlerts(t *testing.T) {
	s := newStack(t, stackOptions{})
	ctx := t.Context()
	raised := time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)
	for _, a := range []app.Alert{
		{SessionID: "s-def456", Kind: stuck.KindMissingCompletion, AgentName: "my-agent", RaisedAt: raised,
			Diagnosis: domain.Diagnosis{Outcome: domain.OutcomeMissingCompletion, Scenario: 4, Summary: "no completion event"}},
		{SessionID: "s-old", Kind: stuck.KindStuck, AgentName: "my-agent", RaisedAt: raised.Add(-time.Hour)},
	} {
		require.NoError(t, s.alerts.InsertAlert(ctx, a))
	}
	require.NoError(t, s.alerts.Resolve(ctx, "s-old", []stuck.Kind{stuck.KindStuck}, raised))

	kinds := func(t *testing.T, path string) []string {
		t.Helper()
		a := s.get(path)
		require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
		var l struct {
			Items []app.Alert `json:"items"`
		}
		a.decode(t, &l)
		out := []string{}
		for _, x := range l.Items {
			out = append(out, x.SessionID+"/"+string(x.Kind))
		}
		return out
	}
	for _, tt := range []struct{ query, want string }{
		{"", "s-def456/missing_completion s-old/stuck"},
		{"?state=all", "s-def456/missing_completion s-old/stuck"},
		{"?state=open", "s-def456/missing_completion"},
		{"?state=resolved", "s-old/stuck"},
		{"?session=s-old", "s-old/stuck"},
		{"?limit=1", "s-def456/missing_completion"},
	} {
		t.Run("list"+tt.query, func(t *testing.T) {
			assert.Equal(t, tt.want, strings.Join(kinds(t, "/v1/alerts"+tt.query), " "))
		})
	}

	ackTests := []struct {
		name, path, body string
		status           int
		field, by        string
	}{
		{name: "ack with a name", path: "/v1/alerts/s-def456/missing_completion/ack", body: `{"by": "alice"}`, status: 200, by: "alice"},
		{name: "ack again keeps the first", path: "/v1/alerts/s-def456/missing_completion/ack", body: `{"by": "bob"}`, status: 200, by: "alice"},
		{name: "ack without body", path: "/v1/alerts/s-old/stuck/ack", status: 200, by: "http"},
		{name: "no such alert", path: "/v1/alerts/s-none/stuck/ack", status: 404},
		{name: "unknown kind", path: "/v1/alerts/s-old/bored/ack", status: 400, field: "kind"},
		{name: "bad body", path: "/v1/alerts/s-old/stuck/ack", body: `{"by": 3}`, status: 400, field: "body"},
	}
	for _, tt := range ackTests {
		t.Run(tt.name, func(t *testing.T) {
			a := s.do(http.MethodPost, tt.path, "application/json", []byte(tt.body))
			require.Equal(t, tt.status, a.status, "body: %s", a.body)
			m := a.json(t)
			if tt.status != http.StatusOK {
				assert.NotEmpty(t, m["error"])
				if tt.field != "" {
					assert.Equal(t, tt.field, m["field"])
				}
				return
			}
			assert.Equal(t, tt.by, m["ackedBy"])
			assert.NotEmpty(t, m["ackedAt"])
		})
	}
}

func TestHealthAndMetrics(t *testing.T) {
	t.Run("healthz, readyz without a check, metrics", func(t *testing.T) {
		s := newStack(t, stackOptions{})
		s.post(lifecycle("m", day, 0, time.Second, "")...)
		assert.Equal(t, http.StatusOK, s.get("/healthz").status)
		a := s.get("/readyz")
		assert.Equal(t, http.StatusOK, a.status)
		assert.Equal(t, "ready", a.json(t)["status"])
		m := s.get("/metrics")
		require.Equal(t, http.StatusOK, m.status)
		assert.Contains(t, string(m.body), `agentwatch_ingested_total{result="accepted",source="http"} 6`)
	})
	t.Run("readyz says why not", func(t *testing.T) {
		s := newStack(t, stackOptions{ready: func(ctx context.Context) error {
			return errors.New("projector is 1200 events behind")
		}})
		a := s.get("/readyz")
		require.Equal(t, http.StatusServiceUnavailable, a.status)
		assert.Equal(t, "not ready: projector is 1200 events behind", a.json(t)["error"])
		assert.Equal(t, http.StatusOK, s.get("/healthz").status)
	})
	t.Run("readyz check gets a deadline", func(t *testing.T) {
		s := newStack(t, stackOptions{config: httpapi.Config{ReadyTimeout: 50 * time.Millisecond}, ready: func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		}})
		a := s.get("/readyz")
		require.Equal(t, http.StatusServiceUnavailable, a.status)
		assert.Contains(t, a.json(t)["error"], "deadline exceeded")
	})
}

func TestRouting(t *testing.T) {
	s := newStack(t, stackOptions{})
	tests := []struct {
		name, method, path string
		status             int
		allow, contentType string
	}{
		{name: "unknown API path", method: "GET", path: "/v1/nope", status: 404, contentType: "application/json; charset=utf-8"},
		{name: "unknown path", method: "GET", path: "/favicon.ico", status: 404, contentType: "application/json; charset=utf-8"},
		{name: "wrong method", method: "DELETE", path: "/v1/executions", status: 405, allow: "GET, HEAD", contentType: "application/json; charset=utf-8"},
		{name: "GET on ingest", method: "GET", path: "/v1/events", status: 405, allow: "POST"},
		{name: "POST on the page", method: "POST", path: "/", status: 405, allow: "GET, HEAD"},
		{name: "History page", method: "GET", path: "/", status: 200, contentType: "text/html; charset=utf-8"},
		{name: "page script", method: "GET", path: "/assets/app.js", status: 200, contentType: "text/javascript; charset=utf-8"},
		{name: "page styles", method: "GET", path: "/assets/style.css", status: 200, contentType: "text/css; charset=utf-8"},
		{name: "no directory listing", method: "GET", path: "/assets/", status: 404},
		{name: "HEAD", method: "HEAD", path: "/healthz", status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := s.do(tt.method, tt.path, "", nil)
			require.Equal(t, tt.status, a.status, "body: %s", a.body)
			if tt.allow != "" {
				assert.Equal(t, tt.allow, a.header.Get("Allow"))
			}
			if tt.contentType != "" {
				assert.Equal(t, tt.contentType, a.header.Get("Content-Type"))
			}
			if tt.status >= 400 {
				assert.NotEmpty(t, a.json(t)["error"])
			}
		})
	}

	t.Run("the page links its assets and the poll interval, and has a CSP", func(t *testing.T) {
		a := s.get("/")
		body := string(a.body)
		assert.Contains(t, body, `<meta name="agentwatch-config" content="{&#34;pollMs&#34;:2000,`)
		assert.Regexp(t, `src="assets/app.js\?v=[0-9a-f]{12}"`, body)
		assert.NotContains(t, body, "http://")
		assert.NotContains(t, body, "https://")
		assert.Contains(t, a.header.Get("Content-Security-Policy"), "default-src 'none'")
	})

	t.Run("polls revalidate with ETags", func(t *testing.T) {
		first := s.get("/v1/executions")
		require.Equal(t, http.StatusOK, first.status)
		etag := first.header.Get("ETag")
		require.NotEmpty(t, etag)
		assert.Equal(t, "no-cache", first.header.Get("Cache-Control"))
		again := s.do(http.MethodGet, "/v1/executions", "", nil, "If-None-Match", etag)
		assert.Equal(t, http.StatusNotModified, again.status)
		assert.Empty(t, again.body)
		s.post(statusChange(abc123, "RUNNING", time.Time{}, "", ""))
		changed := s.do(http.MethodGet, "/v1/executions", "", nil, "If-None-Match", etag)
		assert.Equal(t, http.StatusOK, changed.status)
		assert.NotEqual(t, etag, changed.header.Get("ETag"))
	})

	t.Run("requests are logged at debug level", func(t *testing.T) {
		s.get("/v1/stuck")
		assert.Contains(t, s.logs.String(), "path=/v1/stuck")
	})
}
