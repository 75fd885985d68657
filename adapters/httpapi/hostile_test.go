package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
)

// ingestReport posts body as JSON and decodes the report.
func (s *stack) ingestReport(body string) (answer, app.IngestReport) {
	s.t.Helper()
	a := s.do(http.MethodPost, "/v1/events", "application/json", []byte(body))
	var rep app.IngestReport
	if a.status == http.StatusOK || a.status == http.StatusBadRequest {
		a.decode(s.t, &rep)
	}
	return a, rep
}

// TestIngestUnknownStatusNeverPanics: a Status of 63 "X" and a two-byte character was
// cut inside the character for a metric label; Prometheus panicked, the answer was 500
// and the good objects of the same body were lost. The same through detail.status.
func TestIngestUnknownStatusNeverPanics(t *testing.T) {
	s := newStack(t, stackOptions{})
	at := day.Add(10 * time.Hour)
	long := strings.Repeat("X", 63) + "é"
	var objs []any
	objs = append(objs, agentEvent("good-1", "SESSION_INITIATED", at, ""))
	objs = append(objs, agentEvent("long-status", long, at, ""))
	for k := 50; k <= 64; k++ { // every cut of "EXECUTION_" + k X + "é" at 64 bytes
		x := execution{agent: "a", name: "n" + strings.Repeat("0", k), session: "detail-status", start: at}
		objs = append(objs, statusChange(x, strings.Repeat("X", k)+"é", time.Time{}, "", ""))
	}
	objs = append(objs, agentEvent("good-2", "SESSION_INITIATED", at, ""))

	a, rep := s.ingestReport(mustJSON(objs))
	require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
	assert.Equal(t, len(objs), rep.Accepted, "unknown statuses are kept: %s", a.body)
	for _, id := range []string{"good-1", "good-2", "long-status", "detail-status"} {
		assert.Equal(t, http.StatusOK, s.get("/v1/sessions/"+id).status, id)
	}
	m := s.get("/metrics")
	require.Equal(t, http.StatusOK, m.status, "body: %s", m.body)
	assert.Contains(t, string(m.body), `agentwatch_unknown_status_events_total{source="http",status="other"} 16`)
	assert.NotContains(t, string(m.body), "XXXX", "input is never a label")
}

// TestMetricsStartAtZero: labelled counters exist before their first increment, so that
// rate() and increase() see the first event.
func TestMetricsStartAtZero(t *testing.T) {
	s := newStack(t, stackOptions{})
	m := s.get("/metrics")
	require.Equal(t, http.StatusOK, m.status)
	for _, line := range []string{
		`agentwatch_ingested_total{result="accepted",source="http"} 0`,
		`agentwatch_ingested_total{result="rejected",source="http"} 0`,
		`agentwatch_ingested_total{result="duplicate",source="queue"} 0`,
		`agentwatch_quarantined_total{source="http"} 0`,
		`agentwatch_unknown_status_events_total{source="projection",status="other"} 0`,
		`agentwatch_alerts_raised_total{kind="stuck"} 0`,
		`agentwatch_alerts_raised_total{kind="missing_completion"} 0`,
		`agentwatch_http_requests_refused_total{reason="cross_origin"} 0`,
	} {
		assert.Contains(t, string(m.body), line)
	}
}

// panickingResolver is a fault planted at the agent-name port: it panics for one state
// machine, as a bug on one object's path would.
type panickingResolver struct{ arn string }

func (r panickingResolver) ResolveAgentName(_ context.Context, stateMachineArn string) (string, error) {
	if stateMachineArn == r.arn {
		panic("planted fault for " + stateMachineArn)
	}
	return "", nil
}

// panickingJournal is a fault planted at the journal port: it panics on any append that
// holds an event of one session.
type panickingJournal struct {
	next    app.JournalAppender
	session string
}

