package domain_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/agentwatch/agentwatch/domain"
)

// The fuzz targets check invariants, not outputs. Seed corpora live under
// testdata/fuzz/<FuzzName>/ (Go's corpus format); run one with, e.g.,
//
//	go test ./domain -run '^$' -fuzz FuzzDecodeStatusChange -fuzztime 20s

// checkInvalid fails unless err is an input error: ErrInvalid, with every FieldError in
// it naming a field.
func checkInvalid(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("error does not match ErrInvalid: %v", err)
	}
	for _, f := range errorFields(err) {
		if f == "" {
			t.Fatalf("field error without a field: %v", err)
		}
	}
	if err.Error() == "" {
		t.Fatal("empty error message")
	}
}

// checkEvent checks what every decoded journal event satisfies, and that it survives
// Item(), in plain JSON and in DynamoDB JSON.
func checkEvent(t *testing.T, e domain.Event) {
	t.Helper()
	if e.SessionID == "" {
		t.Fatal("empty session id")
	}
	if !strings.HasPrefix(e.SK, domain.EventKeyPrefix) || len(e.SK) == len(domain.EventKeyPrefix) {
		t.Fatalf("SK %q", e.SK)
	}
	if e.Status == "" {
		t.Fatal("empty status")
	}
	if e.Timestamp.IsZero() || !e.Timestamp.Equal(e.Timestamp.Truncate(time.Millisecond)) {
		t.Fatalf("timestamp %v", e.Timestamp)
	}
	if e.Status.IsExecution() && e.Exec.ExecutionArn == "" {
		t.Fatal("execution event without an execution ARN")
	}
	if e.Exec.RedriveCount < 0 {
		t.Fatal("negative redrive count")
	}
	for name, id := range map[string]string{"session id": e.SessionID, "SK": e.SK, "Status": string(e.Status),
		"ExecutionArn": e.Exec.ExecutionArn, "StateMachineArn": e.Exec.StateMachineArn, "ExecutionName": e.Exec.ExecutionName,
		"AgentName": e.Exec.AgentName, "SourceEventId": e.Exec.SourceEventID} {
		if !utf8.ValidString(id) {
			t.Fatalf("%s %q is not valid UTF-8", name, id)
		}
	}

	plain, err := json.Marshal(e.Item())
	if err != nil {
		t.Fatalf("marshal item: %v", err)
	}
	back, err := domain.DecodeJournalItemJSON(plain)
	if err != nil {
		t.Fatalf("item %s does not decode: %v", plain, err)
	}
	if !sameEvent(e, back) {
		t.Fatalf("plain round trip:\n was %+v\n got %+v", e, back)
	}
	typed := dynamoJSON(t, e.Item())
	back, err = domain.DecodeJournalItemDynamoJSON(typed)
	if err != nil {
		t.Fatalf("item %s does not decode: %v", typed, err)
	}
	if !sameEvent(e, back) {
		t.Fatalf("DynamoDB JSON round trip:\n was %+v\n got %+v", e, back)
	}
}

// checkStatusChange checks a decoded status change and its mapping.
func checkStatusChange(t *testing.T, sc domain.StatusChange) {
	t.Helper()
	if sc.ExecutionArn == "" || sc.StateMachineArn == "" || sc.Name == "" || sc.Status == "" {
		t.Fatalf("required field empty: %+v", sc)
	}
	if sc.DetailType != domain.StatusChangeDetailType || sc.Source != domain.StatusChangeSource {
		t.Fatalf("detail-type %q source %q", sc.DetailType, sc.Source)
	}
	for _, d := range []time.Time{sc.StartDate, sc.StopDate, sc.RedriveDate, sc.EnvelopeTime} {
		if !d.IsZero() && (d.Year() < 1 || d.Year() > 9999) {
			t.Fatalf("date out of range: %v", d)
		}
	}
	for _, p := range []json.RawMessage{sc.Input, sc.Output} {
		if p != nil && !json.Valid(p) {
			t.Fatalf("payload is not JSON: %q", p)
		}
	}
	if sc.RedriveCount < 0 {
		t.Fatal("negative redrive count")
	}
	for _, id := range []string{sc.ExecutionArn, sc.StateMachineArn, sc.Name, string(sc.Status), sc.ID} {
		if !utf8.ValidString(id) {
			t.Fatalf("id %q is not valid UTF-8", id)
		}
	}

	ctx := context.Background()
	e, err := domain.MapStatusChange(ctx, sc, nil, domain.MappingConfig{})
	dated := !sc.StartDate.IsZero() || !sc.StopDate.IsZero() || !sc.RedriveDate.IsZero() || !sc.EnvelopeTime.IsZero()
	if !dated {
		if err == nil {
			t.Fatal("mapped a status change without any date")
		}
		checkInvalid(t, err)
		return
	}
	if err != nil {
		t.Fatalf("map: %v", err)
	}
	if e.Status != sc.Status.JournalStatus() || e.Exec.AgentName == "" {
		t.Fatalf("mapped %+v", e)
	}
	again, err := domain.MapStatusChange(ctx, sc, nil, domain.MappingConfig{})
	if err != nil || again.Key() != e.Key() {
		t.Fatalf("mapping is not deterministic: %q vs %q (%v)", e.Key(), again.Key(), err)
	}
	sc.ID, sc.EnvelopeTime = sc.ID+"-redelivered", sc.EnvelopeTime.Add(time.Hour)
	if !sc.StartDate.IsZero() || !sc.StopDate.IsZero() {
		redelivered, err := domain.MapStatusChange(ctx, sc, nil, domain.MappingConfig{})
		if err != nil || redelivered.Key() != e.Key() {
			t.Fatalf("redelivery changed the key: %q vs %q (%v)", e.Key(), redelivered.Key(), err)
		}
	}
	checkEvent(t, e)
}

