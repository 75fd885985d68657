// Package rowcodec is the compact binary form in which read models let stores keep
// their documents, where JSON would double the bytes a rebuild writes and cost more CPU
// than the store itself: varints, length-prefixed strings, times in milliseconds
// relative to a base, and fields an execution's ARN implies left out.
//
// Writers append to a byte slice; readers take strings from one copy of the input (one
// allocation per document) and remember the first error.
package rowcodec

import (
	"encoding/binary"
	"errors"
	"math"
	"time"
	"unsafe"

	"github.com/agentwatch/agentwatch/domain"
)

// ErrMalformed is the error of any input that a Writer did not write.
var ErrMalformed = errors.New("malformed binary row")

// Writer appends encoded values to B.
type Writer struct{ B []byte }

// Byte appends one byte.
func (w *Writer) Byte(v byte) { w.B = append(w.B, v) }

// Uvarint appends an unsigned varint.
func (w *Writer) Uvarint(v uint64) { w.B = binary.AppendUvarint(w.B, v) }

// Varint appends a signed varint.
func (w *Writer) Varint(v int64) { w.B = binary.AppendVarint(w.B, v) }

// Str appends a length-prefixed string.
func (w *Writer) Str(s string) {
	w.Uvarint(uint64(len(s)))
	w.B = append(w.B, s...)
}

// Float appends a float64.
func (w *Writer) Float(f float64) { w.B = binary.LittleEndian.AppendUint64(w.B, math.Float64bits(f)) }

// OptBool appends a *bool as 0 (nil), 1 (false) or 2 (true).
func (w *Writer) OptBool(p *bool) {
	switch {
	case p == nil:
		w.Byte(0)
	case !*p:
		w.Byte(1)
	default:
		w.Byte(2)
	}
}

// Ms appends a unix-ms time relative to base: 0 stays 0 ("never"), others are small.
func (w *Writer) Ms(v, base int64) {
	if v == 0 {
		w.Uvarint(0)
		return
	}
	d := v - base
	w.Uvarint(uint64(d<<1^d>>63) + 1)
}

// TimeStr appends a time string: in milliseconds when domain.FormatTime writes it so,
// as it is otherwise.
func (w *Writer) TimeStr(s string) {
	if s == "" {
		w.Byte(0)
		return
	}
	if t, err := time.Parse(domain.TimeLayout, s); err == nil && domain.FormatTime(t) == s {
		w.Byte(1)
		w.Varint(t.UnixMilli())
		return
	}
	w.Byte(2)
	w.Str(s)
}

// What of an execution's ARN-derived fields an encoding leaves out (flags).
const (
	DerivedSM    = 1 << iota // the state machine's ARN
	DerivedName              // the execution's name
	DerivedAgent             // the agent's name, the state machine's
)

// DerivedFlags says which of smArn, name and agent the execution ARN arn implies.
func DerivedFlags(arn, smArn, name, agent string) byte {
	dsm, dsmName, dname, ok := domain.ExecutionArnParts(arn)
	if !ok {
		return 0
	}
	var f byte
	if smArn == dsm {
		f |= DerivedSM
	}
	if name == dname {
		f |= DerivedName
	}
	if agent == dsmName {
		f |= DerivedAgent
	}
	return f
}

// StrUnless appends s unless flags has bit.
func (w *Writer) StrUnless(flags, bit byte, s string) {
	if flags&bit == 0 {
		w.Str(s)
	}
}

// Reader reads what a Writer wrote; the first error sticks.
type Reader struct {
	b   []byte
	all string // b as a string: strings are slices of it
	pos int
	err error
}

// NewReader reads b, copying it once.
func NewReader(b []byte) *Reader { return &Reader{b: b, all: string(b)} }

// NewStringReader reads s without copying it.
func NewStringReader(s string) *Reader {
	return &Reader{b: unsafe.Slice(unsafe.StringData(s), len(s)), all: s}
}

// Fail marks the input malformed.
func (r *Reader) Fail() { r.err, r.pos = ErrMalformed, len(r.b) }

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if r.pos >= len(r.b) {
		r.Fail()
		return 0
	}
	r.pos++
	return r.b[r.pos-1]
}

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 {
	v, n := binary.Uvarint(r.b[r.pos:])
	if n <= 0 {
		r.Fail()
		return 0
	}
	r.pos += n
	return v
}

// Varint reads a signed varint.
func (r *Reader) Varint() int64 {
	v, n := binary.Varint(r.b[r.pos:])
	if n <= 0 {
		r.Fail()
		return 0
	}
	r.pos += n
	return v
}

// Str reads a string.
func (r *Reader) Str() string {
	n := r.Uvarint()
	if r.err != nil || n > uint64(len(r.b)-r.pos) {
		r.Fail()
		return ""
	}
	s := r.all[r.pos : r.pos+int(n)]
	r.pos += int(n)
	return s
}

// Float reads a float64.
func (r *Reader) Float() float64 {
	if len(r.b)-r.pos < 8 {
		r.Fail()
		return 0
	}
	f := math.Float64frombits(binary.LittleEndian.Uint64(r.b[r.pos:]))
	r.pos += 8
	return f
}

// OptBool reads a *bool.
func (r *Reader) OptBool() *bool {
	switch r.Byte() {
	case 0:
		return nil
	case 1:
		return new(false)
	case 2:
		return new(true)
	}
	r.Fail()
	return nil
}

// Ms reads a time Ms wrote against the same base.
func (r *Reader) Ms(base int64) int64 {
	u := r.Uvarint()
	if u == 0 {
		return 0
	}
	u--
	return int64(u>>1) ^ -int64(u&1) + base
}

// TimeStr reads a time string.
func (r *Reader) TimeStr() string {
	switch r.Byte() {
	case 0:
		return ""
	case 1:
		return domain.FormatTime(time.UnixMilli(r.Varint()))
	case 2:
		return r.Str()
	}
	r.Fail()
	return ""
}

// Derived reads the fields DerivedFlags left out back from arn, and the others as
// written, in the order smArn, name, agent (those the caller passes non-nil).
func (r *Reader) Derived(arn string, flags byte, smArn, name, agent *string) {
	var dsm, dsmName, dname string
	if flags&^(DerivedSM|DerivedName|DerivedAgent) != 0 {
		r.Fail()
		return
	}
	if flags != 0 {
		var ok bool
		if dsm, dsmName, dname, ok = domain.ExecutionArnParts(arn); !ok {
			r.Fail()
			return
		}
	}
	for _, f := range [...]struct {
		bit byte
		dst *string
		v   string
	}{{DerivedSM, smArn, dsm}, {DerivedName, name, dname}, {DerivedAgent, agent, dsmName}} {
		switch {
		case f.dst == nil:
			if flags&f.bit != 0 {
				r.Fail()
			}
		case flags&f.bit != 0:
			*f.dst = f.v
		default:
			*f.dst = r.Str()
		}
	}
}

// Pos is how many bytes were read.
func (r *Reader) Pos() int { return r.pos }

// Err is the first error.
func (r *Reader) Err() error { return r.err }

// Done reports the first error, or an error if input is left over.
func (r *Reader) Done() error {
	if r.err == nil && r.pos != len(r.b) {
		r.Fail()
	}
	return r.err
}
