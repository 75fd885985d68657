package domain

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Size caps. What agentwatch takes in is bounded per field, and what it derives from the
// journal and answers is bounded too; the journal itself keeps what agents wrote to it
// directly, whatever its size (it is the truth).
const (
	// MaxTextFieldBytes caps the free-text fields of an ingested object: ErrorMessage,
	// and a status change's cause (Step Functions allows 32,768 characters; this leaves
	// room for multi-byte ones).
	MaxTextFieldBytes = 64 << 10
	// MaxErrorCodeBytes caps a status change's error code (Step Functions: 256
	// characters).
	MaxErrorCodeBytes = 1 << 10
	// MaxArnBytes caps an ARN (AWS: 2,048 characters).
	MaxArnBytes = 2048
	// MaxNameBytes caps an execution name, an agent name, a Status, an event id and the
	// other short identifiers of an ingested object.
	MaxNameBytes = 1 << 10

	// MaxSessionErrorBytes caps each error message the session aggregate keeps (and so
	// every read model and diagnosis derived from it).
	MaxSessionErrorBytes = 4 << 10
	// MaxAnswerFieldBytes caps each field of a journal item in an API answer.
	MaxAnswerFieldBytes = 16 << 10
)

// TruncationMarker starts what Truncate appends to a cut value.
const TruncationMarker = " …[truncated, "

// Truncate returns s when it is at most max bytes long; otherwise s cut on a UTF-8
// character boundary with a marker that says how long s was, the whole at most max
// bytes, and true. It is deterministic, so that a cut value compares the same way
// wherever it is cut.
func Truncate(s string, max int) (string, bool) {
	if len(s) <= max {
		return s, false
	}
	marker := TruncationMarker + strconv.Itoa(len(s)) + " bytes in all]"
	cut := max - len(marker)
	if cut < 0 {
		cut = 0
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + marker, true
}

// IsTruncated reports whether s ends with the marker Truncate appends.
func IsTruncated(s string) bool {
	i := strings.LastIndex(s, TruncationMarker)
	return i >= 0 && strings.HasSuffix(s, " bytes in all]")
}

// fieldCap is the cap of one field of an ingested object.
type fieldCap struct {
	field string
	value string
	max   int
}

// checkCaps reports every value over its cap, naming the field (under prefix) and the
// cap.
func checkCaps(prefix string, caps []fieldCap) error {
	fe := newFieldErrors().nested(prefix)
	for _, c := range caps {
		if len(c.value) > c.max {
			fe.add(c.field, "is "+strconv.Itoa(len(c.value))+" bytes, over its cap of "+strconv.Itoa(c.max)+
				" bytes for ingested objects")
		}
	}
	return fe.err()
}

// CheckIngestCaps reports the fields of a journal item over their caps (MaxTextFieldBytes
// for ErrorMessage and Cause, MaxErrorCodeBytes for Error, MaxArnBytes for the ARNs,
// MaxNameBytes for the other identifiers; the keys have DynamoDB's limits, which the
// decoders check), each a *FieldError under prefix ("" for a bare item). Ingest applies
// it; items agents write to the journal directly are never refused for their size.
func (e *Event) CheckIngestCaps(prefix string) error {
	x := &e.Exec
	return checkCaps(prefix, []fieldCap{
		{"Status", string(e.Status), MaxNameBytes},
		{"ErrorMessage", e.ErrorMessage, MaxTextFieldBytes},
		{"ExecutionArn", x.ExecutionArn, MaxArnBytes},
		{"StateMachineArn", x.StateMachineArn, MaxArnBytes},
		{"ExecutionName", x.ExecutionName, MaxNameBytes},
		{"AgentName", x.AgentName, MaxNameBytes},
		{"Error", x.Error, MaxErrorCodeBytes},
		{"Cause", x.Cause, MaxTextFieldBytes},
		{"RedriveStatus", x.RedriveStatus, MaxNameBytes},
		{"SourceEventId", x.SourceEventID, MaxNameBytes},
	})
}

// CheckIngestCaps reports the fields of a status change over their caps, as
// Event.CheckIngestCaps does, named as in the envelope ("detail.cause") under prefix
// ("Message." for an SNS notification).
func (sc *StatusChange) CheckIngestCaps(prefix string) error {
	return checkCaps(prefix, []fieldCap{
		{"id", sc.ID, MaxNameBytes},
		{"detail.executionArn", sc.ExecutionArn, MaxArnBytes},
		{"detail.stateMachineArn", sc.StateMachineArn, MaxArnBytes},
		{"detail.name", sc.Name, MaxNameBytes},
		{"detail.status", string(sc.Status), MaxNameBytes},
		{"detail.error", sc.Error, MaxErrorCodeBytes},
		{"detail.cause", sc.Cause, MaxTextFieldBytes},
		{"detail.redriveStatus", sc.RedriveStatus, MaxNameBytes},
	})
}

// Bounded returns the item with every string attribute cut to max bytes (Truncate), and
// the names of the attributes that were cut.
func (it JournalItem) Bounded(max int) (JournalItem, []string) {
	var cut []string
	for _, a := range journalStringAttrs {
		p := a.ptr(&it)
		if v, ok := Truncate(*p, max); ok {
			*p = v
			cut = append(cut, a.name)
		}
	}
	return it, cut
}
