package domain_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/domain"
)

// --- helpers shared by the tests of the decoders ---

// readTestdata returns a file under testdata/.
func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", filepath.FromSlash(name)))
	require.NoError(t, err)
	return b
}

// testdataFiles lists the files matching pattern under testdata/, sorted.
func testdataFiles(t testing.TB, pattern string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join("testdata", filepath.FromSlash(pattern)))
	require.NoError(t, err)
	require.NotEmpty(t, names, "no testdata matches %s", pattern)
	sort.Strings(names)
	return names
}

// errorFields returns the Field of every FieldError in err's tree, in order.
func errorFields(err error) []string {
	var out []string
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		var fe *domain.FieldError
		if f, ok := err.(*domain.FieldError); ok {
			fe = f
			out = append(out, fe.Field)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

// requireInvalid checks that err is an ErrInvalid naming exactly fields (in any order)
// and whose message contains every one of msgs.
func requireInvalid(t *testing.T, err error, fields []string, msgs ...string) {
	t.Helper()
	require.Error(t, err)
	assert.ErrorIs(t, err, domain.ErrInvalid)
	if fields != nil {
		assert.ElementsMatch(t, fields, errorFields(err), "fields named by: %v", err)
		var fe *domain.FieldError
		assert.ErrorAs(t, err, &fe)
	}
	for _, m := range msgs {
		assert.Contains(t, err.Error(), m)
	}
}

// requireSameEvent compares events, times with time.Equal.
func requireSameEvent(t testing.TB, want, got domain.Event) {
	t.Helper()
	if !sameEvent(want, got) {
		t.Fatalf("events differ:\nwant %+v\n got %+v", want, got)
	}
}

func sameEvent(a, b domain.Event) bool {
	ai, bi := a.Item(), b.Item()
	ja, _ := json.Marshal(ai)
	jb, _ := json.Marshal(bi)
	return string(ja) == string(jb) &&
		a.Timestamp.Equal(b.Timestamp) &&
		a.Exec.StartDate.Equal(b.Exec.StartDate) &&
		a.Exec.StopDate.Equal(b.Exec.StopDate) &&
		a.Exec.RedriveDate.Equal(b.Exec.RedriveDate) &&
		a.Exec.RedriveCount == b.Exec.RedriveCount
}

// dynamoJSON renders an item in DynamoDB JSON, as the AWS CLI prints it.
func dynamoJSON(t testing.TB, it domain.JournalItem) []byte {
	t.Helper()
	plain, err := json.Marshal(it)
	require.NoError(t, err)
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(plain))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&m))
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch v := v.(type) {
		case string:
			out[k] = map[string]any{"S": v}
		case bool:
			out[k] = map[string]any{"BOOL": v}
		case json.Number:
			out[k] = map[string]any{"N": v.String()}
		default:
			t.Fatalf("attribute %s: unexpected %T", k, v)
		}
	}
	b, err := json.Marshal(out)
	require.NoError(t, err)
	return b
}

func epochMs(v int64) time.Time { return time.UnixMilli(v).UTC() }

func isoTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err)
	return v.UTC()
}

func ptrTo[T any](v T) *T { return &v }

// --- tests ---

func TestDecodeJournalItemJSON_Seed002(t *testing.T) {
	for _, name := range testdataFiles(t, "seed002/*.json") {
		t.Run(filepath.Base(name), func(t *testing.T) {
			b, err := os.ReadFile(name)
			require.NoError(t, err)
			var raw map[string]string
			require.NoError(t, json.Unmarshal(b, &raw))

			e, err := domain.DecodeJournalItemJSON(b)
			require.NoError(t, err)
			assert.Equal(t, strings.TrimPrefix(raw["PK"], "SESSION#"), e.SessionID)
			assert.Equal(t, raw["PK"], e.PK())
			assert.Equal(t, raw["SK"], e.SK)
			assert.Equal(t, domain.Status(raw["Status"]), e.Status)
			assert.Equal(t, isoTime(t, raw["Timestamp"]), e.Timestamp)
			assert.Equal(t, raw["ErrorMessage"], e.ErrorMessage)
			assert.Equal(t, domain.Execution{}, e.Exec)

			// The item written back is the seed's item.
			got, err := json.Marshal(e.Item())
			require.NoError(t, err)
			assert.JSONEq(t, string(b), string(got))
		})
	}
}

