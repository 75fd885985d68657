package sqlite

import (
	"time"

	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/rowcodec"
)

// Sessions and journal events are kept in a compact binary form rather than JSON
// (projections/rowcodec): a rebuild writes hundreds of thousands of sessions at once and
// scans millions of events, where JSON doubles the bytes and costs more CPU than SQLite
// itself. Each form starts with a version byte. The read models' documents are encoded by
// their tables' codecs.
//
// codec_test.go fills every field by reflection, so that a field added to a domain type
// and forgotten here fails a test.

// Codec versions of sessions. Version 2 leaves out what an execution's ARN already says
// (its state machine's ARN, its name and, usually, the agent's name): a third fewer
// bytes for a rebuild to write. Version 1 rows (written before) still decode.
const (
	sessionCodecV1 = 1
	sessionCodecV2 = 2
)

// encodeSession appends s in binary. Times are relative to s.FirstAt.
func encodeSession(b []byte, s *domain.Session) []byte {
	w := rowcodec.Writer{B: b}
	w.Byte(sessionCodecV2)
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
		f := rowcodec.DerivedFlags(x.Arn, x.StateMachineArn, x.Name, x.AgentName)
		w.Byte(f)
		w.StrUnless(f, rowcodec.DerivedSM, x.StateMachineArn)
		w.StrUnless(f, rowcodec.DerivedName, x.Name)
		w.StrUnless(f, rowcodec.DerivedAgent, x.AgentName)
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

func decodeSession(b []byte, s *domain.Session) error {
	r := rowcodec.NewReader(b)
	v := r.Byte()
	if v != sessionCodecV1 && v != sessionCodecV2 {
		return rowcodec.ErrMalformed
	}
	*s = domain.Session{ID: r.Str(), Seen: uint16(r.Uvarint()), FirstAt: r.Varint()}
	base := s.FirstAt
	for i := range s.At {
		s.At[i] = r.Ms(base)
	}
	for i := range s.Errors {
		s.Errors[i] = r.Str()
	}
	s.LastAt = r.Ms(base)
	s.LastStatus = domain.Status(r.Str())
	n := r.Uvarint()
	if r.Err() != nil || n > uint64(len(b)) {
		return rowcodec.ErrMalformed
	}
	if n > 0 {
		s.Execs = make([]domain.ExecState, n)
	}
	for i := range s.Execs {
		x := &s.Execs[i]
		if v == sessionCodecV1 {
			x.Arn, x.StateMachineArn, x.Name, x.AgentName = r.Str(), r.Str(), r.Str(), r.Str()
		} else {
			x.Arn = r.Str()
			r.Derived(x.Arn, r.Byte(), &x.StateMachineArn, &x.Name, &x.AgentName)
		}
		x.Status = domain.ExecStatus(r.Str())
		x.RedriveCount = int(r.Uvarint())
		x.Rank = r.Varint()
		x.StartMs, x.StopMs = r.Ms(base), r.Ms(base)
		x.Error, x.Cause = r.Str(), r.Str()
		x.LastMs = r.Ms(base)
		x.InputIncl, x.OutputIncl = r.OptBool(), r.OptBool()
	}
	return r.Done()
}

const eventCodecV1 = 1

// The journal keeps each item twice: as JSON (the item column, what SessionEvents,
// the tail and exports return) and, for items with more than their key, status and
// timestamp, in binary (the ev column), which a rebuild's scan decodes about twenty
// times faster than JSON. Times are stored in milliseconds, the precision of the
// journal, so both forms decode to the same domain.Event.

// encodeEventExtra appends ev's fields beyond PK, SK, Status and Timestamp.
func encodeEventExtra(b []byte, ev *domain.Event) []byte {
	x := &ev.Exec
	w := rowcodec.Writer{B: b}
	w.Byte(eventCodecV1)
	w.Str(ev.ErrorMessage)
	w.Str(x.ExecutionArn)
	w.Str(x.StateMachineArn)
	w.Str(x.ExecutionName)
	w.Str(x.AgentName)
	for _, t := range [...]time.Time{x.StartDate, x.StopDate, x.RedriveDate} {
		if t.IsZero() {
			w.Byte(0)
		} else {
			w.Byte(1)
			w.Varint(t.UnixMilli())
		}
	}
	w.Str(x.Error)
	w.Str(x.Cause)
	w.Uvarint(uint64(x.RedriveCount))
	w.Str(x.RedriveStatus)
	w.Str(x.SourceEventID)
	w.OptBool(x.InputIncluded)
	w.OptBool(x.OutputIncluded)
	return w.B
}

// decodeEventExtra fills ev's fields beyond PK, SK, Status and Timestamp.
func decodeEventExtra(b []byte, ev *domain.Event) error {
	r := rowcodec.NewReader(b)
	eventExtra(r, ev)
	return r.Done()
}

func eventExtra(r *rowcodec.Reader, ev *domain.Event) {
	if r.Byte() != eventCodecV1 {
		r.Fail()
		return
	}
	x := &ev.Exec
	ev.ErrorMessage = r.Str()
	x.ExecutionArn, x.StateMachineArn, x.ExecutionName, x.AgentName = r.Str(), r.Str(), r.Str(), r.Str()
	for _, t := range [...]*time.Time{&x.StartDate, &x.StopDate, &x.RedriveDate} {
		switch r.Byte() {
		case 0:
		case 1:
			*t = time.UnixMilli(r.Varint()).UTC()
		default:
			r.Fail()
		}
	}
	x.Error, x.Cause = r.Str(), r.Str()
	x.RedriveCount = int(r.Uvarint())
	x.RedriveStatus, x.SourceEventID = r.Str(), r.Str()
	x.InputIncluded, x.OutputIncluded = r.OptBool(), r.OptBool()
}

const eventRecordV1 = 1

// encodeEventRecord appends the whole of ev: the journal's rec column, all that a scan
// reads. One column instead of several: over a million rows, the driver's per-column
// cost (a conversion and an allocation each) is most of a scan.
func encodeEventRecord(b []byte, ev *domain.Event) []byte {
	w := rowcodec.Writer{B: b}
	w.Byte(eventRecordV1)
	w.Str(ev.SessionID)
	w.Str(ev.SK)
	w.Str(string(ev.Status))
	w.Varint(ev.Timestamp.UnixMilli())
	if isExtra(ev) {
		w.Byte(1)
		w.B = encodeEventExtra(w.B, ev)
	} else {
		w.Byte(0)
	}
	return w.B
}

// decodeEventRecord decodes what encodeEventRecord wrote. The event's strings are
// slices of rec, except its status, which status maps to a value of its own (so that
// statuses, which repeat, share one string).
func decodeEventRecord(rec string, ev *domain.Event, status func(string) domain.Status) error {
	r := rowcodec.NewStringReader(rec)
	if r.Byte() != eventRecordV1 {
		return rowcodec.ErrMalformed
	}
	*ev = domain.Event{SessionID: r.Str(), SK: r.Str()}
	ev.Status = status(r.Str())
	ev.Timestamp = time.UnixMilli(r.Varint()).UTC()
	switch r.Byte() {
	case 0:
	case 1:
		eventExtra(r, ev)
	default:
		r.Fail()
	}
	return r.Done()
}
