package agentstats_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/projections/agentstats"
)

func TestErrorClass(t *testing.T) {
	for msg, want := range map[string]string{
		"ClientError: ThrottlingException - Rate exceeded":                   "ClientError: ThrottlingException",
		"Failed to invoke AgentCore: Timeout":                                "Failed to invoke AgentCore",
		"ValueError: Invalid request format":                                 "ValueError",
		"KeyError: 'session_id'":                                             "KeyError",
		"botocore.exceptions.ReadTimeoutError: Read timeout on endpoint URL": "botocore.exceptions.ReadTimeoutError",
		"RuntimeError":                "RuntimeError",
		"OSError (errno 28) no space": "OSError",
		"":                            "",
		"Task 12345 failed":           "Task ##### failed",
		"ClientError: AccessDeniedException when calling the InvokeAgentRuntime": "ClientError: AccessDeniedException",
	} {
		assert.Equal(t, want, agentstats.ErrorClass(msg), msg)
	}
}

func TestQuantilesWithinRelativeAccuracy(t *testing.T) {
	bins := map[int32]int64{}
	for i := 1; i <= 1000; i++ {
		bins[agentstats.DurationBin(time.Duration(i)*time.Second)]++
	}
	q := agentstats.QuantilesOf(bins)
	assert.EqualValues(t, 1000, q.Count)
	assert.InEpsilon(t, 500, q.P50, 0.02)
	assert.InEpsilon(t, 900, q.P90, 0.02)
	assert.InEpsilon(t, 990, q.P99, 0.02)
}

func TestDeltasRemoveOldContribution(t *testing.T) {
	start := time.Date(2024, 11, 4, 10, 30, 0, 0, time.UTC).UnixMilli()
	before := agentstats.Contribution{Agent: "a", StartMs: start, ExecStatus: "RUNNING", Outcome: "in_progress"}
	after := agentstats.Contribution{Agent: "a", StartMs: start, ExecStatus: "FAILED", Outcome: "background_task_failed",
		Failure: agentstats.FailureBackgroundTask, ErrorClass: "KeyError", HasDuration: true, DurationBin: agentstats.DurationBin(time.Minute)}
	ds := agentstats.Deltas(&before, true, &after, true)
	require.Len(t, ds, 2)
	assert.Equal(t, "HOUR#2024-11-04T10", ds[0].Bucket)
	assert.Equal(t, "DAY#2024-11-04", ds[1].Bucket)
	c := ds[0].Counters
	assert.NotContains(t, c, "started", "the session was counted already")
	assert.EqualValues(t, -1, c["status.RUNNING"])
	assert.EqualValues(t, 1, c["status.FAILED"])
	assert.EqualValues(t, 1, c["failure.background_task"])
	assert.EqualValues(t, 1, c["error.KeyError"])
	assert.Nil(t, agentstats.Deltas(&after, true, &after, true))

	total := agentstats.Counters{}
	agentstats.Merge(total, agentstats.Deltas(nil, false, &before, true)[1].Counters)
	agentstats.Merge(total, ds[1].Counters)
	st := agentstats.StatsOf("a", "DAY#2024-11-04", total)
	assert.EqualValues(t, 1, st.Started)
	assert.EqualValues(t, 1, st.Statuses["FAILED"])
	assert.NotContains(t, st.Statuses, "RUNNING")
	assert.Equal(t, []agentstats.ErrorCount{{Class: "KeyError", Count: 1}}, st.TopErrors)
	assert.InEpsilon(t, 60, st.Duration.P50, 0.02)
}
