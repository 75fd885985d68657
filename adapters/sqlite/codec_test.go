package sqlite

import (
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/executionindex"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// fullEvent sets every field of an event, so that a field added to domain.Event or
// domain.Execution and forgotten by the codec fails TestEventCodecMatchesJSON.
func fullEvent(t *testing.T, in, out bool) domain.Event {
	t.Helper()
	at := time.Date(2024, 11, 4, 10, 30, 1, 234_000_000, time.UTC)
	ev := domain.Event{
		SessionID: "abc-123-def", SK: domain.ExecutionSortKey(at, domain.ExecFailed, 2, "arn:x"),
		Status: domain.StatusExecutionFailed, Timestamp: at, ErrorMessage: "boom \"quoted\" <html> \u2028 é",
		Exec: domain.Execution{
			ExecutionArn: "arn:x", StateMachineArn: "arn:sm", ExecutionName: "name", AgentName: "agent",
			StartDate: at.Add(-time.Minute), StopDate: at, RedriveDate: at.Add(-time.Second), Error: "States.TaskFailed",
			Cause: "cause\nline 2", RedriveCount: 2, RedriveStatus: "REDRIVABLE", SourceEventID: "evt-1",
			InputIncluded: &in, OutputIncluded: &out,
		},
	}
	for _, v := range []reflect.Value{reflect.ValueOf(ev), reflect.ValueOf(ev.Exec)} {
		for i := range v.NumField() {
			require.False(t, v.Field(i).IsZero(), "fullEvent leaves %s.%s unset", v.Type().Name(), v.Type().Field(i).Name)
		}
	}
	return ev
}

func TestEventCodecMatchesJSON(t *testing.T) {
	cases := map[string]domain.Event{
		"every field":   fullEvent(t, true, false),
		"bools flipped": fullEvent(t, false, true),
		"failure event": {SessionID: "s", SK: "EVENT#2024-11-04T10:30:02.456Z", Status: domain.StatusInvocationFailed,
			Timestamp: time.Date(2024, 11, 4, 10, 30, 2, 456_000_000, time.UTC), ErrorMessage: "Failed to invoke AgentCore: Timeout"},
		"epoch dates": {SessionID: "s", SK: "EVENT#1970-01-01T00:00:00.000Z#x", Status: domain.StatusExecutionRunning,
			Timestamp: time.Unix(0, 0).UTC(), Exec: domain.Execution{ExecutionArn: "arn:y", StartDate: time.Unix(0, 0).UTC()}},
		"before 1970": {SessionID: "s", SK: "EVENT#1960-01-01T00:00:00.001Z#x", Status: domain.StatusExecutionRunning,
			Timestamp: time.Date(1960, 1, 1, 0, 0, 0, 1_000_000, time.UTC), Exec: domain.Execution{ExecutionArn: "arn:y",
				StopDate: time.Date(1960, 1, 1, 0, 0, 0, 999_000_000, time.UTC)}},
	}
	for name, ev := range cases {
		t.Run(name, func(t *testing.T) {
			item := ev.Item()
			viaJSON, err := item.Event()
			require.NoError(t, err)

			var viaCodec domain.Event
			viaCodec.SessionID, viaCodec.SK, viaCodec.Status = ev.SessionID, ev.SK, ev.Status
			viaCodec.Timestamp = time.UnixMilli(ev.Timestamp.UnixMilli()).UTC()
			require.NoError(t, decodeEventExtra(encodeEventExtra(nil, &ev), &viaCodec))
			assert.Equal(t, viaJSON, viaCodec)
		})
	}
}

func TestEventCodecRejectsGarbage(t *testing.T) {
	good := encodeEventExtra(nil, new(fullEvent(t, true, true)))
	for _, b := range [][]byte{nil, {}, {2, 0}, good[:len(good)-1], append(good[:len(good):len(good)], 0)} {
		var ev domain.Event
		assert.ErrorIs(t, decodeEventExtra(b, &ev), errBadCodec)
	}
}

// requireAllSet fails when a field of v (a struct, recursively through structs and
// slices of structs) is zero: the round-trip tests below must exercise every field.
func requireAllSet(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			require.False(t, v.IsZero(), "%s is zero", path)
			return
		}
		for i := range v.NumField() {
			requireAllSet(t, v.Field(i), path+"."+v.Type().Field(i).Name)
		}
	case reflect.Slice:
		require.NotZero(t, v.Len(), "%s is empty", path)
		for i := range v.Len() {
			requireAllSet(t, v.Index(i), path)
		}
	case reflect.Array:
		for i := range v.Len() {
			requireAllSet(t, v.Index(i), path)
		}
	default:
		require.False(t, v.IsZero(), "%s is zero", path)
	}
}

