package domain

import (
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"
)

// JournalItem is a journal item as it is stored: the attributes of the DynamoDB table
// (seed 002 plus the execution attributes agentwatch writes), every date an ISO 8601
// string in TimeLayout. The json and dynamodbav tags are the attribute names, so the item
// marshals the same way with encoding/json and with the SDK's attributevalue package.
//
// A JournalItem is not validated; JournalItem.Event is.
type JournalItem struct {
	// PK is "SESSION#{session_id}".
	PK string `json:"PK" dynamodbav:"PK"`
	// SK is "EVENT#{timestamp}", plus "#{discriminator}" on items agentwatch writes.
	SK string `json:"SK" dynamodbav:"SK"`
	// Status is the event type (Status), unknown values included.
	Status string `json:"Status" dynamodbav:"Status"`
	// Timestamp is when the event happened, ISO 8601.
	Timestamp string `json:"Timestamp" dynamodbav:"Timestamp"`
	// ErrorMessage is set on failure events.
	ErrorMessage string `json:"ErrorMessage,omitempty" dynamodbav:"ErrorMessage,omitempty"`

	// The attributes below are set on EXECUTION_* items only; see Execution.

	ExecutionArn    string `json:"ExecutionArn,omitempty" dynamodbav:"ExecutionArn,omitempty"`
	StateMachineArn string `json:"StateMachineArn,omitempty" dynamodbav:"StateMachineArn,omitempty"`
	ExecutionName   string `json:"ExecutionName,omitempty" dynamodbav:"ExecutionName,omitempty"`
	AgentName       string `json:"AgentName,omitempty" dynamodbav:"AgentName,omitempty"`
	StartDate       string `json:"StartDate,omitempty" dynamodbav:"StartDate,omitempty"`
	StopDate        string `json:"StopDate,omitempty" dynamodbav:"StopDate,omitempty"`
	RedriveDate     string `json:"RedriveDate,omitempty" dynamodbav:"RedriveDate,omitempty"`
	Error           string `json:"Error,omitempty" dynamodbav:"Error,omitempty"`
	Cause           string `json:"Cause,omitempty" dynamodbav:"Cause,omitempty"`
	// RedriveCount is always written on execution items, 0 included.
	RedriveCount  *int   `json:"RedriveCount,omitempty" dynamodbav:"RedriveCount,omitempty"`
	RedriveStatus string `json:"RedriveStatus,omitempty" dynamodbav:"RedriveStatus,omitempty"`
	// SourceEventID is stored as "SourceEventId".
	SourceEventID  string `json:"SourceEventId,omitempty" dynamodbav:"SourceEventId,omitempty"`
	InputIncluded  *bool  `json:"InputIncluded,omitempty" dynamodbav:"InputIncluded,omitempty"`
	OutputIncluded *bool  `json:"OutputIncluded,omitempty" dynamodbav:"OutputIncluded,omitempty"`
}

// Item renders e as a journal item. Times are written in TimeLayout (milliseconds, UTC);
// the zero time is left out. RedriveCount is written on execution events only.
// For any e that JournalItem.Event returned, Item().Event() gives e back.
func (e *Event) Item() JournalItem {
	it := JournalItem{
		PK:              e.PK(),
		SK:              e.SK,
		Status:          string(e.Status),
		Timestamp:       FormatTime(e.Timestamp),
		ErrorMessage:    e.ErrorMessage,
		ExecutionArn:    e.Exec.ExecutionArn,
		StateMachineArn: e.Exec.StateMachineArn,
		ExecutionName:   e.Exec.ExecutionName,
		AgentName:       e.Exec.AgentName,
		StartDate:       FormatTime(e.Exec.StartDate),
		StopDate:        FormatTime(e.Exec.StopDate),
		RedriveDate:     FormatTime(e.Exec.RedriveDate),
		Error:           e.Exec.Error,
		Cause:           e.Exec.Cause,
		RedriveStatus:   e.Exec.RedriveStatus,
		SourceEventID:   e.Exec.SourceEventID,
		InputIncluded:   cloneBool(e.Exec.InputIncluded),
		OutputIncluded:  cloneBool(e.Exec.OutputIncluded),
	}
	if e.Status.IsExecution() || e.Exec.ExecutionArn != "" || e.Exec.RedriveCount != 0 {
		n := e.Exec.RedriveCount
		it.RedriveCount = &n
	}
	return it
}

