package domain_test

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/domain"
)

// split is what a test expects of one InputObject: its line, and either the start of its
// JSON or the start of its error.
type split struct {
	line int
	json string // prefix of Raw
	err  string // substring of Err
}

func checkSplit(t *testing.T, got []domain.InputObject, want []split) {
	t.Helper()
	require.Len(t, got, len(want), "objects: %+v", got)
	for i, w := range want {
		o := got[i]
		assert.Equal(t, i, o.Index, "object %d index", i)
		assert.Equal(t, w.line, o.Line, "object %d line", i)
		if w.err != "" {
			require.Error(t, o.Err, "object %d", i)
			assert.Nil(t, o.Raw)
			assert.ErrorIs(t, o.Err, domain.ErrInvalid)
			var ie *domain.InputError
			require.ErrorAs(t, o.Err, &ie)
			assert.Equal(t, i, ie.Index)
			assert.Equal(t, w.line, ie.Line)
			assert.Contains(t, o.Err.Error(), w.err)
			continue
		}
		require.NoError(t, o.Err, "object %d", i)
		assert.True(t, strings.HasPrefix(string(o.Raw), w.json), "object %d: %s", i, o.Raw)
		assert.True(t, json.Valid(o.Raw))
	}
}

func TestSplitInput(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []split
	}{
		{"one object", `{"a":1}`, []split{{line: 1, json: `{"a":1}`}}},
		{"one pretty object", "\n\n{\n  \"a\": 1,\n  \"b\": {\n    \"c\": 2\n  }\n}\n", []split{{line: 3, json: "{\n  \"a\": 1"}}},
		{"array", "[\n  {\"a\":1},\n  {\"b\":2}\n]", []split{{line: 2, json: `{"a":1}`}, {line: 3, json: `{"b":2}`}}},
		{"empty array", `[]`, nil},
		{"array of pretty objects", "[{\n\"a\":1\n},\n{\n\"b\":2}]", []split{{line: 1, json: `{`}, {line: 4, json: `{`}}},
		{"NDJSON, blank lines and CRLF", "{\"a\":1}\r\n\r\n{\"b\":2}\r\n   \n{\"c\":3}\n", []split{
			{line: 1, json: `{"a":1}`}, {line: 3, json: `{"b":2}`}, {line: 5, json: `{"c":3}`}}},
		{"NDJSON with a malformed line", "{\"a\":1}\n{\"b\":\n{\"c\":3}\n{\"d\":4}", []split{
			{line: 1, json: `{"a":1}`}, {line: 2, err: "object 1 (line 2): malformed JSON"}, {line: 3, json: `{"c":3}`}, {line: 4, json: `{"d":4}`}}},
		{"NDJSON with trailing garbage on a line", "{\"a\":1}\n{\"b\":2} x\n{\"c\":3}", []split{
			{line: 1, json: `{"a":1}`}, {line: 2, err: "object 1 (line 2): malformed JSON"}, {line: 3, json: `{"c":3}`}}},
		{"concatenated pretty objects", "{\n\"a\":1\n}\n{\n\"b\":2\n}\n", []split{{line: 1, json: "{\n\"a\""}, {line: 4, json: "{\n\"b\""}}},
		{"array with a non-object", `[{"a":1}, 5, "x", {"b":2}]`, []split{
			{line: 1, json: `{"a":1}`}, {line: 1, err: "must be a JSON object, found number"},
			{line: 1, err: "must be a JSON object, found string"}, {line: 1, json: `{"b":2}`}}},
		{"truncated array keeps what came before", "[\n{\"a\":1},\n{\"b\":", []split{
			{line: 2, json: `{"a":1}`}, {line: 3, err: "object 1 (line 3): malformed JSON"}}},
		{"array missing its bracket", "[{\"a\":1}", []split{{line: 1, json: `{"a":1}`}, {line: 1, err: "malformed JSON"}}},
		{"malformed pretty object", "{\n\"a\": tru\n}", []split{{line: 1, err: "malformed JSON at line 2"}}},
		{"a bare value", `42`, []split{{line: 1, err: "must be a JSON object, found number"}}},
		{"not JSON", `hello`, []split{{line: 1, err: "malformed JSON"}}},
		{"byte order mark", "\xef\xbb\xbf{\"a\":1}", []split{{line: 1, json: `{"a":1}`}}},
		{"scan output flattened", "{\"Items\": [\n  {\"PK\":{\"S\":\"SESSION#a\"}},\n  {\"PK\":{\"S\":\"SESSION#b\"}}\n], \"Count\": 2}\n{\"x\":1}", []split{
			{line: 2, json: `{"PK":{"S":"SESSION#a"}}`}, {line: 3, json: `{"PK":{"S":"SESSION#b"}}`}, {line: 5, json: `{"x":1}`}}},
		{"stream batch flattened", `{"Records":[{"dynamodb":{}},7]}`, []split{
			{line: 1, json: `{"dynamodb":{}}`}, {line: 1, err: "Records element must be a JSON object, found number"}}},
		{"Items that is not an array is an object", `{"Items":3}`, []split{{line: 1, json: `{"Items":3}`}}},
		{"journal item with an Items attribute is not flattened", `{"PK":"SESSION#a","Items":[1]}`, []split{{line: 1, json: `{"PK"`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := domain.SplitInput([]byte(tt.body))
			require.NoError(t, err)
			checkSplit(t, got, tt.want)
		})
	}
}

