package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"unicode/utf8"
)

// This file holds what POST /v1/events and `agentwatch ingest` take: splitting a body into
// objects (SplitInput), telling what each object is (DecodeInput), and the small JSON
// field readers every decoder of this package shares. The decoders go through
// map[string]json.RawMessage rather than structs so that keys match exactly (encoding/json
// matches struct fields case-insensitively) and so that every error names its field.

// InputKind says what an ingested object turned out to be.
type InputKind string

// Kinds of ingested objects.
const (
	// InputEventBridge is a raw EventBridge "Step Functions Execution Status Change" envelope.
	InputEventBridge InputKind = "eventbridge"
	// InputSNS is such an envelope wrapped in an SNS notification.
	InputSNS InputKind = "sns"
	// InputJournalItem is a journal item in plain JSON (seed 002).
	InputJournalItem InputKind = "journal-item"
	// InputJournalItemDynamoJSON is a journal item in DynamoDB-typed JSON, bare or in a
	// GetItem {"Item": ...} answer.
	InputJournalItemDynamoJSON InputKind = "journal-item-dynamodb-json"
	// InputStreamRecord is a DynamoDB Streams record whose NewImage is a journal item.
	InputStreamRecord InputKind = "dynamodb-stream-record"
)

// Input is one decoded ingest object: a status change to map and append, or a journal
// item to append as it is. Exactly one of StatusChange and Event is set.
type Input struct {
	// Kind says which form the object had.
	Kind InputKind
	// StatusChange is set for InputEventBridge and InputSNS.
	StatusChange *StatusChange
	// Event is set for the journal item kinds.
	Event *Event
}

// inputExpected is what DecodeInput says when it does not recognise an object.
const inputExpected = "expected an EventBridge \"Step Functions Execution Status Change\" envelope " +
	"(raw or in an SNS notification), a journal item with PK, SK, Status and Timestamp " +
	"(plain or DynamoDB JSON), or a DynamoDB stream record with a NewImage"

// DecodeInput decodes one ingest object, telling its kind from its keys:
//   - an SNS notification ("Type": "Notification" with a "Message") wrapping an envelope;
//   - a DynamoDB stream record ({"dynamodb": {"NewImage": {...}}});
//   - an EventBridge envelope (has "detail-type" or "detail");
//   - a GetItem answer ({"Item": {...}});
//   - a journal item (has "PK"), in DynamoDB JSON when PK is an object like {"S": "..."},
//     else in plain JSON.
//
// Errors match ErrInvalid; field errors name the field with its path in the object, e.g.
// "Message.detail.startDate" or "dynamodb.NewImage.Timestamp".
func DecodeInput(obj []byte) (Input, error) {
	m, err := decodeObject(obj)
	if err != nil {
		return Input{}, err
	}
	fe := newFieldErrors()
	switch {
	case isSNSNotification(m):
		sc := statusChangeFromSNS(m, fe)
		if err := fe.err(); err != nil {
			return Input{}, err
		}
		return Input{Kind: InputSNS, StatusChange: &sc}, nil
	case has(m, "dynamodb"):
		e := eventFromStreamRecord(m, fe)
		if err := fe.err(); err != nil {
			return Input{}, err
		}
		return Input{Kind: InputStreamRecord, Event: &e}, nil
	case has(m, "detail-type") || has(m, "detail"):
		sc := statusChangeFromEnvelope(m, fe)
		if err := fe.err(); err != nil {
			return Input{}, err
		}
		return Input{Kind: InputEventBridge, StatusChange: &sc}, nil
	case has(m, "Item") && !has(m, "PK"):
		e := eventFromGetItem(m, fe)
		if err := fe.err(); err != nil {
			return Input{}, err
		}
		return Input{Kind: InputJournalItemDynamoJSON, Event: &e}, nil
	case has(m, "PK") || has(m, "SK"):
		kind := InputJournalItem
		if IsDynamoJSON(m) {
			kind = InputJournalItemDynamoJSON
		}
		e := dynamoOrPlainEvent(m, fe)
		if err := fe.err(); err != nil {
			return Input{}, err
		}
		return Input{Kind: kind, Event: &e}, nil
	}
	if has(m, "Items") || has(m, "Records") {
		return Input{}, fmt.Errorf("%w: a DynamoDB scan/query answer or a stream batch holds several objects: split it with SplitInput (%s)", ErrInvalid, inputExpected)
	}
	return Input{}, fmt.Errorf("%w: unrecognised object: %s", ErrInvalid, inputExpected)
}