// refDecode decodes data with encoding/json, numbers kept as text so that a valid but
// huge number (1E1000) is not an error.
func refDecode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(v)
}

// checkAgainst fails unless the string attributes of item, as encoding/json decodes
// them, are what the event holds: a differential check of the decoders' own scanning.
func checkAgainst(t *testing.T, item map[string]any, e domain.Event, str func(v any) (string, bool)) {
	t.Helper()
	want := map[string]string{"PK": e.PK(), "SK": e.SK, "Status": string(e.Status),
		"ErrorMessage": e.ErrorMessage, "ExecutionArn": e.Exec.ExecutionArn, "Cause": e.Exec.Cause}
	for k, w := range want {
		v, present := item[k]
		got, ok := str(v)
		if !present {
			got, ok = "", true
		}
		if !ok || got != w {
			t.Fatalf("%s: encoding/json reads %#v, the decoder %q", k, v, w)
		}
	}
}

func FuzzDecodeJournalItemJSON(f *testing.F) {
	f.Add([]byte(`{"PK":"SESSION#s","SK":"EVENT#2024-11-04T10:30:00.000Z","Status":"SESSION_INITIATED"}`))
	f.Fuzz(fuzzDecodeJournalItemJSON)
}

func fuzzDecodeJournalItemJSON(t *testing.T, data []byte) {
	e, err := domain.DecodeJournalItemJSON(data)
	if err != nil {
		checkInvalid(t, err)
		if !json.Valid(data) && !strings.Contains(err.Error(), "malformed JSON") {
			t.Fatalf("the input is not JSON, the decoder says: %v", err)
		}
		return
	}
	checkEvent(t, e)
	var ref map[string]any
	if err := refDecode(data, &ref); err != nil {
		t.Fatalf("decoded what encoding/json rejects: %v", err)
	}
	checkAgainst(t, ref, e, func(v any) (string, bool) {
		if v == nil {
			return "", true
		}
		s, ok := v.(string)
		return s, ok
	})
}

func FuzzDecodeJournalItemDynamoJSON(f *testing.F) {
	f.Add([]byte(`{"PK":{"S":"SESSION#s"},"SK":{"S":"EVENT#2024-11-04T10:30:00.000Z"},"Status":{"S":"X"},"RedriveCount":{"N":"1"}}`))
	f.Fuzz(fuzzDecodeJournalItemDynamoJSON)
}

func fuzzDecodeJournalItemDynamoJSON(t *testing.T, data []byte) {
	e, err := domain.DecodeJournalItemDynamoJSON(data)
	if err != nil {
		checkInvalid(t, err)
		return
	}
	checkEvent(t, e)
	var ref map[string]any
	if err := refDecode(data, &ref); err != nil {
		t.Fatalf("decoded what encoding/json rejects: %v", err)
	}
	if item, ok := ref["Item"].(map[string]any); ok && ref["PK"] == nil {
		ref = item
	}
	checkAgainst(t, ref, e, func(v any) (string, bool) {
		av, ok := v.(map[string]any)
		if !ok || len(av) != 1 {
			return "", false
		}
		if _, null := av["NULL"]; null {
			return "", true
		}
		s, ok := av["S"].(string)
		return s, ok
	})
}