func TestDecodeJournalItemJSON_Seed002Statuses(t *testing.T) {
	// The seed's examples use each of its nine event types, and only those (the data
	// model's placeholder "event_type" aside, which is kept as an unknown status).
	seen := map[domain.Status]bool{}
	for _, name := range testdataFiles(t, "seed002/*.json") {
		e, err := domain.DecodeJournalItemJSON(readTestdata(t, "seed002/"+filepath.Base(name)))
		require.NoError(t, err)
		seen[e.Status] = true
		if e.Status.IsFailure() {
			assert.NotEmpty(t, e.ErrorMessage, name)
		}
	}
	for _, s := range domain.AgentStatuses {
		assert.True(t, seen[s], "seed example for %s", s)
	}
	assert.True(t, seen["event_type"])
	assert.False(t, domain.Status("event_type").Known())
}

func TestDecodeJournalItemJSON(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want domain.Event
	}{
		{
			name: "timestamp missing: taken from SK",
			in:   `{"PK":"SESSION#abc-123-def","SK":"EVENT#2024-11-04T10:30:01.234Z","Status":"AGENT_RUNTIME_INVOCATION_STARTED"}`,
			want: domain.Event{SessionID: "abc-123-def", SK: "EVENT#2024-11-04T10:30:01.234Z",
				Status: domain.StatusInvocationStarted, Timestamp: isoTime(t, "2024-11-04T10:30:01.234Z")},
		},
		{
			name: "timestamp missing: taken from an SK with a discriminator",
			in:   `{"PK":"SESSION#s","SK":"EVENT#2024-11-04T10:30:01.234Z#x1","Status":"SESSION_INITIATED"}`,
			want: domain.Event{SessionID: "s", SK: "EVENT#2024-11-04T10:30:01.234Z#x1",
				Status: domain.StatusSessionInitiated, Timestamp: isoTime(t, "2024-11-04T10:30:01.234Z")},
		},
		{
			name: "unknown status kept, extra keys ignored, null optional",
			in: `{"PK":"SESSION#s","SK":"EVENT#1","Status":"AGENT_TOOL_CALLED","Timestamp":"2024-11-04T10:30:00Z",
				"ErrorMessage":null,"TTL":1735689600,"Tool":{"name":"search"}}`,
			want: domain.Event{SessionID: "s", SK: "EVENT#1", Status: "AGENT_TOOL_CALLED",
				Timestamp: isoTime(t, "2024-11-04T10:30:00Z")},
		},
		{
			name: "python utcnow().isoformat(): no zone, microseconds, truncated to ms",
			in:   `{"PK":"SESSION#s","SK":"EVENT#x","Status":"SESSION_INITIATED","Timestamp":"2024-11-04T10:30:00.123456"}`,
			want: domain.Event{SessionID: "s", SK: "EVENT#x", Status: domain.StatusSessionInitiated,
				Timestamp: isoTime(t, "2024-11-04T10:30:00.123Z")},
		},
		{
			name: "offset converted to UTC",
			in:   `{"PK":"SESSION#s","SK":"EVENT#x","Status":"SESSION_INITIATED","Timestamp":"2024-11-04T12:30:00.5+02:00"}`,
			want: domain.Event{SessionID: "s", SK: "EVENT#x", Status: domain.StatusSessionInitiated,
				Timestamp: isoTime(t, "2024-11-04T10:30:00.500Z")},
		},
		{
			name: "session id with # and unicode",
			in:   `{"PK":"SESSION#a#b\u00e9","SK":"EVENT#x","Status":"SESSION_INITIATED","Timestamp":"2024-11-04T10:30:00Z"}`,
			want: domain.Event{SessionID: "a#bé", SK: "EVENT#x", Status: domain.StatusSessionInitiated,
				Timestamp: isoTime(t, "2024-11-04T10:30:00Z")},
		},
		{
			name: "execution item",
			in: `{"PK":"SESSION#abc-123-def","SK":"EVENT#2024-11-04T10:35:45.678Z#EXECUTION_FAILED#R0#0123456789ab",
				"Status":"EXECUTION_FAILED","Timestamp":"2024-11-04T10:35:45.678Z","ErrorMessage":"States.TaskFailed: boom",
				"ExecutionArn":"arn:aws:states:us-east-1:123456789012:execution:sm:run","StateMachineArn":"arn:aws:states:us-east-1:123456789012:stateMachine:sm",
				"ExecutionName":"run","AgentName":"research-agent","StartDate":"2024-11-04T10:30:00.000Z","StopDate":"2024-11-04T10:35:45.678Z",
				"Error":"States.TaskFailed","Cause":"boom","RedriveCount":0,"RedriveStatus":"REDRIVABLE","SourceEventId":"ev-1",
				"InputIncluded":true,"OutputIncluded":false}`,
			want: domain.Event{SessionID: "abc-123-def", SK: "EVENT#2024-11-04T10:35:45.678Z#EXECUTION_FAILED#R0#0123456789ab",
				Status: domain.StatusExecutionFailed, Timestamp: isoTime(t, "2024-11-04T10:35:45.678Z"), ErrorMessage: "States.TaskFailed: boom",
				Exec: domain.Execution{
					ExecutionArn:    "arn:aws:states:us-east-1:123456789012:execution:sm:run",
					StateMachineArn: "arn:aws:states:us-east-1:123456789012:stateMachine:sm",
					ExecutionName:   "run", AgentName: "research-agent",
					StartDate: isoTime(t, "2024-11-04T10:30:00Z"), StopDate: isoTime(t, "2024-11-04T10:35:45.678Z"),
					Error: "States.TaskFailed", Cause: "boom", RedriveStatus: "REDRIVABLE", SourceEventID: "ev-1",
					InputIncluded: ptrTo(true), OutputIncluded: ptrTo(false),
				}},
		},
		{
			name: "redrive count written as 2.0",
			in: `{"PK":"SESSION#s","SK":"EVENT#x","Status":"EXECUTION_RUNNING","Timestamp":"2024-11-04T10:30:00Z",
				"ExecutionArn":"arn:x","RedriveCount":2.0}`,
			want: domain.Event{SessionID: "s", SK: "EVENT#x", Status: domain.StatusExecutionRunning,
				Timestamp: isoTime(t, "2024-11-04T10:30:00Z"), Exec: domain.Execution{ExecutionArn: "arn:x", RedriveCount: 2}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := domain.DecodeJournalItemJSON([]byte(tt.in))
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestDecodeJournalItemJSON_Invalid(t *testing.T) {
	const ok = `"SK":"EVENT#x","Status":"SESSION_INITIATED","Timestamp":"2024-11-04T10:30:00Z"`
	tests := []struct {
		name   string
		in     string
		fields []string // nil: not a field error
		msgs   []string
	}{
		{"PK missing", `{` + ok + `}`, []string{"PK"}, []string{"PK: is missing"}},
		{"PK without prefix", `{"PK":"abc",` + ok + `}`, []string{"PK"}, []string{`PK: must start with "SESSION#"`}},
		{"PK with empty id", `{"PK":"SESSION#",` + ok + `}`, []string{"PK"}, []string{"PK: has an empty session id"}},
		{"PK null", `{"PK":null,` + ok + `}`, []string{"PK"}, []string{"PK: is missing"}},
		{"PK number", `{"PK":12,` + ok + `}`, []string{"PK", "PK"}, []string{"PK: must be a string, found number"}},
		{"PK over the key size limit", `{"PK":"SESSION#` + strings.Repeat("x", 2041) + `",` + ok + `}`, []string{"PK"}, []string{"PK: is longer than DynamoDB's 2048-byte partition key limit"}},
		{"SK over the key size limit", `{"PK":"SESSION#s","SK":"EVENT#` + strings.Repeat("x", 1019) + `","Status":"X","Timestamp":"2024-11-04T10:30:00Z"}`, []string{"SK"}, []string{"SK: is longer than DynamoDB's 1024-byte sort key limit"}},
		{"SK missing", `{"PK":"SESSION#s","Status":"X","Timestamp":"2024-11-04T10:30:00Z"}`, []string{"SK"}, []string{"SK: is missing"}},
		{"SK without prefix", `{"PK":"SESSION#s","SK":"2024","Status":"X","Timestamp":"2024-11-04T10:30:00Z"}`, []string{"SK"}, []string{`SK: must start with "EVENT#"`}},
		{"SK bare prefix", `{"PK":"SESSION#s","SK":"EVENT#","Status":"X","Timestamp":"2024-11-04T10:30:00Z"}`, []string{"SK"}, []string{"SK: must be EVENT#{timestamp}"}},
		{"Status missing", `{"PK":"SESSION#s","SK":"EVENT#x","Timestamp":"2024-11-04T10:30:00Z"}`, []string{"Status"}, []string{"Status: is missing"}},
		{"Status number", `{"PK":"SESSION#s","SK":"EVENT#x","Status":7,"Timestamp":"2024-11-04T10:30:00Z"}`, []string{"Status", "Status"}, []string{"Status: must be a string"}},
		{"Timestamp not ISO", `{"PK":"SESSION#s","SK":"EVENT#x","Status":"X","Timestamp":"yesterday"}`, []string{"Timestamp"},
			[]string{`Timestamp: is not an ISO 8601 timestamp: "yesterday"`}},
		{"Timestamp epoch number", `{"PK":"SESSION#s","SK":"EVENT#x","Status":"X","Timestamp":1730716200}`, []string{"Timestamp", "Timestamp"},
			[]string{"Timestamp: must be a string, found number"}},
		{"Timestamp missing and SK not a time", `{"PK":"SESSION#s","SK":"EVENT#abc","Status":"X"}`, []string{"Timestamp"},
			[]string{"Timestamp: is missing, and SK holds no timestamp"}},
		{"Timestamp out of range", `{"PK":"SESSION#s","SK":"EVENT#x","Status":"X","Timestamp":"0001-01-01T00:30:00+01:00"}`, []string{"Timestamp"},
			[]string{"Timestamp: is out of range"}},
		{"Timestamp truncates to the zero time", `{"PK":"SESSION#s","SK":"EVENT#x","Status":"X","Timestamp":"0001-01-01T00:00:00.0005Z"}`, []string{"Timestamp"},
			[]string{"Timestamp: is out of range"}},
		{"StartDate not ISO", `{"PK":"SESSION#s",` + ok + `,"StartDate":"soon"}`, []string{"StartDate"}, []string{"StartDate: is not an ISO 8601 timestamp"}},
		{"RedriveCount negative", `{"PK":"SESSION#s",` + ok + `,"RedriveCount":-1}`, []string{"RedriveCount"}, []string{"RedriveCount: must not be negative"}},
		{"RedriveCount fraction", `{"PK":"SESSION#s",` + ok + `,"RedriveCount":1.5}`, []string{"RedriveCount"}, []string{"RedriveCount: must be an integer"}},
		{"RedriveCount string", `{"PK":"SESSION#s",` + ok + `,"RedriveCount":"1"}`, []string{"RedriveCount"}, []string{"RedriveCount: must be a number, found string"}},
		{"InputIncluded string", `{"PK":"SESSION#s",` + ok + `,"InputIncluded":"yes"}`, []string{"InputIncluded"}, []string{"InputIncluded: must be a boolean, found string"}},
		{"execution event without ARN", `{"PK":"SESSION#s","SK":"EVENT#x","Status":"EXECUTION_SUCCEEDED","Timestamp":"2024-11-04T10:30:00Z"}`,
			[]string{"ExecutionArn"}, []string{"ExecutionArn: is missing"}},
		{"everything wrong at once", `{"PK":"S#","SK":"E#","Status":"","Timestamp":"x","ErrorMessage":5}`,
			[]string{"PK", "SK", "Status", "Timestamp", "ErrorMessage"},
			[]string{"PK: must start with", "SK: must start with", "Status: is missing", "Timestamp: is not an ISO 8601 timestamp", "ErrorMessage: must be a string, found number"}},
		{"array", `[{"PK":"SESSION#s"}]`, nil, []string{"must be a JSON object, found array"}},
		{"null", `null`, nil, []string{"must be a JSON object, found null"}},
		{"malformed", `{"PK":"SESSION#s",`, nil, []string{"malformed JSON"}},
		{"empty", ``, nil, []string{"malformed JSON"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := domain.DecodeJournalItemJSON([]byte(tt.in))
			requireInvalid(t, err, tt.fields, tt.msgs...)
		})
	}
}

func TestDecodeJournalItemDynamoJSON(t *testing.T) {
	failed, err := domain.DecodeJournalItemJSON(readTestdata(t, "seed002/07-agent-background-task-failed-with-error.json"))
	require.NoError(t, err)

	for _, name := range []string{"dynamodb/item.json", "dynamodb/get-item.json"} {
		t.Run(name, func(t *testing.T) {
			got, err := domain.DecodeJournalItemDynamoJSON(readTestdata(t, name))
			require.NoError(t, err)
			assert.Equal(t, failed, got)
		})
	}

	t.Run("execution item", func(t *testing.T) {
		got, err := domain.DecodeJournalItemDynamoJSON(readTestdata(t, "dynamodb/execution-item.json"))
		require.NoError(t, err)
		assert.Equal(t, domain.Event{
			SessionID: "abc-123-def",
			SK:        "EVENT#2024-11-04T10:30:00.000Z#EXECUTION_RUNNING#R1#0123456789ab",
			Status:    domain.StatusExecutionRunning,
			Timestamp: isoTime(t, "2024-11-04T10:30:00Z"),
			Exec: domain.Execution{
				ExecutionArn:    "arn:aws:states:us-east-1:123456789012:execution:research-agent:run-7f3c",
				StateMachineArn: "arn:aws:states:us-east-1:123456789012:stateMachine:research-agent",
				ExecutionName:   "run-7f3c",
				AgentName:       "research-agent",
				StartDate:       isoTime(t, "2024-11-04T10:30:00Z"),
				RedriveDate:     isoTime(t, "2024-11-04T11:33:20.123Z"),
				RedriveCount:    1,
				SourceEventID:   "a1b2c3d4-0000-4000-8000-000000000001",
				InputIncluded:   ptrTo(true),
			},
		}, got)
	})

	t.Run("seed query output", func(t *testing.T) {
		objs, err := domain.SplitInput(readTestdata(t, "dynamodb/query-output.json"))
		require.NoError(t, err)
		seeds := testdataFiles(t, "seed002/0[1-6]-*.json")
		require.Len(t, objs, len(seeds))
		for i, o := range objs {
			require.NoError(t, o.Err)
			got, err := domain.DecodeJournalItemDynamoJSON(o.Raw)
			require.NoError(t, err)
			want, err := domain.DecodeJournalItemJSON(readTestdata(t, "seed002/"+filepath.Base(seeds[i])))
			require.NoError(t, err)
			assert.Equal(t, want, got)
		}
	})
}

func TestDecodeJournalItemDynamoJSON_Invalid(t *testing.T) {
	const ok = `"SK":{"S":"EVENT#x"},"Status":{"S":"SESSION_INITIATED"},"Timestamp":{"S":"2024-11-04T10:30:00Z"}`
	tests := []struct {
		name   string
		in     string
		fields []string
		msgs   []string
	}{
		{"Status is a number", `{"PK":{"S":"SESSION#s"},"SK":{"S":"EVENT#x"},"Status":{"N":"1"},"Timestamp":{"S":"2024-11-04T10:30:00Z"}}`,
			[]string{"Status", "Status"}, []string{"Status: must be a DynamoDB string (S), found N"}},
		{"PK plain string", `{"PK":"SESSION#s",` + ok + `}`, []string{"PK", "PK"}, []string{`PK: must be a DynamoDB attribute value such as {"S": "..."}, found string`}},
		{"PK null", `{"PK":{"NULL":true},` + ok + `}`, []string{"PK"}, []string{"PK: is missing"}},
		{"two types", `{"PK":{"S":"SESSION#s","N":"1"},` + ok + `}`, []string{"PK", "PK"}, []string{"PK: must be a DynamoDB attribute value with exactly one type"}},
		{"unknown type", `{"PK":{"X":"SESSION#s"},` + ok + `}`, []string{"PK", "PK"}, []string{`PK: has an unknown DynamoDB type "X"`}},
		{"S holds a number", `{"PK":{"S":5},` + ok + `}`, []string{"PK", "PK"}, []string{`PK: must hold a JSON string in "S", found number`}},
		{"RedriveCount as S", `{"PK":{"S":"SESSION#s"},` + ok + `,"RedriveCount":{"S":"1"}}`, []string{"RedriveCount"}, []string{"RedriveCount: must be a DynamoDB number (N), found S"}},
		{"RedriveCount not a number", `{"PK":{"S":"SESSION#s"},` + ok + `,"RedriveCount":{"N":"0x1"}}`, []string{"RedriveCount"}, []string{"RedriveCount: must be a non-negative integer"}},
		{"RedriveCount N as JSON number", `{"PK":{"S":"SESSION#s"},` + ok + `,"RedriveCount":{"N":1}}`, []string{"RedriveCount"}, []string{`RedriveCount: must hold the number as a JSON string in "N"`}},
		{"InputIncluded as S", `{"PK":{"S":"SESSION#s"},` + ok + `,"InputIncluded":{"S":"true"}}`, []string{"InputIncluded"}, []string{"InputIncluded: must be a DynamoDB boolean (BOOL), found S"}},
		{"Timestamp bad", `{"PK":{"S":"SESSION#s"},"SK":{"S":"EVENT#x"},"Status":{"S":"X"},"Timestamp":{"S":"x"}}`, []string{"Timestamp"}, []string{"Timestamp: is not an ISO 8601 timestamp"}},
		{"GetItem with a bad item", `{"Item":{"PK":{"S":"SESSION#s"},"SK":{"S":"EVENT#x"},"Status":{"S":"X"}}}`, []string{"Item.Timestamp"}, []string{"Item.Timestamp: is missing, and SK holds no timestamp"}},
		{"GetItem with no item", `{"Item":null}`, []string{"Item"}, []string{"Item: must be a JSON object, found null"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := domain.DecodeJournalItemDynamoJSON([]byte(tt.in))
			requireInvalid(t, err, tt.fields, tt.msgs...)
		})
	}
}

func TestJournalItemEvent_CollectsAllErrors(t *testing.T) {
	it := domain.JournalItem{PK: "SESSION#", SK: "EVT#1", Timestamp: "never", StartDate: "x",
		StopDate: "y", RedriveCount: ptrTo(-2)}
	_, err := it.Event()
	requireInvalid(t, err, []string{"PK", "SK", "Status", "Timestamp", "StartDate", "StopDate", "RedriveCount"})
}

func TestEventItem(t *testing.T) {
	t.Run("agent event: no execution attributes", func(t *testing.T) {
		e := domain.Event{SessionID: "abc-123-def", SK: "EVENT#2024-11-04T10:30:00.000Z",
			Status: domain.StatusSessionInitiated, Timestamp: isoTime(t, "2024-11-04T10:30:00Z")}
		b, err := json.Marshal(e.Item())
		require.NoError(t, err)
		assert.JSONEq(t, `{"PK":"SESSION#abc-123-def","SK":"EVENT#2024-11-04T10:30:00.000Z",
			"Status":"SESSION_INITIATED","Timestamp":"2024-11-04T10:30:00.000Z"}`, string(b))
	})
	t.Run("execution event: attribute names, RedriveCount 0 written", func(t *testing.T) {
		e := domain.Event{SessionID: "s", SK: "EVENT#k", Status: domain.StatusExecutionSucceeded,
			Timestamp: epochMs(1730716545678),
			Exec: domain.Execution{ExecutionArn: "arn:e", StateMachineArn: "arn:sm", ExecutionName: "n",
				AgentName: "a", StartDate: epochMs(1730716200000), StopDate: epochMs(1730716545678),
				SourceEventID: "id-1", OutputIncluded: ptrTo(true)}}
		b, err := json.Marshal(e.Item())
		require.NoError(t, err)
		assert.JSONEq(t, `{"PK":"SESSION#s","SK":"EVENT#k","Status":"EXECUTION_SUCCEEDED",
			"Timestamp":"2024-11-04T10:35:45.678Z","ExecutionArn":"arn:e","StateMachineArn":"arn:sm",
			"ExecutionName":"n","AgentName":"a","StartDate":"2024-11-04T10:30:00.000Z",
			"StopDate":"2024-11-04T10:35:45.678Z","RedriveCount":0,"SourceEventId":"id-1",
			"OutputIncluded":true}`, string(b))

		it := e.Item()
		back, err := it.Event()
		require.NoError(t, err)
		requireSameEvent(t, e, back)
	})
	t.Run("item does not alias the event", func(t *testing.T) {
		e := domain.Event{Exec: domain.Execution{InputIncluded: ptrTo(true)}}
		it := e.Item()
		*it.InputIncluded = false
		assert.True(t, *e.Exec.InputIncluded)
	})
}

func TestIsDynamoJSON(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{`{"PK":{"S":"SESSION#s"}}`, true},
		{`{"SK":{"S":"EVENT#x"},"Status":"x"}`, true},
		{`{"PK":"SESSION#s","SK":{"S":"x"}}`, false},
		{`{"Status":{"S":"X"}}`, true},
		{`{"other":{"S":"X"}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var m map[string]json.RawMessage
			require.NoError(t, json.Unmarshal([]byte(tt.in), &m))
			assert.Equal(t, tt.want, domain.IsDynamoJSON(m))
		})
	}
}

func TestFieldErrorMatchesErrInvalid(t *testing.T) {
	_, err := domain.DecodeJournalItemJSON([]byte(`{}`))
	require.Error(t, err)
	assert.True(t, errors.Is(err, domain.ErrInvalid))
	assert.ElementsMatch(t, []string{"PK", "SK", "Status", "Timestamp"}, errorFields(err))
}
