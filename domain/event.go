package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Key prefixes of journal items.
const (
	SessionKeyPrefix = "SESSION#"
	EventKeyPrefix   = "EVENT#"
)

// TimeLayout is how agentwatch writes every timestamp: ISO 8601, UTC, milliseconds.
// Fixed width, so that string order is time order (GSI sort keys rely on it).
const TimeLayout = "2006-01-02T15:04:05.000Z"

// FormatTime renders t in TimeLayout. The zero time renders as "".
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeLayout)
}

// Event is one immutable journal item: an agent event written by an agent (seed 002) or
// a Step Functions status change that agentwatch appended.
type Event struct {
	// SessionID is the session the event belongs to (the PK without "SESSION#").
	SessionID string
	// SK is the item's sort key, "EVENT#<timestamp>" or, for items agentwatch writes,
	// "EVENT#<timestamp>#<discriminator>".
	SK string
	// Status is the event type; unknown values are kept as they are.
	Status Status
	// Timestamp is when the event happened.
	Timestamp time.Time
	// ErrorMessage is set on failure events.
	ErrorMessage string
	// Exec is set on EXECUTION_* events only.
	Exec Execution
}

// PK is the item's partition key.
func (e *Event) PK() string { return SessionKeyPrefix + e.SessionID }

// Key identifies the event in the journal: PK and SK together.
func (e *Event) Key() string { return e.SessionID + "\x00" + e.SK }

// CheckJournal reports what keeps e from being stored as a journal item: an empty
// session id, an SK that is not EVENT#..., no status, no timestamp, an EXECUTION_* event
// without its ARN. Each is a *FieldError; they come joined. The decoders validate the
// rest.
func (e *Event) CheckJournal() error {
	var errs []error
	if e.SessionID == "" {
		errs = append(errs, &FieldError{Field: "PK", Reason: "has an empty session id"})
	}
	if !strings.HasPrefix(e.SK, EventKeyPrefix) || len(e.SK) == len(EventKeyPrefix) {
		errs = append(errs, &FieldError{Field: "SK", Reason: "must be EVENT#{timestamp}"})
	}
	if e.Status == "" {
		errs = append(errs, &FieldError{Field: "Status", Reason: "is missing"})
	}
	if e.Timestamp.IsZero() {
		errs = append(errs, &FieldError{Field: "Timestamp", Reason: "is missing"})
	}
	if e.Status.IsExecution() && e.Exec.ExecutionArn == "" {
		errs = append(errs, &FieldError{Field: "ExecutionArn", Reason: "is missing (required on EXECUTION_* events)"})
	}
	return errors.Join(errs...)
}

// Execution is what a Step Functions status change says about its execution.
type Execution struct {
	ExecutionArn    string
	StateMachineArn string
	ExecutionName   string
	// AgentName is resolved when the status change is journaled (tags, input, ARN).
	AgentName string
	StartDate time.Time
	StopDate  time.Time
	// RedriveDate is set once the execution has been redriven.
	RedriveDate  time.Time
	Error        string
	Cause        string
	RedriveCount int
	// RedriveStatus is Step Functions' word on whether the execution can be redriven.
	RedriveStatus string
	// SourceEventID is the EventBridge event id the status change arrived in.
	SourceEventID string
	// InputIncluded and OutputIncluded are false when Step Functions dropped a payload
	// over 248 KB from the event. Nil when the event did not say.
	InputIncluded  *bool
	OutputIncluded *bool
}

// ExecutionSortKey is the journal sort key of a status change. It never collides with
// another status change (the discriminator names the status, the redrive attempt and the
// execution) and is stable under redelivery: the same status change of the same
// execution always maps to the same key, whichever feed delivered it.
func ExecutionSortKey(at time.Time, status ExecStatus, redriveCount int, executionArn string) string {
	sum := sha256.Sum256([]byte(executionArn))
	var b strings.Builder
	b.Grow(len(EventKeyPrefix) + len(TimeLayout) + 48)
	b.WriteString(EventKeyPrefix)
	b.WriteString(FormatTime(at))
	b.WriteString("#")
	b.WriteString(string(status))
	b.WriteString("#R")
	b.WriteString(strconv.Itoa(redriveCount))
	b.WriteString("#")
	b.WriteString(hex.EncodeToString(sum[:6]))
	return b.String()
}

// ParseTime parses the timestamps agents write: RFC 3339 / ISO 8601 with or without
// fractional seconds, with "Z", a numeric offset, or no zone at all (taken as UTC, which
// is what Python's datetime.utcnow().isoformat() produces).
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, errEmpty
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, errNotISO
}

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04Z07:00",
	"2006-01-02",
}
