package httpapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/app"
)

// TestSessionEventsVocabulary: several statuses at once, times in the CLI's words, and
// 404 for a session the journal does not know (an empty list for one it knows).
func TestSessionEventsVocabulary(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.post(lifecycle("voc", day.Add(10*time.Hour), 3, 5*time.Second, throttled)...)
	statuses := func(t *testing.T, query string) []string {
		t.Helper()
		a := s.get("/v1/sessions/voc/events" + query)
		require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
		var l struct {
			Items []app.AnsweredItem `json:"items"`
		}
		a.decode(t, &l)
		out := []string{}
		for _, it := range l.Items {
			out = append(out, it.Status)
		}
		return out
	}
	assert.Equal(t, []string{"SESSION_INITIATED", "AGENT_BACKGROUND_TASK_FAILED"},
		statuses(t, "?status=SESSION_INITIATED,AGENT_BACKGROUND_TASK_FAILED"))
	assert.Equal(t, []string{"AGENT_BACKGROUND_TASK_FAILED"}, statuses(t, "?status=SESSION_INITIATED,AGENT_BACKGROUND_TASK_FAILED&order=desc&limit=1"))
	assert.Len(t, statuses(t, "?after=7d"), 0, "a duration ago: the fixture is older")
	assert.Len(t, statuses(t, "?after=2024-11-03"), 6, "a date")
	assert.Equal(t, []string{}, statuses(t, "?status=EXECUTION_ABORTED"))

	a := s.get("/v1/sessions/nope/events")
	require.Equal(t, http.StatusNotFound, a.status, "body: %s", a.body)
	assert.Contains(t, a.json(t)["error"], "session nope: not found")
	bad := s.get("/v1/sessions/voc/events?after=bogus")
	require.Equal(t, http.StatusBadRequest, bad.status)
	assert.Equal(t, "after", bad.json(t)["field"])
}