// InputObject is one object of an ingest body, or the reason it could not be split out.
type InputObject struct {
	// Index is the object's 0-based position among the body's objects.
	Index int
	// Line is the 1-based line of the body where the object starts.
	Line int
	// Raw is the object's JSON; nil when Err is set.
	Raw json.RawMessage
	// Err, an *InputError, says why this object is unusable. The other objects of the
	// body are unaffected.
	Err error
}

// Decode decodes the object with DecodeInput. Errors are *InputError naming the object's
// index and line.
func (o InputObject) Decode() (Input, error) {
	if o.Err != nil {
		return Input{}, o.Err
	}
	in, err := DecodeInput(o.Raw)
	if err != nil {
		return Input{}, &InputError{Index: o.Index, Line: o.Line, Err: err}
	}
	return in, nil
}

// InputError says which object of an ingest body is unusable and why. It matches
// ErrInvalid and the underlying error with errors.Is and errors.As.
type InputError struct {
	// Index is the object's 0-based position among the body's objects.
	Index int
	// Line is the 1-based line of the body where the object starts.
	Line int
	// Err says what is wrong.
	Err error
}

// Error says "object INDEX (line LINE): " and what is wrong.
func (e *InputError) Error() string {
	return fmt.Sprintf("object %d (line %d): %v", e.Index, e.Line, e.Err)
}

// Reason says what is wrong without saying where (for an answer that says where on
// its own, such as an ingest result with its index and line).
func (e *InputError) Reason() string { return e.Err.Error() }

// Unwrap lets errors.Is find ErrInvalid and errors.As find the FieldErrors inside.
func (e *InputError) Unwrap() []error { return []error{ErrInvalid, e.Err} }

var utf8BOM = []byte("\xef\xbb\xbf")

// SplitInput splits an ingest body into its objects. The body is one JSON object, a JSON
// array of objects, several concatenated objects (pretty-printed or not), or NDJSON
// (blank lines ignored). A DynamoDB scan/query answer ({"Items": [...]}) and a stream
// batch ({"Records": [...]}) count as their elements.
//
// A malformed object becomes an InputObject with Err set, and the others are kept: in
// NDJSON each line is parsed on its own, so one bad line costs only itself. Elsewhere
// (an array, a pretty-printed stream) a syntax error ends the body: what came before is
// kept and the rest is reported as one malformed object. Values that are valid JSON but
// not objects are reported one by one.
//
// The error is non-nil, and matches ErrInvalid, only for a body with no JSON at all.
func SplitInput(body []byte) ([]InputObject, error) {
	body = bytes.TrimPrefix(body, utf8BOM)
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errEmptyBody
	}
	var s splitter
	if isNDJSON(body) {
		s.lines(body, 1)
	} else {
		s.values(body, 1)
	}
	return s.out, nil
}

// errEmptyBody is what splitting a body with nothing in it says.
var errEmptyBody = fmt.Errorf("%w: empty body: expected a JSON object, a JSON array of objects, or NDJSON", ErrInvalid)

// SplitNDJSON splits a body declared NDJSON (application/x-ndjson, JSON lines) into its
// objects, each line on its own whatever the body looks like as a whole: a line that is
// not JSON is one malformed object, a line holding an array contributes its elements,
// and the lines around a bad one are unaffected. firstLine is the body's first line
// number (1, or more for a chunk of a longer input), so that lines and errors name the
// lines of the whole input. The error is non-nil, and matches ErrInvalid, only for a
// body with no JSON at all.
func SplitNDJSON(body []byte, firstLine int) ([]InputObject, error) {
	body = bytes.TrimPrefix(body, utf8BOM)
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errEmptyBody
	}
	var s splitter
	s.lines(body, firstLine)
	return s.out, nil
}