func FuzzDecodeStatusChange(f *testing.F) {
	f.Add([]byte(`{"detail-type":"Step Functions Execution Status Change","source":"aws.states","detail":{"executionArn":"e","stateMachineArn":"s","name":"n","status":"RUNNING","startDate":1}}`))
	f.Fuzz(fuzzDecodeStatusChange)
}

func fuzzDecodeStatusChange(t *testing.T, data []byte) {
	sc, err := domain.DecodeStatusChange(data)
	if err != nil {
		checkInvalid(t, err)
		return
	}
	checkStatusChange(t, sc)
	var ref map[string]any // a map: struct fields would match keys case-insensitively
	if err := refDecode(data, &ref); err != nil {
		t.Fatalf("decoded what encoding/json rejects: %v", err)
	}
	if d, ok := ref["detail"].(map[string]any); ok && ref["Message"] == nil {
		for k, got := range map[string]string{"executionArn": sc.ExecutionArn, "name": sc.Name, "status": string(sc.Status)} {
			if d[k] != got {
				t.Fatalf("detail.%s: encoding/json reads %#v, the decoder %q", k, d[k], got)
			}
		}
	}
}

func FuzzDecodeInput(f *testing.F) {
	f.Add([]byte(`{"dynamodb":{"NewImage":{"PK":{"S":"SESSION#s"}}}}`))
	f.Fuzz(fuzzDecodeInput)
}

func fuzzDecodeInput(t *testing.T, data []byte) {
	in, err := domain.DecodeInput(data)
	if err != nil {
		checkInvalid(t, err)
		return
	}
	switch in.Kind {
	case domain.InputEventBridge, domain.InputSNS:
		if in.StatusChange == nil || in.Event != nil {
			t.Fatalf("%s: %+v", in.Kind, in)
		}
		checkStatusChange(t, *in.StatusChange)
	case domain.InputJournalItem, domain.InputJournalItemDynamoJSON, domain.InputStreamRecord:
		if in.Event == nil || in.StatusChange != nil {
			t.Fatalf("%s: %+v", in.Kind, in)
		}
		checkEvent(t, *in.Event)
	default:
		t.Fatalf("unknown kind %q", in.Kind)
	}
}

func FuzzSplitInput(f *testing.F) {
	f.Add([]byte("{\"a\":1}\n{\"b\":\n[{\"c\":3}, 4]"))
	f.Fuzz(fuzzSplitInput)
}

func FuzzSplitNDJSON(f *testing.F) {
	f.Add([]byte("{\"a\":1}\nnope\n[{\"c\":3}, 4]\n\n{\"b\":"), 1)
	f.Add([]byte("\xef\xbb\xbf{}\r\n{}"), 5001)
	f.Fuzz(func(t *testing.T, data []byte, firstLine int) {
		if firstLine < 1 || firstLine > 1<<30 {
			return
		}
		objs, err := domain.SplitNDJSON(data, firstLine)
		checkSplitInvariants(t, data, firstLine, objs, err)
	})
}

func fuzzSplitInput(t *testing.T, data []byte) {
	objs, err := domain.SplitInput(data)
	checkSplitInvariants(t, data, 1, objs, err)
}