func TestSessionCodec(t *testing.T) {
	in, out := true, false
	full := domain.Session{
		ID: "abc-123-def", Seen: 0x1ff, FirstAt: 1_730_716_200_000, LastAt: 1_730_716_545_678,
		LastStatus: domain.StatusBackgroundTaskCompleted, Errors: [3]string{"a", "b \u2028 é", "c"},
		Execs: []domain.ExecState{{
			Arn: "arn:x", StateMachineArn: "arn:sm", Name: "n", AgentName: "agent", Status: domain.ExecFailed,
			RedriveCount: 2, Rank: domain.Rank(domain.ExecFailed, 2), StartMs: 1_730_716_100_000, StopMs: 1_730_716_600_000,
			Error: "e", Cause: "c", LastMs: 1_730_716_600_001, InputIncl: &in, OutputIncl: &out,
		}, {
			Arn: "arn:y", StateMachineArn: "arn:sm", Name: "m", AgentName: "agent", Status: domain.ExecRunning,
			RedriveCount: 1, Rank: 10, StartMs: 1, StopMs: 2, Error: "x", Cause: "y", LastMs: 3, InputIncl: &out, OutputIncl: &in,
		}},
	}
	for i := range full.At {
		full.At[i] = full.FirstAt + int64(i)*1000 - 500 // some before FirstAt
	}
	requireAllSet(t, reflect.ValueOf(full), "Session")
	for name, s := range map[string]domain.Session{
		"every field": full,
		"empty":       {},
		"partial":     {ID: "x", Seen: 1, At: [9]int64{5}, FirstAt: 5, LastAt: 5, LastStatus: domain.StatusSessionInitiated},
	} {
		t.Run(name, func(t *testing.T) {
			var got domain.Session
			require.NoError(t, decodeSession(encodeSession(nil, &s), &got))
			assert.Equal(t, s, got)
			assert.True(t, s.Equal(&got))
		})
	}
}

func TestItemCodec(t *testing.T) {
	in, out, d := true, false, 45.5
	full := executionindex.Item{
		ExecutionArn: "arn:x", AgentName: "a", Status: "SUCCEEDED", StartDate: "2024-11-04T10:30:00.000Z",
		StateMachineArn: "arn:sm", ExecutionName: "n", IndexedAt: "2024-11-04T10:31:00.000Z",
		StopDate: "2024-11-04T10:30:45.500Z", DurationSeconds: &d, SessionID: "s", Error: "e", Cause: "c",
		RedriveCount: 1, InputIncluded: &in, OutputIncluded: &out, LastEventAt: "2024-11-04T10:30:45.500Z", Rank: 11,
	}
	requireAllSet(t, reflect.ValueOf(full), "Item")
	for name, it := range map[string]executionindex.Item{"every field": full, "running": {ExecutionArn: "arn:y", Status: "RUNNING"}} {
		t.Run(name, func(t *testing.T) {
			b := encodeItem(nil, &it)
			// The columns carry the rest.
			got := executionindex.Item{ExecutionArn: it.ExecutionArn, AgentName: it.AgentName, Status: it.Status,
				StartDate: it.StartDate, SessionID: it.SessionID, Rank: it.Rank}
			require.NoError(t, decodeItem(b, &got))
			assert.Equal(t, it, got)
		})
	}
}

func TestEntryCodec(t *testing.T) {
	full := stuck.Entry{SessionID: "s", Agent: "a", ExecutionArn: "arn:x", LastStatus: domain.StatusBackgroundTaskStarted,
		LastEventMs: 10, Stage: domain.StageBackgroundTask, StageStartMs: 9, ExecStatus: domain.ExecSucceeded, ExecEndMs: 11,
		Outcome: domain.OutcomeMissingCompletion, Mismatch: true, Closed: true}
	requireAllSet(t, reflect.ValueOf(full), "Entry")
	for name, e := range map[string]stuck.Entry{"every field": full, "minimal": {SessionID: "s", Outcome: domain.OutcomeInProgress}} {
		t.Run(name, func(t *testing.T) {
			got := stuck.Entry{SessionID: e.SessionID}
			require.NoError(t, decodeEntry(encodeEntry(nil, &e), &got))
			assert.Equal(t, e, got)
		})
	}
}

func TestCodecsRejectGarbage(t *testing.T) {
	s := domain.Session{ID: "x", Execs: []domain.ExecState{{Arn: "a"}}}
	it := executionindex.Item{ExecutionArn: "a"}
	e := stuck.Entry{SessionID: "s"}
	for name, c := range map[string]struct {
		good   []byte
		decode func([]byte) error
	}{
		"session": {encodeSession(nil, &s), func(b []byte) error { return decodeSession(b, new(domain.Session)) }},
		"item":    {encodeItem(nil, &it), func(b []byte) error { return decodeItem(b, new(executionindex.Item)) }},
		"entry":   {encodeEntry(nil, &e), func(b []byte) error { return decodeEntry(b, new(stuck.Entry)) }},
	} {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, c.decode(c.good))
			for _, b := range [][]byte{nil, {}, {9}, c.good[:len(c.good)-1], append(c.good[:len(c.good):len(c.good)], 0)} {
				assert.ErrorIs(t, c.decode(b), errBadCodec, "%x", b)
			}
		})
	}
}