// lines splits body line by line, its first line being line firstLine.
func (s *splitter) lines(body []byte, firstLine int) {
	line := firstLine
	for rest := body; len(rest) > 0; line++ {
		l := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			l, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if l = bytes.TrimSpace(l); len(l) > 0 {
			if json.Valid(l) {
				s.values(l, line)
			} else {
				// One bad line is one bad object, whatever it holds.
				s.fail(line, malformed(json.Unmarshal(l, new(any)), &lineCounter{data: l, line: line}))
			}
		}
	}
}

// isNDJSON reports whether body is NDJSON, to be parsed line by line so that a bad
// line costs only itself: it has at least two non-blank lines, it is not one JSON value
// as a whole (a pretty-printed object or array is), and most of its lines are whole
// JSON objects on their own. Pretty-printed objects have no such lines (theirs are
// keys, braces and values with trailing commas), so concatenated pretty-printed
// objects are split as a stream instead.
func isNDJSON(body []byte) bool {
	n, whole := 0, 0
	for rest := body; len(rest) > 0; {
		l := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			l, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		l = bytes.TrimSpace(l)
		if len(l) == 0 {
			continue
		}
		n++
		if l[0] == '{' && l[len(l)-1] == '}' && json.Valid(l) {
			whole++
		}
	}
	return n >= 2 && 2*whole > n && !json.Valid(body)
}

// splitter accumulates the objects of a body.
type splitter struct {
	out []InputObject
}

func (s *splitter) add(raw json.RawMessage, line int) {
	s.out = append(s.out, InputObject{Index: len(s.out), Line: line, Raw: raw})
}

func (s *splitter) fail(line int, err error) {
	s.out = append(s.out, InputObject{Index: len(s.out), Line: line, Err: &InputError{Index: len(s.out), Line: line, Err: err}})
}

// values splits data, which starts on line firstLine of the body, into its top-level
// values. A top-level array contributes its elements.
func (s *splitter) values(data []byte, firstLine int) {
	lines := lineCounter{data: data, line: firstLine}
	if json.Valid(data) {
		// The common case, one value (an object, an array, an NDJSON line): split it
		// in place rather than through a json.Decoder.
		start := skipSpace(data, 0, false)
		if data[start] != '[' {
			s.object(bytes.Clone(data[start:valueEnd(data, start)]), lines.at(start))
			return
		}
		for i := start + 1; ; {
			i = skipSpace(data, i, true)
			if i >= len(data) || data[i] == ']' {
				return
			}
			end := valueEnd(data, i)
			s.object(bytes.Clone(data[i:end]), lines.at(i))
			i = end
		}
	}
	// Several values, or a syntax error to locate: the decoder says where.
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		start := skipSpace(data, int(dec.InputOffset()), false)
		if start >= len(data) {
			return
		}
		line := lines.at(start)
		if data[start] == '[' {
			if !s.array(dec, data, &lines) {
				return
			}
			continue
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			s.fail(line, malformed(err, &lines))
			return
		}
		s.object(raw, line)
	}
}

// array splits a top-level array into its elements. It returns false after a syntax
// error, which leaves the decoder unusable.
func (s *splitter) array(dec *json.Decoder, data []byte, lines *lineCounter) bool {
	if _, err := dec.Token(); err != nil {
		s.fail(lines.at(skipSpace(data, int(dec.InputOffset()), false)), malformed(err, lines))
		return false
	}
	for dec.More() {
		line := lines.at(skipSpace(data, int(dec.InputOffset()), true))
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			s.fail(line, malformed(err, lines))
			return false
		}
		s.object(raw, line)
	}
	if _, err := dec.Token(); err != nil {
		s.fail(lines.at(skipSpace(data, int(dec.InputOffset()), true)), malformed(err, lines))
		return false
	}
	return true
}