// DynamoDB's key size limits, enforced in both modes so that an item valid in one is
// valid in the other.
const (
	maxPartitionKeyBytes = 2048
	maxSortKeyBytes      = 1024
)

// Event validates the item and returns the event it records. It checks that PK is
// "SESSION#" and a non-empty session id, that SK starts with "EVENT#", that both keys fit
// DynamoDB's key size limits, that Status is set (unknown values are kept), that
// Timestamp is an ISO 8601 timestamp (when it is missing, the timestamp that SK carries
// after "EVENT#" is used), that the execution dates that are present parse, that
// RedriveCount is not negative, and that EXECUTION_* events name their execution.
// Timestamps are truncated to the millisecond, the precision of the journal.
//
// Every problem is reported, as *FieldError joined with errors.Join; each matches
// ErrInvalid.
func (it *JournalItem) Event() (Event, error) {
	fe := newFieldErrors()
	e := it.event(fe)
	if err := fe.err(); err != nil {
		return Event{}, err
	}
	return e, nil
}

// event converts and validates the item, reporting problems to fe.
func (it *JournalItem) event(fe fieldErrors) Event {
	e := Event{
		SK:           it.SK,
		Status:       Status(it.Status),
		ErrorMessage: validText(it.ErrorMessage),
		Exec: Execution{
			ExecutionArn:    it.ExecutionArn,
			StateMachineArn: it.StateMachineArn,
			ExecutionName:   it.ExecutionName,
			AgentName:       it.AgentName,
			Error:           validText(it.Error),
			Cause:           validText(it.Cause),
			RedriveStatus:   validText(it.RedriveStatus),
			SourceEventID:   it.SourceEventID,
			InputIncluded:   cloneBool(it.InputIncluded),
			OutputIncluded:  cloneBool(it.OutputIncluded),
		},
	}

	switch id, ok := strings.CutPrefix(it.PK, SessionKeyPrefix); {
	case it.PK == "":
		fe.add("PK", "is missing")
	case !ok:
		fe.add("PK", "must start with "+quoteValue(SessionKeyPrefix)+", found "+quoteValue(it.PK))
	case id == "":
		fe.add("PK", "has an empty session id")
	case len(it.PK) > maxPartitionKeyBytes:
		fe.add("PK", "is longer than DynamoDB's 2048-byte partition key limit")
	default:
		e.SessionID = id
	}

	skTime, skOK := strings.CutPrefix(it.SK, EventKeyPrefix)
	switch {
	case it.SK == "":
		fe.add("SK", "is missing")
	case !skOK:
		fe.add("SK", "must start with "+quoteValue(EventKeyPrefix)+", found "+quoteValue(it.SK))
	case skTime == "":
		fe.add("SK", "must be EVENT#{timestamp}, found nothing after EVENT#")
	case len(it.SK) > maxSortKeyBytes:
		fe.add("SK", "is longer than DynamoDB's 1024-byte sort key limit")
	}

	if it.Status == "" {
		fe.add("Status", "is missing")
	}
	for _, a := range journalStringAttrs {
		// Items that come from a store rather than from JSON (the JSON decoders check
		// the bytes they read themselves).
		if journalIDAttrs[a.name] && !utf8.ValidString(*a.ptr(it)) {
			fe.add(a.name, reasonNotUTF8)
		}
	}

	switch {
	case it.Timestamp != "":
		e.Timestamp = journalTime(it.Timestamp, "Timestamp", fe)
	case skOK && skTime != "":
		// Timestamp missing: the seed's SK carries the same timestamp.
		if i := strings.IndexByte(skTime, '#'); i >= 0 {
			skTime = skTime[:i]
		}
		t, reason := parseJournalTime(skTime)
		if reason != "" {
			fe.add("Timestamp", "is missing, and SK holds no timestamp to use instead")
		}
		e.Timestamp = t
	default:
		fe.add("Timestamp", "is missing")
	}

	e.Exec.StartDate = journalTime(it.StartDate, "StartDate", fe)
	e.Exec.StopDate = journalTime(it.StopDate, "StopDate", fe)
	e.Exec.RedriveDate = journalTime(it.RedriveDate, "RedriveDate", fe)

	if it.RedriveCount != nil {
		if *it.RedriveCount < 0 {
			fe.add("RedriveCount", "must not be negative")
		} else {
			e.Exec.RedriveCount = *it.RedriveCount
		}
	}
	if e.Status.IsExecution() && it.ExecutionArn == "" {
		fe.add("ExecutionArn", "is missing (required on "+ExecutionPrefix+"* events)")
	}
	return e
}

