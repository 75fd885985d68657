package sqlite

import (
	"encoding/binary"
	"errors"
	"math"
	"time"

	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/executionindex"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// The read models store their rows in a compact binary form rather than JSON: a rebuild
// writes hundreds of thousands of them at once, where JSON doubles the bytes written
// and costs more CPU than SQLite itself. Each form starts with a version byte. Fields
// that are also columns (keys, what the indexes sort on) are not repeated.
//
// The encodings append to a byte slice; the decodings take strings from one copy of
// the input (one allocation per row). codec_test.go fills every field by reflection,
// so that a field added to a domain type and forgotten here fails a test.

var errBadCodec = errors.New("malformed binary row")

// writer appends encoded values.
type writer struct{ b []byte }

func (w *writer) byte(v byte)      { w.b = append(w.b, v) }
func (w *writer) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *writer) varint(v int64)   { w.b = binary.AppendVarint(w.b, v) }
func (w *writer) str(s string) {
	w.uvarint(uint64(len(s)))
	w.b = append(w.b, s...)
}

// optBool writes a *bool as 0 (nil), 1 (false) or 2 (true).
func (w *writer) optBool(p *bool) {
	switch {
	case p == nil:
		w.byte(0)
	case !*p:
		w.byte(1)
	default:
		w.byte(2)
	}
}

// ms writes a unix-ms time relative to base: 0 stays 0 ("never"), others are small.
func (w *writer) ms(v, base int64) {
	if v == 0 {
		w.uvarint(0)
		return
	}
	d := v - base
	w.uvarint(uint64(d<<1^d>>63) + 1)
}

// reader reads what writer wrote; the first error sticks.
type reader struct {
	b   []byte
	all string // b as a string: strings are slices of it
	pos int
	err error
}

func newReader(b []byte) *reader { return &reader{b: b, all: string(b)} }

func (r *reader) fail() { r.err, r.pos = errBadCodec, len(r.b) }

func (r *reader) byte() byte {
	if r.pos >= len(r.b) {
		r.fail()
		return 0
	}
	r.pos++
	return r.b[r.pos-1]
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b[r.pos:])
	if n <= 0 {
		r.fail()
		return 0
	}
	r.pos += n
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b[r.pos:])
	if n <= 0 {
		r.fail()
		return 0
	}
	r.pos += n
	return v
}

func (r *reader) str() string {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)-r.pos) {
		r.fail()
		return ""
	}
	s := r.all[r.pos : r.pos+int(n)]
	r.pos += int(n)
	return s
}

func (r *reader) optBool() *bool {
	switch r.byte() {
	case 0:
		return nil
	case 1:
		return new(false)
	case 2:
		return new(true)
	}
	r.fail()
	return nil
}

func (r *reader) ms(base int64) int64 {
	u := r.uvarint()
	if u == 0 {
		return 0
	}
	u--
	return int64(u>>1) ^ -int64(u&1) + base
}

// done reports the first error, or an error if input is left over.
func (r *reader) done() error {
	if r.err == nil && r.pos != len(r.b) {
		r.fail()
	}
	return r.err
}

const sessionCodecV1 = 1

// encodeSession appends s in binary. Times are relative to s.FirstAt.
func encodeSession(b []byte, s *domain.Session) []byte {
	w := writer{b}
	w.byte(sessionCodecV1)
	w.str(s.ID)
	w.uvarint(uint64(s.Seen))
	w.varint(s.FirstAt)
	base := s.FirstAt
	for _, at := range s.At {
		w.ms(at, base)
	}
	for _, e := range s.Errors {
		w.str(e)
	}
	w.ms(s.LastAt, base)
	w.str(string(s.LastStatus))
	w.uvarint(uint64(len(s.Execs)))
	for i := range s.Execs {
		x := &s.Execs[i]
		w.str(x.Arn)
		w.str(x.StateMachineArn)
		w.str(x.Name)
		w.str(x.AgentName)
		w.str(string(x.Status))
		w.uvarint(uint64(x.RedriveCount))
		w.varint(x.Rank)
		w.ms(x.StartMs, base)
		w.ms(x.StopMs, base)
		w.str(x.Error)
		w.str(x.Cause)
		w.ms(x.LastMs, base)
		w.optBool(x.InputIncl)
		w.optBool(x.OutputIncl)
	}
	return w.b
}

func decodeSession(b []byte, s *domain.Session) error {
	r := newReader(b)
	if r.byte() != sessionCodecV1 {
		return errBadCodec
	}
	*s = domain.Session{ID: r.str(), Seen: uint16(r.uvarint()), FirstAt: r.varint()}
	base := s.FirstAt
	for i := range s.At {
		s.At[i] = r.ms(base)
	}
	for i := range s.Errors {
		s.Errors[i] = r.str()
	}
	s.LastAt = r.ms(base)
	s.LastStatus = domain.Status(r.str())
	n := r.uvarint()
	if r.err != nil || n > uint64(len(b)) {
		return errBadCodec
	}
	if n > 0 {
		s.Execs = make([]domain.ExecState, n)
	}
	for i := range s.Execs {
		x := &s.Execs[i]
		x.Arn, x.StateMachineArn, x.Name, x.AgentName = r.str(), r.str(), r.str(), r.str()
		x.Status = domain.ExecStatus(r.str())
		x.RedriveCount = int(r.uvarint())
		x.Rank = r.varint()
		x.StartMs, x.StopMs = r.ms(base), r.ms(base)
		x.Error, x.Cause = r.str(), r.str()
		x.LastMs = r.ms(base)
		x.InputIncl, x.OutputIncl = r.optBool(), r.optBool()
	}
	return r.done()
}