// checkSplitInvariants checks what a splitter made of data, whose first line is firstLine.
func checkSplitInvariants(t *testing.T, data []byte, firstLine int, objs []domain.InputObject, err error) {
	if err != nil {
		checkInvalid(t, err)
		if len(bytes.TrimSpace(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")))) != 0 {
			t.Fatalf("body with content rejected whole: %v", err)
		}
		return
	}
	maxLine := firstLine + bytes.Count(data, []byte{'\n'})
	prevLine := firstLine
	for i, o := range objs {
		if o.Index != i {
			t.Fatalf("object %d has index %d", i, o.Index)
		}
		if o.Line < prevLine || o.Line > maxLine {
			t.Fatalf("object %d: line %d after line %d (of %d)", i, o.Line, prevLine, maxLine)
		}
		prevLine = o.Line
		if (o.Err == nil) == (o.Raw == nil) {
			t.Fatalf("object %d: exactly one of Raw and Err must be set: %+v", i, o)
		}
		if o.Err != nil {
			checkInvalid(t, o.Err)
			var ie *domain.InputError
			if !errors.As(o.Err, &ie) || ie.Index != i || ie.Line != o.Line {
				t.Fatalf("object %d: error %v", i, o.Err)
			}
			continue
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(o.Raw, &m); err != nil || m == nil {
			t.Fatalf("object %d is not a JSON object: %q", i, o.Raw)
		}
		// Decoding never panics and fails only with input errors.
		if _, err := o.Decode(); err != nil {
			checkInvalid(t, err)
		}
	}
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2024-11-04T10:30:00.123Z", "2024-11-04T10:30:00+01:00", "2024-11-04 10:30:00", "2024-11-04",
		"2024-11-04T10:30Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999-23:59", ""} {
		f.Add(s)
	}
	f.Fuzz(fuzzParseTime)
}

func fuzzParseTime(t *testing.T, s string) {
	tm, err := domain.ParseTime(s)
	if err != nil {
		if !tm.IsZero() {
			t.Fatalf("an error with a time: %v", tm)
		}
		return
	}
	if tm.Location() != time.UTC {
		t.Fatalf("%q parsed in %v, not UTC", s, tm.Location())
	}
	if y := tm.Year(); y >= 1 && y <= 9999 {
		back, err := domain.ParseTime(tm.Format(time.RFC3339Nano))
		if err != nil || !back.Equal(tm) {
			t.Fatalf("%q -> %v does not parse back (%v, %v)", s, tm, back, err)
		}
	}
}

func FuzzJournalItemEvent(f *testing.F) {
	f.Add("SESSION#s", "EVENT#2024-11-04T10:30:00.000Z", "AGENT_BACKGROUND_TASK_FAILED", "2024-11-04T10:30:00.000Z", "boom", "", "", 0, true)
	f.Add("SESSION#s", "EVENT#2024-11-04T10:30:00.000Z#RUNNING#R0#abc", "EXECUTION_RUNNING", "", "", "arn:aws:states:us-east-1:1:execution:sm:n", "2024-11-04T10:29:59.000Z", 1, false)
	f.Add("SESSION#\xff", "EVENT#x", "S\xfe", "2024-11-04", "bad \xc3 text", "arn\xff", "nope", -1, false)
	f.Fuzz(fuzzJournalItemEvent)
}

// fuzzJournalItemEvent checks JournalItem.Event, the decoder of items that come from a
// store (DynamoDB's attribute values, SQLite's rows) rather than from JSON.
func fuzzJournalItemEvent(t *testing.T, pk, sk, status, ts, msg, arn, start string, redrive int, withCount bool) {
	it := domain.JournalItem{PK: pk, SK: sk, Status: status, Timestamp: ts, ErrorMessage: msg, ExecutionArn: arn,
		StartDate: start, Cause: msg, AgentName: status}
	if withCount {
		it.RedriveCount = &redrive
	}
	e, err := it.Event()
	if err != nil {
		checkInvalid(t, err)
		return
	}
	checkEvent(t, e)
}

func FuzzTruncate(f *testing.F) {
	f.Add("hello", 3)
	f.Add("ééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé", 40)
	f.Add("😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀", 60)
	f.Fuzz(fuzzTruncate)
}

func fuzzTruncate(t *testing.T, s string, limit int) {
	if limit < 0 || limit > 1<<20 {
		return
	}
	got, cut := domain.Truncate(s, limit)
	if !cut {
		if got != s || len(s) > limit {
			t.Fatalf("not cut: %q (limit %d)", got, limit)
		}
		return
	}
	head, _, ok := strings.Cut(got, domain.TruncationMarker)
	if !ok || !strings.HasPrefix(s, head) {
		t.Fatalf("%q is not a prefix of the input and a marker", got)
	}
	if utf8.ValidString(s) && !utf8.ValidString(got) {
		t.Fatalf("cut inside a character: %q", got)
	}
	if len(got) > limit && len(head) > 0 {
		t.Fatalf("%d bytes over the limit of %d", len(got), limit)
	}
}

func FuzzParseTimeBound(f *testing.F) {
	for _, s := range []string{"now", "today", "yesterday", "2024-11-04", "24h", "7d", "2w", "-1h", "1.5d", "2024-11-04T10:30:00Z"} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, upper bool) {
		now := time.Date(2024, 11, 4, 10, 30, 0, 0, time.UTC)
		got, err := domain.ParseTimeBound("from", s, now, upper)
		if err != nil {
			checkInvalid(t, err)
			if !got.IsZero() {
				t.Fatalf("an error with a time: %v", got)
			}
			return
		}
		if strings.TrimSpace(s) == "" && !got.IsZero() {
			t.Fatalf("%q is unbounded, got %v", s, got)
		}
	})
}