// validText repairs a text attribute (not an id) that is not valid UTF-8 the way
// encoding/json does, each invalid byte becoming U+FFFD, so that an item read from a
// store says the same as the item decoded from its JSON.
func validText(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteString("\uFFFD")
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// journalTime parses an optional item date; "" gives the zero time.
func journalTime(s, field string, fe fieldErrors) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, reason := parseJournalTime(s)
	if reason != "" {
		fe.add(field, reason)
	}
	return t
}

// parseJournalTime parses an ISO 8601 timestamp with ParseTime and truncates it to the
// millisecond, so that it survives FormatTime unchanged. Years outside 0001-9999 (after
// conversion to UTC) have no TimeLayout rendering and are rejected.
func parseJournalTime(s string) (time.Time, string) {
	t, err := ParseTime(s)
	if err != nil {
		return time.Time{}, err.Error() + ": " + quoteValue(s)
	}
	t = t.Truncate(time.Millisecond)
	if y := t.Year(); y < 1 || y > 9999 || t.IsZero() {
		return time.Time{}, "is out of range: " + quoteValue(s)
	}
	return t, ""
}

// DecodeJournalItemJSON decodes and validates a journal item written as a plain JSON
// object (seed 002). Unknown keys are ignored; null counts as absent. A value of the
// wrong JSON type is reported with its field, e.g. "Status: must be a string, found
// number", next to the problems JournalItem.Event finds; all errors are joined.
func DecodeJournalItemJSON(b []byte) (Event, error) {
	m, err := decodeObject(b)
	if err != nil {
		return Event{}, err
	}
	fe := newFieldErrors()
	it := journalItemFromJSON(m, fe)
	e := it.event(fe)
	if err := fe.err(); err != nil {
		return Event{}, err
	}
	return e, nil
}

// DecodeJournalItemDynamoJSON decodes and validates a journal item in DynamoDB-typed
// JSON, as `aws dynamodb get-item/query/scan --output json` and DynamoDB Streams images
// print it: {"PK": {"S": "SESSION#x"}, "RedriveCount": {"N": "1"}, "InputIncluded":
// {"BOOL": true}, "ErrorMessage": {"NULL": true}}. A GetItem answer {"Item": {...}} is
// accepted too. {"NULL": true} counts as absent; a wrong type is reported with the field
// and the type found, e.g. "Status: must be a DynamoDB string (S), found N".
func DecodeJournalItemDynamoJSON(b []byte) (Event, error) {
	m, err := decodeObject(b)
	if err != nil {
		return Event{}, err
	}
	fe := newFieldErrors()
	var e Event
	if has(m, "Item") && !has(m, "PK") {
		e = eventFromGetItem(m, fe)
	} else {
		it := journalItemFromDynamoJSON(m, fe)
		e = it.event(fe)
	}
	if err := fe.err(); err != nil {
		return Event{}, err
	}
	return e, nil
}

// IsDynamoJSON reports whether obj, a decoded journal item, is in DynamoDB-typed JSON:
// the first of its PK, SK, Status and Timestamp attributes is an object (such as
// {"S": "..."}) rather than a plain value.
func IsDynamoJSON(obj map[string]json.RawMessage) bool {
	for _, k := range [...]string{"PK", "SK", "Status", "Timestamp"} {
		if raw, ok := obj[k]; ok {
			return jsonKind(raw) == "object"
		}
	}
	return false
}