func TestSplitInput_Empty(t *testing.T) {
	for _, body := range []string{"", "  \n\t\n", "\xef\xbb\xbf"} {
		_, err := domain.SplitInput([]byte(body))
		require.Error(t, err)
		assert.ErrorIs(t, err, domain.ErrInvalid)
		assert.Contains(t, err.Error(), "empty body")
	}
}

func TestSplitInput_Testdata(t *testing.T) {
	// The whole of testdata as NDJSON (each file compacted to one line) and as an array.
	var lines []string
	for _, dir := range []string{"seed002", "eventbridge", "dynamodb"} {
		for _, name := range testdataFiles(t, dir+"/*.json") {
			var v any
			require.NoError(t, json.Unmarshal(readTestdata(t, dir+"/"+filepath.Base(name)), &v))
			b, err := json.Marshal(v)
			require.NoError(t, err)
			lines = append(lines, string(b))
		}
	}
	ndjson, err := domain.SplitInput([]byte(strings.Join(lines, "\n")))
	require.NoError(t, err)
	array, err := domain.SplitInput([]byte("[" + strings.Join(lines, ",\n") + "]"))
	require.NoError(t, err)
	require.Equal(t, len(ndjson), len(array))
	// query-output.json holds 6 items: 5 more objects than lines.
	assert.Len(t, ndjson, len(lines)+5)
	for i := range ndjson {
		require.NoError(t, ndjson[i].Err)
		assert.JSONEq(t, string(ndjson[i].Raw), string(array[i].Raw))
	}
}

func TestDecodeInput(t *testing.T) {
	tests := []struct {
		file string
		kind domain.InputKind
	}{
		{"eventbridge/aws-doc-running.json", domain.InputEventBridge},
		{"eventbridge/agent-failed.json", domain.InputEventBridge},
		{"eventbridge/sns-http-sqs.json", domain.InputSNS},
		{"eventbridge/sns-lambda.json", domain.InputSNS},
		{"eventbridge/sns-object-message.json", domain.InputSNS},
		{"seed002/01-session-initiated.json", domain.InputJournalItem},
		{"seed002/07-agent-background-task-failed-with-error.json", domain.InputJournalItem},
		{"dynamodb/item.json", domain.InputJournalItemDynamoJSON},
		{"dynamodb/get-item.json", domain.InputJournalItemDynamoJSON},
		{"dynamodb/execution-item.json", domain.InputJournalItemDynamoJSON},
		{"dynamodb/stream-record.json", domain.InputStreamRecord},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b := readTestdata(t, tt.file)
			in, err := domain.DecodeInput(b)
			require.NoError(t, err)
			assert.Equal(t, tt.kind, in.Kind)
			switch tt.kind {
			case domain.InputEventBridge, domain.InputSNS:
				require.NotNil(t, in.StatusChange)
				assert.Nil(t, in.Event)
				want, err := domain.DecodeStatusChange(b)
				require.NoError(t, err)
				assert.Equal(t, want, *in.StatusChange)
			default:
				require.NotNil(t, in.Event)
				assert.Nil(t, in.StatusChange)
			}
		})
	}

	t.Run("the same item in every form decodes the same", func(t *testing.T) {
		var events []domain.Event
		for _, file := range []string{"seed002/07-agent-background-task-failed-with-error.json",
			"dynamodb/item.json", "dynamodb/get-item.json", "dynamodb/stream-record.json"} {
			in, err := domain.DecodeInput(readTestdata(t, file))
			require.NoError(t, err)
			events = append(events, *in.Event)
		}
		for _, e := range events[1:] {
			assert.Equal(t, events[0], e)
		}
	})
	t.Run("plain item in a GetItem answer", func(t *testing.T) {
		in, err := domain.DecodeInput([]byte(`{"Item":` + string(readTestdata(t, "seed002/01-session-initiated.json")) + `}`))
		require.NoError(t, err)
		assert.Equal(t, domain.StatusSessionInitiated, in.Event.Status)
	})
}

