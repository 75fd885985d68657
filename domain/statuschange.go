package domain

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"time"
)

// EventBridge identity of the events Step Functions emits.
const (
	// StatusChangeDetailType is the detail-type of a Step Functions status change.
	StatusChangeDetailType = "Step Functions Execution Status Change"
	// StatusChangeSource is the source of events that Step Functions emits.
	StatusChangeSource = "aws.states"
)

// StatusChange is a "Step Functions Execution Status Change" event: the EventBridge
// envelope and its detail, which carries what DescribeExecution would say at the time.
// EventBridge delivers it at least once and in no guaranteed order.
type StatusChange struct {
	// Version is the envelope version, "0".
	Version string
	// ID is the EventBridge event id. A redelivery may carry a different one, so it
	// identifies a delivery, not a status change.
	ID string
	// DetailType is StatusChangeDetailType.
	DetailType string
	// Source is StatusChangeSource.
	Source string
	// Account is the AWS account id; some emulators leave it out.
	Account string
	// EnvelopeTime is the envelope's "time": when EventBridge received the event, to the
	// second. It orders nothing; MapStatusChange uses it only when the detail has no date
	// at all.
	EnvelopeTime time.Time
	// Region is the AWS region.
	Region string
	// Resources lists the ARNs the event concerns (the execution's).
	Resources []string

	// ExecutionArn identifies the execution; required.
	ExecutionArn string
	// StateMachineArn is the ARN of the execution's state machine; required.
	StateMachineArn string
	// Name is the execution's name; required.
	Name string
	// Status is the execution's status; required. Values agentwatch does not know are
	// kept as they are.
	Status ExecStatus
	// StartDate is when the execution started. Zero when the event had none.
	StartDate time.Time
	// StopDate is when the execution stopped; zero while it runs.
	StopDate time.Time
	// RedriveDate is when the execution was last redriven; zero if never.
	RedriveDate time.Time
	// Input is the execution input, the JSON text that detail.input holds as a string
	// (kept as written, pretty-printed or not). Nil when Step Functions left it out (see
	// InputIncluded) or it was null. Text that is not JSON is kept as a JSON string, and
	// an input that arrived as JSON rather than as a string is kept as it came.
	Input json.RawMessage
	// Output is the execution output, as Input. Set once the execution succeeded.
	Output json.RawMessage
	// InputIncluded is false when Step Functions dropped an input over the EventBridge
	// size limit from the event; nil when the event did not say.
	InputIncluded *bool
	// OutputIncluded is InputIncluded for the output.
	OutputIncluded *bool
	// Error is the error code of a failed, timed-out or aborted execution.
	Error string
	// Cause is the human-readable cause that goes with Error.
	Cause string
	// RedriveCount is how many times the execution has been redriven; 0 if never.
	RedriveCount int
	// RedriveStatus says whether the execution can be redriven (REDRIVABLE,
	// NOT_REDRIVABLE, REDRIVABLE_BY_MAP_RUN).
	RedriveStatus string
	// RedriveStatusReason says why the execution cannot be redriven.
	RedriveStatusReason string
	// StateMachineVersionArn is the version the execution ran, if it was started
	// through a version or an alias.
	StateMachineVersionArn string
	// StateMachineAliasArn is the alias the execution was started through, if any.
	StateMachineAliasArn string
}

// DecodeStatusChange decodes and validates a "Step Functions Execution Status Change"
// event: the raw EventBridge envelope, or the envelope wrapped in an SNS notification
// (the envelope is the notification's Message, a JSON string or, from some wrappers, an
// object; errors in it are prefixed "Message."). The SNS signature is not checked.
//
// detail-type must be StatusChangeDetailType and source StatusChangeSource; other events
// are rejected. detail.executionArn, stateMachineArn, name and status are required.
// startDate, stopDate and redriveDate are epoch milliseconds (JSON numbers, floats
// accepted); null, missing or 0 mean no date. input and output are JSON strings holding
// JSON, or null. Unknown keys are ignored everywhere. Every problem is reported, as
// *FieldError joined with errors.Join; each matches ErrInvalid.
func DecodeStatusChange(b []byte) (StatusChange, error) {
	m, err := decodeObject(b)
	if err != nil {
		return StatusChange{}, err
	}
	fe := newFieldErrors()
	var sc StatusChange
	if isSNSNotification(m) {
		sc = statusChangeFromSNS(m, fe)
	} else {
		sc = statusChangeFromEnvelope(m, fe)
	}
	if err := fe.err(); err != nil {
		return StatusChange{}, err
	}
	return sc, nil
}