// journalStringAttrs lists the string attributes of a journal item.
var journalStringAttrs = [...]struct {
	name string
	ptr  func(*JournalItem) *string
}{
	{"PK", func(it *JournalItem) *string { return &it.PK }},
	{"SK", func(it *JournalItem) *string { return &it.SK }},
	{"Status", func(it *JournalItem) *string { return &it.Status }},
	{"Timestamp", func(it *JournalItem) *string { return &it.Timestamp }},
	{"ErrorMessage", func(it *JournalItem) *string { return &it.ErrorMessage }},
	{"ExecutionArn", func(it *JournalItem) *string { return &it.ExecutionArn }},
	{"StateMachineArn", func(it *JournalItem) *string { return &it.StateMachineArn }},
	{"ExecutionName", func(it *JournalItem) *string { return &it.ExecutionName }},
	{"AgentName", func(it *JournalItem) *string { return &it.AgentName }},
	{"StartDate", func(it *JournalItem) *string { return &it.StartDate }},
	{"StopDate", func(it *JournalItem) *string { return &it.StopDate }},
	{"RedriveDate", func(it *JournalItem) *string { return &it.RedriveDate }},
	{"Error", func(it *JournalItem) *string { return &it.Error }},
	{"Cause", func(it *JournalItem) *string { return &it.Cause }},
	{"RedriveStatus", func(it *JournalItem) *string { return &it.RedriveStatus }},
	{"SourceEventId", func(it *JournalItem) *string { return &it.SourceEventID }},
}

// journalIDAttrs are the attributes that identify something (a session, an event, an
// execution, a state machine, an agent) or are a status: they must be valid UTF-8.
var journalIDAttrs = map[string]bool{
	"PK": true, "SK": true, "Status": true, "ExecutionArn": true, "StateMachineArn": true,
	"ExecutionName": true, "AgentName": true, "SourceEventId": true,
}

// journalBoolAttrs lists the boolean attributes of a journal item.
var journalBoolAttrs = [...]struct {
	name string
	ptr  func(*JournalItem) **bool
}{
	{"InputIncluded", func(it *JournalItem) **bool { return &it.InputIncluded }},
	{"OutputIncluded", func(it *JournalItem) **bool { return &it.OutputIncluded }},
}

// journalItemFromJSON reads the attributes of a plain JSON item, checking JSON types.
func journalItemFromJSON(m map[string]json.RawMessage, fe fieldErrors) JournalItem {
	var it JournalItem
	for _, a := range journalStringAttrs {
		if raw, ok := m[a.name]; ok {
			*a.ptr(&it) = stringValue(raw, a.name, fe)
			if journalIDAttrs[a.name] && !validUTF8String(raw) {
				fe.add(a.name, reasonNotUTF8)
			}
		}
	}
	if raw, ok := m["RedriveCount"]; ok {
		switch k := jsonKind(raw); k {
		case "null":
		case "number":
			n, reason := count(string(raw))
			if reason != "" {
				fe.add("RedriveCount", reason)
			} else {
				it.RedriveCount = &n
			}
		default:
			fe.add("RedriveCount", "must be a number, found "+k)
		}
	}
	for _, a := range journalBoolAttrs {
		if raw, ok := m[a.name]; ok {
			switch k := jsonKind(raw); k {
			case "null":
			case "boolean":
				b := raw[0] == 't'
				*a.ptr(&it) = &b
			default:
				fe.add(a.name, "must be a boolean, found "+k)
			}
		}
	}
	return it
}

// dynamoTypes are the type descriptors of DynamoDB JSON.
var dynamoTypes = map[string]string{
	"S": "string", "N": "number", "B": "binary", "BOOL": "boolean", "NULL": "null",
	"M": "map", "L": "list", "SS": "string set", "NS": "number set", "BS": "binary set",
}

// dynamoValue splits a DynamoDB JSON attribute value, from validated JSON, into its type
// descriptor and value. It reports a malformed attribute value and returns "".
func dynamoValue(raw json.RawMessage, field string, fe fieldErrors) (string, json.RawMessage) {
	if k := jsonKind(raw); k != "object" {
		fe.add(field, `must be a DynamoDB attribute value such as {"S": "..."}, found `+k)
		return "", nil
	}
	// {"TYPE": VALUE}, scanned in place: attribute values are small and many.
	i := skipSpace(raw, skipSpace(raw, 0, false)+1, false)
	if i >= len(raw) || raw[i] != '"' {
		fe.add(field, `must be a DynamoDB attribute value with exactly one type such as {"S": "..."}`)
		return "", nil
	}
	end := stringEnd(raw, i)
	typ, _ := jsonString(raw[i:end])
	i = skipSpace(raw, skipSpace(raw, end, false)+1, false) // past ':'
	vend := valueEnd(raw, i)
	if j := skipSpace(raw, vend, false); j >= len(raw) || raw[j] != '}' {
		fe.add(field, `must be a DynamoDB attribute value with exactly one type such as {"S": "..."}`)
		return "", nil
	}
	if _, ok := dynamoTypes[typ]; !ok {
		fe.add(field, "has an unknown DynamoDB type "+quoteValue(typ))
		return "", nil
	}
	return typ, raw[i:vend:vend]
}