func (j panickingJournal) Append(ctx context.Context, events []domain.Event) ([]app.AppendResult, error) {
	for _, e := range events {
		if e.SessionID == j.session {
			panic("planted fault appending " + e.SessionID)
		}
	}
	return j.next.Append(ctx, events)
}

// TestIngestPanicCostsOnlyItsObject: a panic while ingesting one object rejects that
// object with a reason and keeps every other object of the body.
func TestIngestPanicCostsOnlyItsObject(t *testing.T) {
	at := day.Add(11 * time.Hour)
	boom := execution{agent: "boom", name: "boom-1", session: "s-boom", start: at}
	tests := []struct {
		name string
		opts stackOptions
	}{
		{"while mapping the object (planted in the agent-name resolver)",
			stackOptions{resolver: panickingResolver{arn: "arn:aws:states:" + region + ":" + account + ":stateMachine:boom"}}},
		{"while appending it (planted in the journal)",
			stackOptions{wrapJournal: func(j app.JournalAppender) app.JournalAppender { return panickingJournal{next: j, session: "s-boom"} }}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t, tt.opts)
			objs := []any{
				agentEvent("before", "SESSION_INITIATED", at, ""),
				statusChange(boom, "RUNNING", time.Time{}, "", ""),
				agentEvent("after", "SESSION_INITIATED", at, ""),
			}
			a, rep := s.ingestReport(mustJSON(objs))
			require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
			assert.Equal(t, 2, rep.Accepted, "body: %s", a.body)
			assert.Equal(t, 1, rep.Rejected, "body: %s", a.body)
			require.Len(t, rep.Results, 3)
			assert.Equal(t, app.IngestRejected, rep.Results[1].Status)
			assert.Contains(t, rep.Results[1].Reason, "internal error while ingesting this object")
			assert.Equal(t, http.StatusOK, s.get("/v1/sessions/before").status)
			assert.Equal(t, http.StatusOK, s.get("/v1/sessions/after").status)
			assert.Equal(t, http.StatusNotFound, s.get("/v1/sessions/s-boom").status)
			assert.Contains(t, s.logs.String(), "planted fault", "the panic and its stack are logged")
			q := s.get("/v1/quarantine").json(t)
			assert.InDelta(t, 1, q["total"], 0, "the object is quarantined")
		})
	}
}

// TestIngestRejectsInvalidUTF8Ids: invalid UTF-8 in an id was replaced with U+FFFD, so
// that two different byte strings became one session.
func TestIngestRejectsInvalidUTF8Ids(t *testing.T) {
	s := newStack(t, stackOptions{})
	at := day.Add(12 * time.Hour)
	body := "[" + mustJSONRaw(agentEvent("x\xff", "SESSION_INITIATED", at, "")) + "," +
		mustJSONRaw(agentEvent("x\xfe", "SESSION_INITIATED", at, "")) + "," +
		mustJSON(agentEvent("fine", "SESSION_INITIATED", at, "")) + "]"
	a, rep := s.ingestReport(body)
	require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
	assert.Equal(t, 1, rep.Accepted, "body: %s", a.body)
	assert.Equal(t, 2, rep.Rejected, "body: %s", a.body)
	for _, r := range rep.Results[:2] {
		assert.Equal(t, app.IngestRejected, r.Status)
		assert.Contains(t, r.Reason, "PK: is not valid UTF-8")
	}
	assert.Equal(t, http.StatusNotFound, s.get("/v1/sessions/x%EF%BF%BD").status, "no merged session")
}

// mustJSONRaw renders m as JSON keeping invalid UTF-8 bytes of its strings as they
// are (encoding/json would replace them), as a hostile client sends them.
func mustJSONRaw(m map[string]any) string {
	var b strings.Builder
	b.WriteString("{")
	first := true
	for k, v := range m {
		if !first {
			b.WriteString(",")
		}
		first = false
		b.WriteString(`"` + k + `":"` + strings.ReplaceAll(v.(string), `"`, `\"`) + `"`)
	}
	b.WriteString("}")
	return b.String()
}