// InputValue returns the first of keys that is a top-level field of the execution input
// holding a non-empty string (or a number, returned as written), or "" if none is, or if
// the input is not a JSON object.
func (sc *StatusChange) InputValue(keys ...string) string {
	return lookupInput(inputFields(sc.Input), keys)
}

// inputFields decodes the top level of an execution input; nil unless it is an object.
func inputFields(input json.RawMessage) map[string]json.RawMessage {
	if jsonKind(input) != "object" || !json.Valid(input) {
		return nil
	}
	return objectFields(input)
}

// lookupInput returns the value of the first of keys that holds a non-empty string or a
// number in the decoded input fields.
func lookupInput(fields map[string]json.RawMessage, keys []string) string {
	for _, k := range keys {
		raw, ok := fields[k]
		if !ok {
			continue
		}
		if s, ok := jsonString(raw); ok && s != "" {
			return s
		}
		if jsonKind(raw) == "number" {
			return string(raw)
		}
	}
	return ""
}

// isSNSNotification reports whether m is an SNS notification rather than an envelope.
func isSNSNotification(m map[string]json.RawMessage) bool {
	return has(m, "Message") && (has(m, "Type") || has(m, "TopicArn")) && !has(m, "detail")
}

// statusChangeFromSNS decodes the envelope that an SNS notification carries. Both the
// SigningCertURL/UnsubscribeURL casing (HTTP and SQS deliveries) and the
// SigningCertUrl/UnsubscribeUrl casing (Lambda events) are fine: neither is read.
func statusChangeFromSNS(m map[string]json.RawMessage, fe fieldErrors) StatusChange {
	if raw, ok := m["Type"]; ok {
		typ := stringValue(raw, "Type", fe)
		if typ != "" && typ != "Notification" {
			fe.add("Type", `must be "Notification", found `+quoteValue(typ)+
				" (subscription confirmations are not events)")
			return StatusChange{}
		}
	}
	env := subObject(m["Message"], "Message", fe)
	if env == nil {
		return StatusChange{}
	}
	return statusChangeFromEnvelope(env, fe.nested("Message."))
}

// statusChangeFromEnvelope decodes an EventBridge envelope.
func statusChangeFromEnvelope(m map[string]json.RawMessage, fe fieldErrors) StatusChange {
	var sc StatusChange
	sc.Version = optString(m, "version", fe)
	sc.ID = optString(m, "id", fe)
	checkIDs(m, fe, "id")
	sc.Account = optString(m, "account", fe)
	sc.Region = optString(m, "region", fe)

	sc.DetailType = reqString(m, "detail-type", fe)
	if sc.DetailType != "" && sc.DetailType != StatusChangeDetailType {
		fe.add("detail-type", "must be "+quoteValue(StatusChangeDetailType)+", found "+quoteValue(sc.DetailType))
	}
	// Only Step Functions can emit aws.states events on a bus (PutEvents rejects "aws."
	// sources), so the check keeps look-alike custom events out of the journal.
	sc.Source = reqString(m, "source", fe)
	if sc.Source != "" && sc.Source != StatusChangeSource {
		fe.add("source", "must be "+quoteValue(StatusChangeSource)+" (Step Functions), found "+quoteValue(sc.Source))
	}
	if s := optString(m, "time", fe); s != "" {
		t, reason := parseJournalTime(s)
		if reason != "" {
			fe.add("time", reason)
		}
		sc.EnvelopeTime = t
	}
	if raw, ok := m["resources"]; ok {
		sc.Resources = stringList(raw, "resources", fe)
	}

	raw, ok := m["detail"]
	if !ok || jsonKind(raw) == "null" {
		fe.add("detail", "is missing")
		return sc
	}
	d := subObject(raw, "detail", fe)
	if d == nil {
		return sc
	}
	dfe := fe.nested("detail.")
	sc.ExecutionArn = reqString(d, "executionArn", dfe)
	sc.StateMachineArn = reqString(d, "stateMachineArn", dfe)
	sc.Name = reqString(d, "name", dfe)
	sc.Status = ExecStatus(reqString(d, "status", dfe))
	checkIDs(d, dfe, "executionArn", "stateMachineArn", "name", "status", "input")
	sc.StartDate = epochMillis(d, "startDate", dfe)
	sc.StopDate = epochMillis(d, "stopDate", dfe)
	sc.RedriveDate = epochMillis(d, "redriveDate", dfe)
	sc.Input = payload(d, "input", dfe)
	sc.Output = payload(d, "output", dfe)
	sc.InputIncluded = included(d, "inputDetails", dfe)
	sc.OutputIncluded = included(d, "outputDetails", dfe)
	sc.Error = optString(d, "error", dfe)
	sc.Cause = optString(d, "cause", dfe)
	if raw, ok := d["redriveCount"]; ok {
		switch k := jsonKind(raw); k {
		case "null":
		case "number":
			n, reason := count(string(raw))
			if reason != "" {
				dfe.add("redriveCount", reason)
			}
			sc.RedriveCount = n
		default:
			dfe.add("redriveCount", "must be a number, found "+k)
		}
	}
	sc.RedriveStatus = optString(d, "redriveStatus", dfe)
	sc.RedriveStatusReason = optString(d, "redriveStatusReason", dfe)
	sc.StateMachineVersionArn = optString(d, "stateMachineVersionArn", dfe)
	sc.StateMachineAliasArn = optString(d, "stateMachineAliasArn", dfe)
	return sc
}