// journalItemFromDynamoJSON reads the attributes of a DynamoDB JSON item, checking types.
func journalItemFromDynamoJSON(m map[string]json.RawMessage, fe fieldErrors) JournalItem {
	var it JournalItem
	for _, a := range journalStringAttrs {
		raw, ok := m[a.name]
		if !ok {
			continue
		}
		switch typ, v := dynamoValue(raw, a.name, fe); typ {
		case "", "NULL":
		case "S":
			s, ok := jsonString(v)
			if !ok {
				fe.add(a.name, `must hold a JSON string in "S", found `+jsonKind(v))
			} else if journalIDAttrs[a.name] && !validUTF8String(v) {
				fe.add(a.name, reasonNotUTF8)
			}
			*a.ptr(&it) = s
		default:
			fe.add(a.name, "must be a DynamoDB string (S), found "+typ)
		}
	}
	if raw, ok := m["RedriveCount"]; ok {
		switch typ, v := dynamoValue(raw, "RedriveCount", fe); typ {
		case "", "NULL":
		case "N":
			s, ok := jsonString(v)
			if !ok {
				fe.add("RedriveCount", `must hold the number as a JSON string in "N", found `+jsonKind(v))
				break
			}
			n, reason := count(s)
			if reason != "" {
				fe.add("RedriveCount", reason)
			} else {
				it.RedriveCount = &n
			}
		default:
			fe.add("RedriveCount", "must be a DynamoDB number (N), found "+typ)
		}
	}
	for _, a := range journalBoolAttrs {
		raw, ok := m[a.name]
		if !ok {
			continue
		}
		switch typ, v := dynamoValue(raw, a.name, fe); typ {
		case "", "NULL":
		case "BOOL":
			if k := jsonKind(v); k != "boolean" {
				fe.add(a.name, `must hold true or false in "BOOL", found `+k)
				break
			}
			b := v[0] == 't'
			*a.ptr(&it) = &b
		default:
			fe.add(a.name, "must be a DynamoDB boolean (BOOL), found "+typ)
		}
	}
	return it
}

// eventFromGetItem decodes the item of a GetItem answer {"Item": {...}}.
func eventFromGetItem(m map[string]json.RawMessage, fe fieldErrors) Event {
	item := subObject(m["Item"], "Item", fe)
	if item == nil {
		return Event{}
	}
	return dynamoOrPlainEvent(item, fe.nested("Item."))
}

// eventFromStreamRecord decodes the NewImage of a DynamoDB stream record.
func eventFromStreamRecord(m map[string]json.RawMessage, fe fieldErrors) Event {
	ddb := subObject(m["dynamodb"], "dynamodb", fe)
	if ddb == nil {
		return Event{}
	}
	raw, ok := ddb["NewImage"]
	if !ok || jsonKind(raw) == "null" {
		fe.add("dynamodb.NewImage", "is missing (REMOVE records, and streams without NEW_IMAGE, carry no item)")
		return Event{}
	}
	img := subObject(raw, "dynamodb.NewImage", fe)
	if img == nil {
		return Event{}
	}
	nfe := fe.nested("dynamodb.NewImage.")
	it := journalItemFromDynamoJSON(img, nfe)
	return it.event(nfe)
}

// dynamoOrPlainEvent decodes an item in whichever JSON form it is.
func dynamoOrPlainEvent(m map[string]json.RawMessage, fe fieldErrors) Event {
	var it JournalItem
	if IsDynamoJSON(m) {
		it = journalItemFromDynamoJSON(m, fe)
	} else {
		it = journalItemFromJSON(m, fe)
	}
	return it.event(fe)
}

func cloneBool(b *bool) *bool {
	if b == nil {
		return nil
	}
	v := *b
	return &v
}
