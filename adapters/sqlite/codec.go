package sqlite

import (
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"time"
	"unsafe"

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

// newStringReader reads s without copying it.
func newStringReader(s string) *reader {
	return &reader{b: unsafe.Slice(unsafe.StringData(s), len(s)), all: s}
}

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

// Codec versions of sessions and items. Version 2 leaves out what an execution's ARN
// already says (its state machine's ARN, its name and, usually, the agent's name) and
// stores the item's times in milliseconds: a third fewer bytes for a rebuild to write.
// Version 1 rows (written before) still decode.
const (
	sessionCodecV1 = 1
	sessionCodecV2 = 2
	itemCodecV1    = 1
	itemCodecV2    = 2
)

// execArnParts splits a Step Functions execution ARN,
// arn:PARTITION:states:REGION:ACCOUNT:execution:STATE_MACHINE:NAME, into its state
// machine's ARN, the state machine's name and the execution's name.
func execArnParts(arn string) (smArn, smName, name string, ok bool) {
	const infix = ":execution:"
	i := strings.Index(arn, infix)
	if i < 0 || strings.Count(arn[:i], ":") != 4 || !strings.HasPrefix(arn, "arn:") {
		return "", "", "", false
	}
	smName, name, ok = strings.Cut(arn[i+len(infix):], ":")
	if !ok || smName == "" || name == "" || strings.Contains(name, ":") {
		return "", "", "", false
	}
	return arn[:i] + ":stateMachine:" + smName, smName, name, true
}

// What of an execution's ARN-derived fields an encoding leaves out (flags).
const (
	derivedSM    = 1 << iota // the state machine's ARN
	derivedName              // the execution's name
	derivedAgent             // the agent's name, the state machine's
)

// derivedFlags says which of smArn, name and agent the execution ARN arn implies.
func derivedFlags(arn, smArn, name, agent string) byte {
	dsm, dsmName, dname, ok := execArnParts(arn)
	if !ok {
		return 0
	}
	var f byte
	if smArn == dsm {
		f |= derivedSM
	}
	if name == dname {
		f |= derivedName
	}
	if agent == dsmName {
		f |= derivedAgent
	}
	return f
}

// strUnless writes s unless flags has bit.
func (w *writer) strUnless(flags, bit byte, s string) {
	if flags&bit == 0 {
		w.str(s)
	}
}

// derived reads the fields derivedFlags left out back from arn, and the others as
// written, in the order smArn, name, agent (those the caller passes non-nil).
func (r *reader) derived(arn string, flags byte, smArn, name, agent *string) {
	var dsm, dsmName, dname string
	if flags&^(derivedSM|derivedName|derivedAgent) != 0 {
		r.fail()
		return
	}
	if flags != 0 {
		var ok bool
		if dsm, dsmName, dname, ok = execArnParts(arn); !ok {
			r.fail()
			return
		}
	}
	for _, f := range [...]struct {
		bit byte
		dst *string
		v   string
	}{{derivedSM, smArn, dsm}, {derivedName, name, dname}, {derivedAgent, agent, dsmName}} {
		switch {
		case f.dst == nil:
			if flags&f.bit != 0 {
				r.fail()
			}
		case flags&f.bit != 0:
			*f.dst = f.v
		default:
			*f.dst = r.str()
		}
	}
}

// encodeSession appends s in binary. Times are relative to s.FirstAt.
func encodeSession(b []byte, s *domain.Session) []byte {
	w := writer{b}
	w.byte(sessionCodecV2)
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
		f := derivedFlags(x.Arn, x.StateMachineArn, x.Name, x.AgentName)
		w.byte(f)
		w.strUnless(f, derivedSM, x.StateMachineArn)
		w.strUnless(f, derivedName, x.Name)
		w.strUnless(f, derivedAgent, x.AgentName)
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
	v := r.byte()
	if v != sessionCodecV1 && v != sessionCodecV2 {
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
		if v == sessionCodecV1 {
			x.Arn, x.StateMachineArn, x.Name, x.AgentName = r.str(), r.str(), r.str(), r.str()
		} else {
			x.Arn = r.str()
			r.derived(x.Arn, r.byte(), &x.StateMachineArn, &x.Name, &x.AgentName)
		}
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

// timeStr writes a time string: in milliseconds when it is one domain.FormatTime
// writes, as it is otherwise.
func (w *writer) timeStr(s string) {
	if s == "" {
		w.byte(0)
		return
	}
	if t, err := time.Parse(domain.TimeLayout, s); err == nil && domain.FormatTime(t) == s {
		w.byte(1)
		w.varint(t.UnixMilli())
		return
	}
	w.byte(2)
	w.str(s)
}

func (r *reader) timeStr() string {
	switch r.byte() {
	case 0:
		return ""
	case 1:
		return domain.FormatTime(time.UnixMilli(r.varint()))
	case 2:
		return r.str()
	}
	r.fail()
	return ""
}

// encodeItem appends the fields of it that are not columns (execution_arn, agent_name,
// status, start_date, session_id, rank).
func encodeItem(b []byte, it *executionindex.Item) []byte {
	w := writer{b}
	w.byte(itemCodecV2)
	f := derivedFlags(it.ExecutionArn, it.StateMachineArn, it.ExecutionName, "") &^ derivedAgent
	w.byte(f)
	w.strUnless(f, derivedSM, it.StateMachineArn)
	w.strUnless(f, derivedName, it.ExecutionName)
	w.timeStr(it.IndexedAt)
	w.timeStr(it.StopDate)
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
	w.timeStr(it.LastEventAt)
	return w.b
}

// decodeItem fills the fields of it that encodeItem wrote; it.ExecutionArn must be set.
func decodeItem(b []byte, it *executionindex.Item) error {
	r := newReader(b)
	switch r.byte() {
	case itemCodecV1:
		it.StateMachineArn, it.ExecutionName, it.IndexedAt, it.StopDate = r.str(), r.str(), r.str(), r.str()
	case itemCodecV2:
		r.derived(it.ExecutionArn, r.byte(), &it.StateMachineArn, &it.ExecutionName, nil)
		it.IndexedAt, it.StopDate = r.timeStr(), r.timeStr()
	default:
		return errBadCodec
	}
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
	if b[0] == itemCodecV1 {
		it.LastEventAt = r.str()
	} else {
		it.LastEventAt = r.timeStr()
	}
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
	r.eventExtra(ev)
	return r.done()
}

func (r *reader) eventExtra(ev *domain.Event) {
	if r.byte() != eventCodecV1 {
		r.fail()
		return
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
}

const eventRecordV1 = 1

// encodeEventRecord appends the whole of ev: the journal's rec column, all that a scan
// reads. One column instead of several: over a million rows, the driver's per-column
// cost (a conversion and an allocation each) is most of a scan.
func encodeEventRecord(b []byte, ev *domain.Event) []byte {
	w := writer{b}
	w.byte(eventRecordV1)
	w.str(ev.SessionID)
	w.str(ev.SK)
	w.str(string(ev.Status))
	w.varint(ev.Timestamp.UnixMilli())
	if isExtra(ev) {
		w.byte(1)
		w.b = encodeEventExtra(w.b, ev)
	} else {
		w.byte(0)
	}
	return w.b
}

// decodeEventRecord decodes what encodeEventRecord wrote. The event's strings are
// slices of rec, except its status, which status maps to a value of its own (so that
// statuses, which repeat, share one string).
func decodeEventRecord(rec string, ev *domain.Event, status func(string) domain.Status) error {
	r := newStringReader(rec)
	if r.byte() != eventRecordV1 {
		return errBadCodec
	}
	*ev = domain.Event{SessionID: r.str(), SK: r.str()}
	ev.Status = status(r.str())
	ev.Timestamp = time.UnixMilli(r.varint()).UTC()
	switch r.byte() {
	case 0:
	case 1:
		r.eventExtra(ev)
	default:
		r.fail()
	}
	return r.done()
}
