package domain_test

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/domain"
)

// TestInvalidUTF8IdsAreRejected: invalid UTF-8 in an id was silently replaced with
// U+FFFD, so that different byte strings became one session. Every decoder now rejects
// it, naming the field.
func TestInvalidUTF8IdsAreRejected(t *testing.T) {
	const ts = `"2024-11-04T10:30:00.000Z"`
	plain := func(pk, sk, status string) []byte {
		return []byte(`{"PK":"` + pk + `","SK":"` + sk + `","Status":"` + status + `","Timestamp":` + ts + `}`)
	}
	dynamo := func(pk string) []byte {
		return []byte(`{"PK":{"S":"` + pk + `"},"SK":{"S":"EVENT#2024-11-04T10:30:00.000Z"},"Status":{"S":"SESSION_INITIATED"}}`)
	}
	envelope := func(name, input, arn, status string) []byte {
		return []byte(`{"version":"0","id":"e1","detail-type":"Step Functions Execution Status Change","source":"aws.states",` +
			`"time":"2024-11-04T10:30:00Z","detail":{"executionArn":"` + arn + `","stateMachineArn":"arn:aws:states:us-east-1:1:stateMachine:sm",` +
			`"name":"` + name + `","status":"` + status + `","startDate":1730716200000,"input":` + input + `}}`)
	}
	const arn = "arn:aws:states:us-east-1:1:execution:sm:n"
	tests := []struct {
		name  string
		body  []byte
		field string
	}{
		{"PK with a raw invalid byte", plain("SESSION#a\xff", "EVENT#x", "SESSION_INITIATED"), "PK"},
		{"PK with a lone low surrogate escape", plain(`SESSION#a\udc00`, "EVENT#x", "SESSION_INITIATED"), "PK"},
		{"PK with a lone high surrogate escape", plain(`SESSION#a\ud800b`, "EVENT#x", "SESSION_INITIATED"), "PK"},
		{"PK with a high surrogate at the end", plain(`SESSION#a\ud800`, "EVENT#x", "SESSION_INITIATED"), "PK"},
		{"SK", plain("SESSION#a", "EVENT#2024-11-04T10:30:00.000Z#\xc3", "SESSION_INITIATED"), "SK"},
		{"Status", plain("SESSION#a", "EVENT#2024-11-04T10:30:00.000Z", "SESSION_\xe2\x82"), "Status"},
		{"DynamoDB JSON PK", dynamo("SESSION#a\xfe"), "PK"},
		{"DynamoDB JSON PK escape", dynamo(`SESSION#a\udfff`), "PK"},
		{"stream record", []byte(`{"eventName":"INSERT","dynamodb":{"NewImage":` + string(dynamo("SESSION#\xc0\xaf")) + `}}`), "dynamodb.NewImage.PK"},
		{"execution name (the session id)", envelope("n\xff", "null", arn, "RUNNING"), "detail.name"},
		{"execution ARN", envelope("n", "null", arn+"\xff", "RUNNING"), "detail.executionArn"},
		{"status", envelope("n", "null", arn, "RUN\xffNING"), "detail.status"},
		{"session id in the input", envelope("n", `"{\"session_id\":\"s\\udc00\"}"`, arn, "RUNNING"), "detail.input.session_id"},
		{"input with a raw invalid byte", envelope("n", "\"{\\\"session_id\\\":\\\"s\xff\\\"}\"", arn, "RUNNING"), "detail.input"},
		{"agent name in the input", envelope("n", `"{\"agentName\":\"a\\ud800\"}"`, arn, "RUNNING"), "detail.input.agentName"},
		{"SNS-wrapped", []byte(`{"Type":"Notification","Message":` + string(envelope("n\xff", "null", arn, "RUNNING")) + `}`), "Message.detail.name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := domain.DecodeInput(tt.body)
			if err == nil && in.StatusChange != nil {
				_, err = domain.MapStatusChange(context.Background(), *in.StatusChange, nil, domain.MappingConfig{})
			}
			require.Error(t, err, "decoded %+v", in)
			assert.ErrorIs(t, err, domain.ErrInvalid)
			assert.Contains(t, errorFields(err), tt.field, "error: %v", err)
			assert.Contains(t, err.Error(), "not valid UTF-8")
			assert.True(t, utf8.ValidString(err.Error()), "the error itself is valid UTF-8")
		})
	}

	t.Run("two byte strings never become one session", func(t *testing.T) {
		for _, pk := range []string{"SESSION#x\xff", "SESSION#x\xfe", `SESSION#x\ud800`, "SESSION#x\uFFFD"} {
			e, err := domain.DecodeJournalItemJSON(plain(pk, "EVENT#2024-11-04T10:30:00.000Z", "SESSION_INITIATED"))
			if pk == "SESSION#x\uFFFD" {
				require.NoError(t, err, "a real U+FFFD is valid UTF-8")
				assert.Equal(t, "x\uFFFD", e.SessionID)
				continue
			}
			require.Error(t, err, pk)
		}
	})
	t.Run("valid escapes and surrogate pairs are fine", func(t *testing.T) {
		e, err := domain.DecodeJournalItemJSON(plain(`SESSION#\ud83d\ude00-\u00e9-\"q\"`, "EVENT#2024-11-04T10:30:00.000Z", "SESSION_INITIATED"))
		require.NoError(t, err)
		assert.Equal(t, `😀-é-"q"`, e.SessionID)
	})
	t.Run("text fields are repaired, not rejected", func(t *testing.T) {
		e, err := domain.DecodeJournalItemJSON([]byte("{\"PK\":\"SESSION#t\",\"SK\":\"EVENT#2024-11-04T10:30:00.000Z\",\"Status\":\"AGENT_BACKGROUND_TASK_FAILED\",\"ErrorMessage\":\"bad \xff byte\"}"))
		require.NoError(t, err)
		assert.Equal(t, "bad \uFFFD byte", e.ErrorMessage)
	})
	t.Run("items from a store", func(t *testing.T) {
		it := domain.JournalItem{PK: "SESSION#a\xff", SK: "EVENT#2024-11-04T10:30:00.000Z", Status: "SESSION_INITIATED", Timestamp: "2024-11-04T10:30:00.000Z"}
		_, err := it.Event()
		require.Error(t, err)
		assert.Contains(t, errorFields(err), "PK")
	})
}