// object adds raw, which starts on line, if it is an object, flattening a scan/query
// answer or a stream batch.
func (s *splitter) object(raw json.RawMessage, line int) {
	if k := jsonKind(raw); k != "object" {
		s.fail(line, fmt.Errorf("must be a JSON object, found %s", k))
		return
	}
	if key := containerKey(raw); key != "" {
		s.container(raw, key, line)
		return
	}
	s.add(raw, line)
}

// containerKey returns "Items" for a DynamoDB scan/query answer and "Records" for a
// stream batch, "" for anything else.
func containerKey(raw json.RawMessage) string {
	hasItems := bytes.Contains(raw, []byte(`"Items"`))
	if !hasItems && !bytes.Contains(raw, []byte(`"Records"`)) {
		return ""
	}
	m := objectFields(raw) // raw comes from the decoder: valid JSON
	if has(m, "PK") || has(m, "detail") || has(m, "dynamodb") || has(m, "Message") {
		return ""
	}
	for _, key := range [...]string{"Items", "Records"} {
		if v, ok := m[key]; ok && jsonKind(v) == "array" {
			return key
		}
	}
	return ""
}

// container adds the elements of raw[key], an array, each with its own line.
func (s *splitter) container(raw json.RawMessage, key string, line int) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	lines := lineCounter{data: raw, line: line}
	if _, err := dec.Token(); err != nil { // '{'
		s.fail(line, malformed(err, &lines))
		return
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			s.fail(line, malformed(err, &lines))
			return
		}
		if k, _ := t.(string); k != key {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				s.fail(line, malformed(err, &lines))
				return
			}
			continue
		}
		if _, err := dec.Token(); err != nil { // '['
			s.fail(line, malformed(err, &lines))
			return
		}
		for dec.More() {
			l := lines.at(skipSpace(raw, int(dec.InputOffset()), true))
			var el json.RawMessage
			if err := dec.Decode(&el); err != nil {
				s.fail(l, malformed(err, &lines))
				return
			}
			if k := jsonKind(el); k != "object" {
				s.fail(l, fmt.Errorf("%s element must be a JSON object, found %s", key, k))
				continue
			}
			s.add(el, l)
		}
		return
	}
}

// malformed describes a decoding error, with the line where the decoder gave up.
func malformed(err error, lines *lineCounter) error {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		// Offset counts the offending byte.
		return fmt.Errorf("malformed JSON at line %d: %v", lines.at(int(syn.Offset)-1), syn)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return errors.New("malformed JSON: truncated object")
	}
	return fmt.Errorf("malformed JSON: %v", err)
}

// skipSpace returns the offset of the first byte at or after off that is not JSON white
// space (nor a comma, when commas is set).
func skipSpace(data []byte, off int, commas bool) int {
	for off < len(data) {
		switch data[off] {
		case ' ', '\t', '\r', '\n':
		case ',':
			if !commas {
				return off
			}
		default:
			return off
		}
		off++
	}
	return off
}

// lineCounter turns offsets of data into line numbers, counting newlines incrementally
// for offsets that mostly grow.
type lineCounter struct {
	data []byte
	off  int
	line int
}

func (c *lineCounter) at(off int) int {
	off = min(max(off, 0), len(c.data))
	if off < c.off {
		c.line -= bytes.Count(c.data[off:c.off], []byte{'\n'})
	} else {
		c.line += bytes.Count(c.data[c.off:off], []byte{'\n'})
	}
	c.off = off
	return c.line
}

// --- field readers shared by the decoders ---

// fieldErrors collects FieldErrors under a path prefix. Copies made by nested share the
// list, so that the errors of a wrapped message join those of its wrapper.
type fieldErrors struct {
	prefix string
	errs   *[]error
}

func newFieldErrors() fieldErrors { return fieldErrors{errs: new([]error)} }

// nested returns a collector whose fields are prefixed with prefix.
func (fe fieldErrors) nested(prefix string) fieldErrors {
	return fieldErrors{prefix: fe.prefix + prefix, errs: fe.errs}
}

func (fe fieldErrors) add(field, reason string) {
	*fe.errs = append(*fe.errs, &FieldError{Field: fe.prefix + field, Reason: reason})
}

