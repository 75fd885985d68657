package simulate

import (
	"bufio"
	"fmt"
	"io"
	"time"
)

// Kind says what an Object is.
type Kind uint8

// Kinds of objects.
const (
	// KindStatusChange is an EventBridge "Step Functions Execution Status Change"
	// envelope, as AWS publishes it.
	KindStatusChange Kind = iota + 1
	// KindJournalItem is a journal item in the plain JSON form of seed 002.
	KindJournalItem
	// KindMalformed is an object broken on purpose (Config.MalformedRate): bad JSON, a
	// wrong type, a missing key. Ingest must reject it and go on.
	KindMalformed
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case KindStatusChange:
		return "status_change"
	case KindJournalItem:
		return "journal_item"
	case KindMalformed:
		return "malformed"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Object is one delivery: a JSON object as it reaches agentwatch, and when.
type Object struct {
	// Body is the object, a single line of JSON (no newline). Bodies from Generate share
	// backing arrays and must not be appended to in place (their capacity is their
	// length, so append copies).
	Body []byte
	// At is when the object is delivered, in simulated time: after the event it records
	// (DeliveryLatency), later still when held back (Delayed) or redelivered.
	At time.Time
	// SessionID is the session the object belongs to (malformed objects included).
	SessionID string
	// Kind says what the object is.
	Kind Kind
	// Redelivery marks the second delivery of an object (Config.DuplicateRate); its
	// Body is identical to the first's.
	Redelivery bool
	// Delayed marks an object held back by ReorderDelay (Config.ReorderRate).
	Delayed bool
}

// WriteNDJSON writes the objects' bodies, one per line, in order.
func WriteNDJSON(w io.Writer, objs []Object) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	for i := range objs {
		if _, err := bw.Write(objs[i].Body); err != nil {
			return fmt.Errorf("write object %d: %w", i, err)
		}
		if err := bw.WriteByte('\n'); err != nil {
			return fmt.Errorf("write object %d: %w", i, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write objects: %w", err)
	}
	return nil
}
