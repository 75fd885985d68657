package executionindex_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
	"github.com/agentwatch/agentwatch/projections/executionindex"
	"github.com/agentwatch/agentwatch/projections/projectionstest"
	"github.com/agentwatch/agentwatch/projections/rowcodec"
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
	var ch projections.Changes
	executionindex.New().Changes(&before, &s, projections.Env{NowMs: stop.UnixMilli()}, &ch)
	require.Len(t, ch.Puts, 1)
	it = *ch.Puts[0].Doc.(*executionindex.Item)
	assert.Equal(t, it.Rank, ch.Puts[0].Guard, "guarded by the rank")
	assert.Equal(t, "2024-11-04T12:35:10.250Z", it.IndexedAt, "indexed at the commit's time")
	assert.Equal(t, "SUCCEEDED", it.Status)
	assert.Equal(t, "2024-11-04T12:35:10.250Z", it.StopDate)
	require.NotNil(t, it.DurationSeconds)
	assert.Equal(t, 10.25, *it.DurationSeconds)
	assert.Equal(t, "my-agent", it.AgentName)
	ch = projections.Changes{}
	executionindex.New().Changes(&s, &s, projections.Env{}, &ch)
	assert.Empty(t, ch.Puts, "nothing changed, nothing written")

	b, err := json.Marshal(it)
	require.NoError(t, err)
	for _, k := range []string{"executionArn", "agentName", "status", "startDate", "stateMachineArn", "executionName", "stopDate", "durationSeconds", "sessionId", "lastEventAt", "redriveCount", "outcome"} {
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

// TestOutcomeFollowsTheJournal: an execution Step Functions calls SUCCEEDED carries the
// agent's failure when the journal says it failed (seed 002 scenario 3), and a change of
// the diagnosis alone (a late agent event) rewrites the item.
func TestOutcomeFollowsTheJournal(t *testing.T) {
	start := time.Date(2024, 11, 4, 12, 35, 0, 0, time.UTC)
	arn := "arn:aws:states:us-east-1:123456789012:execution:my-agent:s3"
	var s domain.Session
	apply := func(evs ...domain.Event) {
		for i := range evs {
			s.Apply(&evs[i])
		}
	}
	agent := func(st domain.Status, at time.Duration, msg string) domain.Event {
		ts := start.Add(at)
		return domain.Event{SessionID: "s3", SK: domain.EventKeyPrefix + domain.FormatTime(ts), Status: st, Timestamp: ts, ErrorMessage: msg}
	}
	exec := func(st domain.ExecStatus, at time.Duration) domain.Event {
		ts := start.Add(at)
		e := domain.Event{SessionID: "s3", Status: st.JournalStatus(), Timestamp: ts, SK: domain.ExecutionSortKey(ts, st, 0, arn)}
		e.Exec = domain.Execution{ExecutionArn: arn, AgentName: "my-agent", StartDate: start}
		if st.Terminal() {
			e.Exec.StopDate = ts
		}
		return e
	}
	apply(exec(domain.ExecRunning, 0), agent(domain.StatusSessionInitiated, time.Millisecond, ""),
		agent(domain.StatusBackgroundTaskStarted, 2*time.Second, ""), exec(domain.ExecSucceeded, 5*time.Second))
	before := s.Clone()
	it := executionindex.ItemOf(&s, &s.Execs[0])
	assert.Equal(t, string(domain.OutcomeMissingCompletion), it.Outcome)
	long := strings.Repeat("é", executionindex.MaxErrorMessage) // twice the bound in bytes
	apply(agent(domain.StatusBackgroundTaskFailed, 3*time.Second, long))
	var ch projections.Changes
	executionindex.New().Changes(&before, &s, projections.Env{}, &ch)
	require.Len(t, ch.Puts, 1, "the diagnosis changed: the item is rewritten")
	it = *ch.Puts[0].Doc.(*executionindex.Item)
	assert.Equal(t, "SUCCEEDED", it.Status, "what Step Functions says")
	assert.Equal(t, string(domain.OutcomeBackgroundTaskFailed), it.Outcome, "what the agent says")
	assert.Equal(t, string(domain.StageBackgroundTask), it.Stage)
	assert.True(t, it.ErrorMessageTruncated)
	assert.LessOrEqual(t, len(it.ErrorMessage), executionindex.MaxErrorMessage)
	assert.True(t, utf8.ValidString(it.ErrorMessage), "cut on a character boundary")
}

// TestItemCodec round-trips every field of an item through the table's codec.
func TestItemCodec(t *testing.T) {
	in, out, d := true, false, 45.5
	full := executionindex.Item{
		ExecutionArn: "arn:x", AgentName: "a", Status: "SUCCEEDED", StartDate: "2024-11-04T10:30:00.000Z",
		StateMachineArn: "arn:sm", ExecutionName: "n", IndexedAt: "2024-11-04T10:31:00.000Z",
		StopDate: "2024-11-04T10:30:45.500Z", DurationSeconds: &d, SessionID: "s", Error: "e", Cause: "c",
		RedriveCount: 1, InputIncluded: &in, OutputIncluded: &out, LastEventAt: "2024-11-04T10:30:45.500Z",
		Outcome: "background_task_failed", Stage: "background_task", ErrorMessage: "boom", ErrorMessageTruncated: true, Rank: 11,
	}
	projectionstest.RequireAllSet(t, reflect.ValueOf(full), "Item")
	derived := full
	derived.ExecutionArn = "arn:aws:states:us-east-1:123456789012:execution:code-reviewer:0001"
	derived.StateMachineArn, derived.ExecutionName, derived.AgentName = "arn:aws:states:us-east-1:123456789012:stateMachine:code-reviewer", "0001", "code-reviewer"
	oddTimes := derived
	oddTimes.ExecutionName, oddTimes.IndexedAt, oddTimes.StopDate = "other", "2024-11-04T10:31:00Z", "not a time"
	oddTimes.LastEventAt = "0001-01-01T00:00:00.000Z"
	table := executionindex.New().Tables()[0]
	for name, it := range map[string]executionindex.Item{"every field": full, "names in the ARN": derived,
		"times as given": oddTimes, "running": {ExecutionArn: "arn:y", Status: "RUNNING"}} {
		t.Run(name, func(t *testing.T) {
			b, err := table.EncodeDoc(nil, &it)
			require.NoError(t, err)
			got, err := table.DecodeDoc(b)
			require.NoError(t, err)
			assert.Equal(t, &it, got)
			for _, bad := range [][]byte{nil, {9}, b[:len(b)-1], append(b[:len(b):len(b)], 0)} {
				_, err := table.DecodeDoc(bad)
				assert.ErrorIs(t, err, rowcodec.ErrMalformed)
			}
		})
	}
}