// err joins the collected errors; nil if there are none.
func (fe fieldErrors) err() error { return errors.Join(*fe.errs...) }

// decodeObject decodes b as a JSON object, keeping its values raw. b is validated once;
// nested objects are then split with objectFields without validating them again.
func decodeObject(b []byte) (map[string]json.RawMessage, error) {
	if !json.Valid(b) {
		var v json.RawMessage
		err := json.Unmarshal(b, &v) // for encoding/json's description of the problem
		if err == nil {
			err = errors.New("invalid JSON")
		}
		return nil, fmt.Errorf("%w: malformed JSON: %v", ErrInvalid, err)
	}
	if k := jsonKind(b); k != "object" {
		return nil, fmt.Errorf("%w: must be a JSON object, found %s", ErrInvalid, k)
	}
	return objectFields(b), nil
}

// subObject decodes the raw value of field, from validated JSON, as an object. A JSON
// string that holds an object is accepted too (SNS messages, stringified details). It
// returns nil, after reporting why, when the value is neither.
func subObject(raw json.RawMessage, field string, fe fieldErrors) map[string]json.RawMessage {
	switch kind := jsonKind(raw); kind {
	case "object":
		return objectFields(raw)
	case "string":
		s, _ := jsonString(raw)
		b := []byte(s)
		if jsonKind(b) != "object" {
			fe.add(field, "must be a JSON object (or a string holding one), found a string that is not one")
			return nil
		}
		if !json.Valid(b) {
			var v json.RawMessage
			err := json.Unmarshal(b, &v)
			if err == nil {
				err = errors.New("invalid JSON")
			}
			fe.add(field, "holds malformed JSON: "+err.Error())
			return nil
		}
		return objectFields(b)
	default:
		fe.add(field, "must be a JSON object, found "+kind)
		return nil
	}
}

// objectFields splits b, a JSON object already known to be valid, into its members
// without a second validation or any reflection. The values are subslices of b. As with
// encoding/json, the last of duplicate keys wins.
func objectFields(b []byte) map[string]json.RawMessage {
	m := make(map[string]json.RawMessage, 16)
	i := skipSpace(b, 0, false)
	if i >= len(b) || b[i] != '{' {
		return m
	}
	i++
	for {
		i = skipSpace(b, i, true)
		if i >= len(b) || b[i] != '"' {
			return m // '}'
		}
		end := stringEnd(b, i)
		key, _ := jsonString(b[i:end])
		i = skipSpace(b, end, false)
		if i >= len(b) || b[i] != ':' {
			return m
		}
		i = skipSpace(b, i+1, false)
		vend := valueEnd(b, i)
		m[key] = b[i:vend:vend]
		i = vend
	}
}

// stringEnd returns the offset just past the JSON string that starts at b[i].
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// valueEnd returns the offset just past the valid JSON value that starts at b[i].
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return len(b)
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = stringEnd(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	}
	for j := i; j < len(b); j++ {
		switch b[j] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return j
		}
	}
	return len(b)
}

// jsonKind names the JSON type of raw: object, array, string, number, boolean or null.
func jsonKind(raw []byte) string {
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return "object"
		case '[':
			return "array"
		case '"':
			return "string"
		case 't', 'f':
			return "boolean"
		case 'n':
			return "null"
		}
		return "number"
	}
	return "nothing"
}

