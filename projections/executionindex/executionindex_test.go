package executionindex_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/executionindex"
)

func TestItemOfSeedLifecycle(t *testing.T) {
	start := time.Date(2024, 11, 4, 12, 35, 0, 0, time.UTC)
	stop := start.Add(10*time.Second + 250*time.Millisecond)
	arn := "arn:aws:states:us-east-1:123456789012:execution:my-agent:abc123"
	mk := func(st domain.ExecStatus, at time.Time) domain.Event {
		e := domain.Event{SessionID: "abc123", Status: st.JournalStatus(), Timestamp: at, SK: domain.ExecutionSortKey(at, st, 0, arn)}
		e.Exec = domain.Execution{ExecutionArn: arn, StateMachineArn: "arn:aws:states:us-east-1:123456789012:stateMachine:my-agent",
			ExecutionName: "abc123", AgentName: "my-agent", StartDate: start}
		if st.Terminal() {
			e.Exec.StopDate = at
		}
		return e
	}
	var s domain.Session
	running := mk(domain.ExecRunning, start)
	s.Apply(&running)
	items := executionindex.ItemsOf(&s, nil)
	require.Len(t, items, 1)
	it := items[0]
	assert.Equal(t, "RUNNING", it.Status)
	assert.Equal(t, "2024-11-04T12:35:00.000Z", it.StartDate)
	assert.Empty(t, it.StopDate)
	assert.Nil(t, it.DurationSeconds)

	before := s.Clone()
	done := mk(domain.ExecSucceeded, stop)
	s.Apply(&done)
	changed := executionindex.Changed(&before, &s, nil)
	require.Len(t, changed, 1)
	it = changed[0]
	assert.Equal(t, "SUCCEEDED", it.Status)
	assert.Equal(t, "2024-11-04T12:35:10.250Z", it.StopDate)
	require.NotNil(t, it.DurationSeconds)
	assert.Equal(t, 10.25, *it.DurationSeconds)
	assert.Equal(t, "my-agent", it.AgentName)
	assert.Empty(t, executionindex.Changed(&s, &s, nil))

	b, err := json.Marshal(it)
	require.NoError(t, err)
	for _, k := range []string{"executionArn", "agentName", "status", "startDate", "stateMachineArn", "executionName", "stopDate", "durationSeconds", "sessionId", "lastEventAt", "redriveCount"} {
		assert.Contains(t, string(b), `"`+k+`"`)
	}
}

func TestQueryNormalize(t *testing.T) {
	q := executionindex.Query{Limit: 5000, Status: "DONE"}
	err := q.Normalize()
	require.ErrorIs(t, err, domain.ErrInvalid)
	assert.Contains(t, err.Error(), "limit")
	assert.Contains(t, err.Error(), "status")
	q = executionindex.Query{}
	require.NoError(t, q.Normalize())
	assert.Equal(t, executionindex.DefaultLimit, q.Limit)
}