// stringList reads an array of strings.
func stringList(raw json.RawMessage, field string, fe fieldErrors) []string {
	switch k := jsonKind(raw); k {
	case "null":
		return nil
	case "array":
	default:
		fe.add(field, "must be an array of strings, found "+k)
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		fe.add(field, "holds malformed JSON: "+err.Error())
		return nil
	}
	out := make([]string, 0, len(items))
	for i, it := range items {
		s, ok := jsonString(it)
		if !ok {
			fe.add(field+"["+strconv.Itoa(i)+"]", "must be a string, found "+jsonKind(it))
			continue
		}
		out = append(out, s)
	}
	return out
}

// maxEpochMillis is 9999-12-31T23:59:59.999Z, the last instant TimeLayout can render.
const maxEpochMillis = 253402300799999

// epochMillis reads an optional date written as epoch milliseconds. null, missing and 0
// give the zero time; fractions of a millisecond are dropped.
func epochMillis(m map[string]json.RawMessage, field string, fe fieldErrors) time.Time {
	raw, ok := m[field]
	if !ok {
		return time.Time{}
	}
	switch k := jsonKind(raw); k {
	case "null":
		return time.Time{}
	case "number":
	default:
		fe.add(field, "must be epoch milliseconds (a JSON number), found "+k)
		return time.Time{}
	}
	text := string(raw)
	ms, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(text, 64)
		if ferr != nil && !errors.Is(ferr, strconv.ErrRange) {
			fe.add(field, "must be epoch milliseconds, found "+quoteValue(text))
			return time.Time{}
		}
		switch {
		case f < 0:
			ms = -1
		case f > maxEpochMillis || math.IsInf(f, 0):
			ms = maxEpochMillis + 1
		default:
			ms = int64(f)
		}
	}
	switch {
	case ms < 0:
		fe.add(field, "must be epoch milliseconds, found a negative number "+quoteValue(text))
		return time.Time{}
	case ms > maxEpochMillis:
		fe.add(field, "must be epoch milliseconds, found "+quoteValue(text)+", after year 9999")
		return time.Time{}
	case ms == 0:
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// PayloadText is an execution input or output given as text, as a status change keeps
// it: the JSON text as written, nil when empty, and text that is not JSON (Step
// Functions always sends JSON; an emulator might not) as a JSON string.
func PayloadText(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	if json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	b, _ := json.Marshal(s)
	return b
}

// payload reads an execution input or output: a JSON string holding JSON text, or null.
func payload(m map[string]json.RawMessage, field string, fe fieldErrors) json.RawMessage {
	raw, ok := m[field]
	if !ok {
		return nil
	}
	switch jsonKind(raw) {
	case "null":
		return nil
	case "string":
		s, _ := jsonString(raw)
		return PayloadText(s)
	}
	// Tolerated: the payload as JSON rather than as a string holding JSON.
	return append(json.RawMessage(nil), raw...)
}

// included reads inputDetails/outputDetails, {"included": bool} or null.
func included(m map[string]json.RawMessage, field string, fe fieldErrors) *bool {
	raw, ok := m[field]
	if !ok || jsonKind(raw) == "null" {
		return nil
	}
	d := subObject(raw, field, fe)
	if d == nil {
		return nil
	}
	v, ok := d["included"]
	if !ok {
		return nil
	}
	switch k := jsonKind(v); k {
	case "null":
		return nil
	case "boolean":
		b := v[0] == 't'
		return &b
	default:
		fe.add(field+".included", "must be a boolean, found "+k)
		return nil
	}
}