// jsonString decodes raw, a valid JSON value, as a string; ok is false when it is not a
// string. Strings without escapes are taken as they are, without a second parse.
func jsonString(raw json.RawMessage) (s string, ok bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	body := raw[1 : len(raw)-1]
	if bytes.IndexByte(body, '\\') < 0 && utf8.Valid(body) {
		return string(body), true
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// reasonNotUTF8 is why an id or a status that is not valid UTF-8 is rejected.
const reasonNotUTF8 = "is not valid UTF-8: ids and statuses are kept byte for byte, and replacing the bad bytes would make different ids one"

// validUTF8String reports whether raw, a JSON string token from validated JSON, holds
// valid UTF-8: no invalid byte, and no \u escape of a surrogate that is not half of a
// pair. encoding/json replaces both with U+FFFD, which would make different byte strings
// decode to the same id.
func validUTF8String(raw []byte) bool {
	if len(raw) < 2 || raw[0] != '"' {
		return true // not a string: the caller reports the type
	}
	body := raw[1 : len(raw)-1]
	if !utf8.Valid(body) {
		return false
	}
	if bytes.IndexByte(body, '\\') < 0 {
		return true
	}
	for i := 0; i < len(body); i++ {
		if body[i] != '\\' {
			continue
		}
		i++
		if i >= len(body) || body[i] != 'u' {
			continue // a one-character escape
		}
		r, ok := hex4(body[i+1:])
		if !ok {
			return false
		}
		i += 4
		switch {
		case r >= 0xD800 && r <= 0xDBFF: // a high surrogate: a low one must follow
			if i+6 >= len(body) || body[i+1] != '\\' || body[i+2] != 'u' {
				return false
			}
			lo, ok := hex4(body[i+3:])
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return false
			}
			i += 6
		case r >= 0xDC00 && r <= 0xDFFF: // a low surrogate alone
			return false
		}
	}
	return true
}

// hex4 reads four hex digits.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c-'a') + 10
		case c >= 'A' && c <= 'F':
			r |= rune(c-'A') + 10
		default:
			return 0, false
		}
	}
	return r, true
}

// checkIDs reports each of fields of m that is a string but not valid UTF-8.
func checkIDs(m map[string]json.RawMessage, fe fieldErrors, fields ...string) {
	for _, f := range fields {
		if raw, ok := m[f]; ok && !validUTF8String(raw) {
			fe.add(f, reasonNotUTF8)
		}
	}
}

// optString reads an optional string field: absent and null give "".
func optString(m map[string]json.RawMessage, field string, fe fieldErrors) string {
	raw, ok := m[field]
	if !ok {
		return ""
	}
	return stringValue(raw, field, fe)
}

// stringValue reads raw as a string; null gives "".
func stringValue(raw json.RawMessage, field string, fe fieldErrors) string {
	if s, ok := jsonString(raw); ok {
		return s
	}
	if k := jsonKind(raw); k != "null" {
		fe.add(field, "must be a string, found "+k)
	}
	return ""
}

// reqString reads a required, non-empty string field.
func reqString(m map[string]json.RawMessage, field string, fe fieldErrors) string {
	raw, ok := m[field]
	if !ok {
		fe.add(field, "is missing")
		return ""
	}
	if jsonKind(raw) == "null" {
		fe.add(field, "is missing (null)")
		return ""
	}
	s := stringValue(raw, field, fe)
	if s == "" && jsonKind(raw) == "string" {
		fe.add(field, "is empty")
	}
	return s
}

// count parses a non-negative integer count written as a JSON number or a DynamoDB N
// string. Integral floats such as 1.0 are accepted.
func count(text string) (int, string) {
	f, err := strconv.ParseFloat(text, 64)
	switch {
	case err != nil && !errors.Is(err, strconv.ErrRange), !isDecimal(text):
		return 0, "must be a non-negative integer, found " + quoteValue(text)
	case f < 0:
		return 0, "must not be negative"
	case f != math.Trunc(f):
		return 0, "must be an integer, found " + quoteValue(text)
	case err != nil || f > math.MaxInt32:
		return 0, "is out of range"
	}
	return int(f), ""
}

// isDecimal reports whether text is a decimal number as JSON writes it (DynamoDB N
// strings are free text to the JSON parser; strconv would also take hex and "Inf").
func isDecimal(text string) bool {
	if text == "" {
		return false
	}
	digits := false
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case c >= '0' && c <= '9':
			digits = true
		case c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E':
		default:
			return false
		}
	}
	return digits
}

// has reports whether m has key.
func has(m map[string]json.RawMessage, key string) bool {
	_, ok := m[key]
	return ok
}

// quoteValue quotes a value for an error message, shortening long ones.
func quoteValue(s string) string {
	const maxLen = 64
	if len(s) > maxLen {
		cut := maxLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "..."
	}
	return strconv.Quote(s)
}