// TestIngestCaps: a 9.9 MB ErrorMessage was accepted; every field of an ingested object
// has a cap, and the error names the field and the cap.
func TestIngestCaps(t *testing.T) {
	big := strings.Repeat("e", 9_900_000)
	e := domain.Event{SessionID: "s", SK: "EVENT#x", Status: domain.StatusBackgroundTaskFailed, ErrorMessage: big,
		Exec: domain.Execution{ExecutionArn: strings.Repeat("a", domain.MaxArnBytes+1), Cause: strings.Repeat("c", domain.MaxTextFieldBytes)}}
	err := e.CheckIngestCaps("dynamodb.NewImage.")
	require.Error(t, err)
	assert.ErrorIs(t, err, domain.ErrInvalid)
	assert.Equal(t, []string{"dynamodb.NewImage.ErrorMessage", "dynamodb.NewImage.ExecutionArn"}, errorFields(err))
	assert.Contains(t, err.Error(), "ErrorMessage: is 9900000 bytes, over its cap of 65536 bytes")

	sc := domain.StatusChange{ExecutionArn: "arn", Cause: big, Error: strings.Repeat("E", domain.MaxErrorCodeBytes+1)}
	err = sc.CheckIngestCaps("Message.")
	assert.Equal(t, []string{"Message.detail.error", "Message.detail.cause"}, errorFields(err))
	ok := domain.StatusChange{ExecutionArn: "arn", Cause: strings.Repeat("c", domain.MaxTextFieldBytes)}
	assert.NoError(t, ok.CheckIngestCaps(""))
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		cut  bool
	}{
		{"short", "hello", 10, false},
		{"exactly", strings.Repeat("a", 100), 100, false},
		{"ASCII", strings.Repeat("a", 1000), 100, true},
		{"multi-byte at the cut", strings.Repeat("é", 1000), 101, true},
		{"4-byte characters", strings.Repeat("😀", 1000), 99, true},
		{"smaller than the marker", strings.Repeat("a", 1000), 5, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, cut := domain.Truncate(tt.in, tt.max)
			assert.Equal(t, tt.cut, cut)
			assert.True(t, utf8.ValidString(got), "valid UTF-8")
			if !tt.cut {
				assert.Equal(t, tt.in, got)
				return
			}
			assert.Contains(t, got, domain.TruncationMarker)
			assert.Contains(t, got, "bytes in all]")
			if tt.max >= 64 {
				assert.LessOrEqual(t, len(got), tt.max)
			}
			again, _ := domain.Truncate(tt.in, tt.max)
			assert.Equal(t, got, again, "deterministic")
		})
	}
}

// TestSessionErrorsAreBounded: the session aggregate, and so every read model and
// diagnosis, keeps error messages cut to MaxSessionErrorBytes, in any order.
func TestSessionErrorsAreBounded(t *testing.T) {
	at := time.Date(2024, 11, 4, 10, 30, 0, 0, time.UTC)
	a := strings.Repeat("é", 5_000_000)
	b := strings.Repeat("e", 3_000_000) + "Z"
	evs := []domain.Event{
		{SessionID: "s", SK: "EVENT#1", Status: domain.StatusBackgroundTaskFailed, Timestamp: at, ErrorMessage: a},
		{SessionID: "s", SK: "EVENT#2", Status: domain.StatusBackgroundTaskFailed, Timestamp: at, ErrorMessage: b},
		{SessionID: "s", SK: "EVENT#3", Status: domain.StatusExecutionFailed, Timestamp: at,
			Exec: domain.Execution{ExecutionArn: "arn", Error: strings.Repeat("E", 100_000), Cause: a}},
	}
	var s1, s2 domain.Session
	for i := range evs {
		s1.Apply(&evs[i])
	}
	for i := len(evs) - 1; i >= 0; i-- {
		s2.Apply(&evs[i])
	}
	require.True(t, s1.Equal(&s2), "order does not matter")
	for _, msg := range append(s1.Errors[:], s1.Execs[0].Error, s1.Execs[0].Cause) {
		assert.LessOrEqual(t, len(msg), domain.MaxSessionErrorBytes)
		assert.True(t, utf8.ValidString(msg))
	}
	assert.Contains(t, s1.Errors[2], "bytes in all]")
	d := s1.Diagnose()
	assert.LessOrEqual(t, len(d.Summary), 2*domain.MaxSessionErrorBytes)
}