// TestIngestFieldCaps: a 9.9 MB ErrorMessage was accepted; now the object is rejected
// with a reason naming the field and its cap, and the others are kept.
func TestIngestFieldCaps(t *testing.T) {
	s := newStack(t, stackOptions{})
	at := day.Add(13 * time.Hour)
	huge := agentEvent("huge", "AGENT_BACKGROUND_TASK_FAILED", at, strings.Repeat("E", 9_900_000))
	x := execution{agent: "a", name: "cause", session: "s-cause", start: at}
	longCause := statusChange(x, "FAILED", at.Add(time.Second), "States.TaskFailed", strings.Repeat("c", domain.MaxTextFieldBytes+1))
	a, rep := s.ingestReport(mustJSON([]any{huge, longCause, agentEvent("small", "SESSION_INITIATED", at, "")}))
	require.Equal(t, http.StatusOK, a.status, "body: %.2000s", a.body)
	assert.Equal(t, 1, rep.Accepted)
	assert.Equal(t, 2, rep.Rejected)
	assert.Contains(t, rep.Results[0].Reason, "ErrorMessage: is 9900000 bytes, over its cap of 65536 bytes")
	assert.Contains(t, rep.Results[1].Reason, "detail.cause: is 65537 bytes, over its cap of 65536 bytes")
	assert.Less(t, len(a.body), 64<<10, "the answer does not echo the field")
}

// TestAnswersAreBounded: an agent may write a 9.9 MB ErrorMessage straight to the
// journal (which keeps it); one session answer was then 29.7 MB. What agentwatch
// derives and answers is bounded and says it was cut.
func TestAnswersAreBounded(t *testing.T) {
	s := newStack(t, stackOptions{})
	at := day.Add(14 * time.Hour)
	huge := strings.Repeat("é", 4_950_000) // 9.9 MB
	evs := []domain.Event{
		{SessionID: "huge", SK: "EVENT#" + domain.FormatTime(at), Status: domain.StatusSessionInitiated, Timestamp: at},
		{SessionID: "huge", SK: "EVENT#" + domain.FormatTime(at.Add(time.Second)), Status: domain.StatusInvocationFailed,
			Timestamp: at.Add(time.Second), ErrorMessage: huge},
	}
	_, err := s.direct.Append(t.Context(), evs)
	require.NoError(t, err)

	v := s.get("/v1/sessions/huge")
	require.Equal(t, http.StatusOK, v.status)
	assert.Less(t, len(v.body), 64<<10, "session answer of %d bytes", len(v.body))
	var view app.SessionView
	v.decode(t, &view)
	require.Len(t, view.Timeline, 2)
	assert.True(t, view.Timeline[1].ErrorMessageTruncated)
	assert.Contains(t, view.Timeline[1].ErrorMessage, "bytes in all]")
	assert.LessOrEqual(t, len(view.Diagnosis.ErrorMessage), domain.MaxSessionErrorBytes)

	e := s.get("/v1/sessions/huge/events")
	require.Equal(t, http.StatusOK, e.status)
	t.Logf("a 9.9 MB ErrorMessage: /v1/sessions/huge answers %d bytes, /v1/sessions/huge/events %d bytes", len(v.body), len(e.body))
	assert.Less(t, len(e.body), 64<<10, "events answer of %d bytes", len(e.body))
	var l struct {
		Items []app.AnsweredItem `json:"items"`
	}
	e.decode(t, &l)
	require.Len(t, l.Items, 2)
	assert.Equal(t, []string{"ErrorMessage"}, l.Items[1].Truncated)
	assert.Empty(t, l.Items[0].Truncated)
	assert.Contains(t, l.Items[1].ErrorMessage, "9900000 bytes in all]")
	assert.LessOrEqual(t, len(l.Items[1].ErrorMessage), domain.MaxAnswerFieldBytes)
}