func TestDecodeInput_Invalid(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		fields []string
		msgs   []string
	}{
		{"unrecognised", `{"hello":"world"}`, nil, []string{"unrecognised object", "expected an EventBridge"}},
		{"scan answer", `{"Items":[],"Count":0}`, nil, []string{"split it with SplitInput"}},
		{"not an object", `[1]`, nil, []string{"must be a JSON object, found array"}},
		{"envelope with a bad date", `{"detail-type":"Step Functions Execution Status Change","source":"aws.states",
			"detail":{"executionArn":"e","stateMachineArn":"s","name":"n","status":"RUNNING","startDate":"x"}}`,
			[]string{"detail.startDate"}, []string{"detail.startDate: must be epoch milliseconds"}},
		{"SNS with a bad envelope", `{"Type":"Notification","TopicArn":"t","Message":"{\"detail-type\":\"x\"}"}`,
			[]string{"Message.detail-type", "Message.source", "Message.detail"}, []string{"Message.detail-type: must be"}},
		{"plain item", `{"PK":"SESSION#s","SK":"EVENT#x","Status":5}`, []string{"Status", "Status", "Timestamp"},
			[]string{"Status: must be a string, found number"}},
		{"DynamoDB item", `{"PK":{"S":"SESSION#s"},"SK":{"S":"EVENT#x"},"Status":{"N":"5"}}`, []string{"Status", "Status", "Timestamp"},
			[]string{"Status: must be a DynamoDB string (S), found N"}},
		{"stream REMOVE record", string(readTestdata(t, "dynamodb/stream-record-remove.json")),
			[]string{"dynamodb.NewImage"}, []string{"dynamodb.NewImage: is missing (REMOVE records"}},
		{"stream record with a bad image", `{"dynamodb":{"NewImage":{"PK":{"S":"SESSION#s"},"SK":{"S":"EVENT#x"},"Status":{"S":"X"},"Timestamp":{"S":"no"}}}}`,
			[]string{"dynamodb.NewImage.Timestamp"}, []string{"dynamodb.NewImage.Timestamp: is not an ISO 8601 timestamp"}},
		{"stream record not an object", `{"dynamodb":[]}`, []string{"dynamodb"}, []string{"dynamodb: must be a JSON object, found array"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := domain.DecodeInput([]byte(tt.in))
			requireInvalid(t, err, tt.fields, tt.msgs...)
		})
	}
}

func TestInputObjectDecode(t *testing.T) {
	// A pretty-printed object of 6 lines and a newline, a blank line, then the others.
	body := string(readTestdata(t, "seed002/01-session-initiated.json")) + "\n" +
		`{"PK":"SESSION#s","SK":"EVENT#x","Status":"X","Timestamp":"never"}` + "\n{oops\n"
	objs, err := domain.SplitInput([]byte(body))
	require.NoError(t, err)
	require.Len(t, objs, 3)

	in, err := objs[0].Decode()
	require.NoError(t, err)
	assert.Equal(t, domain.StatusSessionInitiated, in.Event.Status)

	_, err = objs[1].Decode()
	var ie *domain.InputError
	require.ErrorAs(t, err, &ie)
	assert.Equal(t, 1, ie.Index)
	assert.Equal(t, 8, ie.Line)
	assert.ErrorIs(t, err, domain.ErrInvalid)
	assert.Equal(t, []string{"Timestamp"}, errorFields(err))
	assert.Contains(t, err.Error(), "object 1 (line 8): Timestamp: is not an ISO 8601 timestamp")

	_, err = objs[2].Decode()
	require.ErrorAs(t, err, &ie)
	assert.Equal(t, 2, ie.Index)
	assert.Equal(t, 9, ie.Line)
	assert.True(t, errors.Is(err, domain.ErrInvalid))
}

func BenchmarkDecodeInput(b *testing.B) {
	for _, file := range []string{"eventbridge/agent-succeeded.json", "eventbridge/sns-http-sqs.json",
		"seed002/07-agent-background-task-failed-with-error.json", "dynamodb/execution-item.json"} {
		b.Run(filepath.Base(file), func(b *testing.B) {
			data := readTestdata(b, file)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := domain.DecodeInput(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSplitInput(b *testing.B) {
	var lines []string
	for range 100 {
		lines = append(lines, `{"PK":"SESSION#abc-123-def","SK":"EVENT#2024-11-04T10:30:00.000Z","Status":"SESSION_INITIATED","Timestamp":"2024-11-04T10:30:00.000Z"}`)
	}
	body := []byte(strings.Join(lines, "\n"))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := domain.SplitInput(body); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSplitInputNDJSONBadLinesCostOnlyThemselves(t *testing.T) {
	item := `{"PK":"SESSION#a","SK":"EVENT#2024-11-04T10:30:00.000Z","Status":"SESSION_INITIATED","Timestamp":"2024-11-04T10:30:00.000Z"}`
	for name, body := range map[string]string{
		"bad first line":  "not json\n" + item + "\n" + item,
		"bad middle line": item + "\n[1,\n" + item,
		"bad last line":   item + "\n" + item + "\n{\"PK\":",
	} {
		t.Run(name, func(t *testing.T) {
			objs, err := domain.SplitInput([]byte(body))
			require.NoError(t, err)
			require.Len(t, objs, 3)
			bad := 0
			for _, o := range objs {
				if o.Err != nil {
					bad++
				}
			}
			require.Equal(t, 1, bad)
		})
	}
}
