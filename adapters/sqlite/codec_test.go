package sqlite

import (
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/rowcodec"
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

			var viaRecord domain.Event
			rec := encodeEventRecord(nil, &ev)
			require.NoError(t, decodeEventRecord(string(rec), &viaRecord, func(s string) domain.Status { return domain.Status(s) }))
			assert.Equal(t, viaJSON, viaRecord)
		})
	}
}

func TestEventRecordRejectsGarbage(t *testing.T) {
	status := func(s string) domain.Status { return domain.Status(s) }
	good := encodeEventRecord(nil, new(fullEvent(t, true, true)))
	plain := encodeEventRecord(nil, &domain.Event{SessionID: "s", SK: "EVENT#x", Status: domain.StatusSessionInitiated, Timestamp: time.UnixMilli(1)})
	for _, b := range [][]byte{{}, {2}, good[:len(good)-1], append(good[:len(good):len(good)], 0), plain[:len(plain)-1],
		append(plain[:len(plain)-1:len(plain)-1], 2)} {
		var ev domain.Event
		assert.ErrorIs(t, decodeEventRecord(string(b), &ev, status), rowcodec.ErrMalformed, "%x", b)
	}
}

func TestEventCodecRejectsGarbage(t *testing.T) {
	good := encodeEventExtra(nil, new(fullEvent(t, true, true)))
	for _, b := range [][]byte{nil, {}, {2, 0}, good[:len(good)-1], append(good[:len(good):len(good)], 0)} {
		var ev domain.Event
		assert.ErrorIs(t, decodeEventExtra(b, &ev), rowcodec.ErrMalformed)
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
	derived := full
	derived.Execs = []domain.ExecState{full.Execs[0], full.Execs[1], full.Execs[1]}
	derived.Execs[0].Arn = "arn:aws:states:us-east-1:123456789012:execution:code-reviewer:0001"
	derived.Execs[0].StateMachineArn = "arn:aws:states:us-east-1:123456789012:stateMachine:code-reviewer"
	derived.Execs[0].Name, derived.Execs[0].AgentName = "0001", "code-reviewer"
	derived.Execs[1].Arn = "arn:aws-cn:states:cn-north-1:123456789012:execution:sm:0002"
	derived.Execs[1].StateMachineArn = "arn:aws-cn:states:cn-north-1:123456789012:stateMachine:sm:7" // a version
	derived.Execs[1].Name, derived.Execs[1].AgentName = "0002", "tagged-agent"
	derived.Execs[2].Arn = "arn:aws:states:us-east-1:123456789012:express:sm:0003:id" // not a standard execution
	for name, s := range map[string]domain.Session{
		"every field":       full,
		"names in the ARNs": derived,
		"empty":             {},
		"partial":           {ID: "x", Seen: 1, At: [9]int64{5}, FirstAt: 5, LastAt: 5, LastStatus: domain.StatusSessionInitiated},
	} {
		t.Run(name, func(t *testing.T) {
			var got domain.Session
			require.NoError(t, decodeSession(encodeSession(nil, &s), &got))
			assert.Equal(t, s, got)
			assert.True(t, s.Equal(&got))
			got = domain.Session{}
			require.NoError(t, decodeSession(encodeSessionV1(&s), &got), "version 1 rows")
			assert.Equal(t, s, got)
		})
	}
}

func TestCodecsRejectGarbage(t *testing.T) {
	s := domain.Session{ID: "x", Execs: []domain.ExecState{{Arn: "a"}}}
	arn := "arn:aws:states:us-east-1:123456789012:execution:sm:n"
	sd := domain.Session{ID: "x", Execs: []domain.ExecState{{Arn: arn, StateMachineArn: "arn:aws:states:us-east-1:123456789012:stateMachine:sm", Name: "n"}}}
	for name, c := range map[string]struct {
		good   []byte
		decode func([]byte) error
	}{
		"session":                       {encodeSession(nil, &s), func(b []byte) error { return decodeSession(b, new(domain.Session)) }},
		"session with names in the ARN": {encodeSession(nil, &sd), func(b []byte) error { return decodeSession(b, new(domain.Session)) }},
	} {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, c.decode(c.good))
			for _, b := range [][]byte{nil, {}, {9}, c.good[:len(c.good)-1], append(c.good[:len(c.good):len(c.good)], 0)} {
				assert.ErrorIs(t, c.decode(b), rowcodec.ErrMalformed, "%x", b)
			}
		})
	}
}

// encodeSessionV1 writes what version 1 of the codec wrote.
func encodeSessionV1(s *domain.Session) []byte {
	w := rowcodec.Writer{}
	w.Byte(sessionCodecV1)
	w.Str(s.ID)
	w.Uvarint(uint64(s.Seen))
	w.Varint(s.FirstAt)
	base := s.FirstAt
	for _, at := range s.At {
		w.Ms(at, base)
	}
	for _, e := range s.Errors {
		w.Str(e)
	}
	w.Ms(s.LastAt, base)
	w.Str(string(s.LastStatus))
	w.Uvarint(uint64(len(s.Execs)))
	for i := range s.Execs {
		x := &s.Execs[i]
		w.Str(x.Arn)
		w.Str(x.StateMachineArn)
		w.Str(x.Name)
		w.Str(x.AgentName)
		w.Str(string(x.Status))
		w.Uvarint(uint64(x.RedriveCount))
		w.Varint(x.Rank)
		w.Ms(x.StartMs, base)
		w.Ms(x.StopMs, base)
		w.Str(x.Error)
		w.Str(x.Cause)
		w.Ms(x.LastMs, base)
		w.OptBool(x.InputIncl)
		w.OptBool(x.OutputIncl)
	}
	return w.B
}