const itemCodecV1 = 1

// encodeItem appends the fields of it that are not columns (execution_arn, agent_name,
// status, start_date, session_id, rank).
func encodeItem(b []byte, it *executionindex.Item) []byte {
	w := writer{b}
	w.byte(itemCodecV1)
	w.str(it.StateMachineArn)
	w.str(it.ExecutionName)
	w.str(it.IndexedAt)
	w.str(it.StopDate)
	if it.DurationSeconds == nil {
		w.byte(0)
	} else {
		w.byte(1)
		w.b = binary.LittleEndian.AppendUint64(w.b, math.Float64bits(*it.DurationSeconds))
	}
	w.str(it.Error)
	w.str(it.Cause)
	w.uvarint(uint64(it.RedriveCount))
	w.optBool(it.InputIncluded)
	w.optBool(it.OutputIncluded)
	w.str(it.LastEventAt)
	return w.b
}

// decodeItem fills the fields of it that encodeItem wrote.
func decodeItem(b []byte, it *executionindex.Item) error {
	r := newReader(b)
	if r.byte() != itemCodecV1 {
		return errBadCodec
	}
	it.StateMachineArn, it.ExecutionName, it.IndexedAt, it.StopDate = r.str(), r.str(), r.str(), r.str()
	switch r.byte() {
	case 0:
		it.DurationSeconds = nil
	case 1:
		if len(b)-r.pos < 8 {
			return errBadCodec
		}
		d := math.Float64frombits(binary.LittleEndian.Uint64(b[r.pos:]))
		r.pos += 8
		it.DurationSeconds = &d
	default:
		return errBadCodec
	}
	it.Error, it.Cause = r.str(), r.str()
	it.RedriveCount = int(r.uvarint())
	it.InputIncluded, it.OutputIncluded = r.optBool(), r.optBool()
	it.LastEventAt = r.str()
	return r.done()
}

const entryCodecV1 = 1

// encodeEntry appends e without its SessionID (the key column).
func encodeEntry(b []byte, e *stuck.Entry) []byte {
	w := writer{b}
	w.byte(entryCodecV1)
	w.str(e.Agent)
	w.str(e.ExecutionArn)
	w.str(string(e.LastStatus))
	w.varint(e.LastEventMs)
	w.str(string(e.Stage))
	w.varint(e.StageStartMs)
	w.str(string(e.ExecStatus))
	w.varint(e.ExecEndMs)
	w.str(string(e.Outcome))
	var flags byte
	if e.Mismatch {
		flags |= 1
	}
	if e.Closed {
		flags |= 2
	}
	w.byte(flags)
	return w.b
}

// decodeEntry fills e but its SessionID.
func decodeEntry(b []byte, e *stuck.Entry) error {
	r := newReader(b)
	if r.byte() != entryCodecV1 {
		return errBadCodec
	}
	e.Agent, e.ExecutionArn, e.LastStatus = r.str(), r.str(), domain.Status(r.str())
	e.LastEventMs = r.varint()
	e.Stage = domain.Stage(r.str())
	e.StageStartMs = r.varint()
	e.ExecStatus = domain.ExecStatus(r.str())
	e.ExecEndMs = r.varint()
	e.Outcome = domain.Outcome(r.str())
	flags := r.byte()
	if flags > 3 {
		return errBadCodec
	}
	e.Mismatch, e.Closed = flags&1 != 0, flags&2 != 0
	return r.done()
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
	w := writer{b}
	w.byte(eventCodecV1)
	w.str(ev.ErrorMessage)
	w.str(x.ExecutionArn)
	w.str(x.StateMachineArn)
	w.str(x.ExecutionName)
	w.str(x.AgentName)
	for _, t := range [...]time.Time{x.StartDate, x.StopDate, x.RedriveDate} {
		if t.IsZero() {
			w.byte(0)
		} else {
			w.byte(1)
			w.varint(t.UnixMilli())
		}
	}
	w.str(x.Error)
	w.str(x.Cause)
	w.uvarint(uint64(x.RedriveCount))
	w.str(x.RedriveStatus)
	w.str(x.SourceEventID)
	w.optBool(x.InputIncluded)
	w.optBool(x.OutputIncluded)
	return w.b
}

// decodeEventExtra fills ev's fields beyond PK, SK, Status and Timestamp.
func decodeEventExtra(b []byte, ev *domain.Event) error {
	r := newReader(b)
	if r.byte() != eventCodecV1 {
		return errBadCodec
	}
	x := &ev.Exec
	ev.ErrorMessage = r.str()
	x.ExecutionArn, x.StateMachineArn, x.ExecutionName, x.AgentName = r.str(), r.str(), r.str(), r.str()
	for _, t := range [...]*time.Time{&x.StartDate, &x.StopDate, &x.RedriveDate} {
		switch r.byte() {
		case 0:
		case 1:
			*t = time.UnixMilli(r.varint()).UTC()
		default:
			r.fail()
		}
	}
	x.Error, x.Cause = r.str(), r.str()
	x.RedriveCount = int(r.uvarint())
	x.RedriveStatus, x.SourceEventID = r.str(), r.str()
	x.InputIncluded, x.OutputIncluded = r.optBool(), r.optBool()
	return r.done()
}
