package simulate

import (
	"strconv"
	"unicode/utf8"

	"github.com/agentwatch/agentwatch/domain"
)

// The encoders append JSON by hand: Generate must produce a million objects in well under
// a second, which encoding/json and time.Format cannot. Tests check the output against
// encoding/json and domain's decoders.

// malformation is how a malformed object is broken.
type malformation uint8

const (
	wellFormed         malformation = iota
	malTruncated                    // the JSON is cut short
	malStartDateString              // detail.startDate is a string
	malMissingPK                    // the journal item has no PK
	malBadTimestamp                 // the journal item's Timestamp is not ISO 8601
	malStatusNumber                 // the journal item's Status is a number
)

// change is one status change of an execution.
type change struct {
	status domain.ExecStatus
	// atMs is when it happened: startDate, redriveDate or stopDate (unix ms).
	atMs    int64
	startMs int64
	// stopMs and redriveMs are 0 for null.
	stopMs       int64
	redriveMs    int64
	redriveCount int
	// errCode and cause are "" for null.
	errCode, cause string
	// output is the status the execution's output reports, "" for a null output.
	output string
	// dropped: never delivered.
	dropped bool
}

// journalEvent is one event an agent writes.
type journalEvent struct {
	status domain.Status
	atMs   int64
	msg    string
}

// appendEnvelope appends the EventBridge envelope of c, field for field as Step
// Functions publishes it. input is the execution input already quoted as a JSON string.
func appendEnvelope(dst []byte, s *sessionState, c *change, idHi, idLo uint64, region, account string, mal malformation) []byte {
	dst = append(dst, `{"version":"0","id":"`...)
	dst = appendUUID(dst, idHi, idLo)
	dst = append(dst, `","detail-type":"Step Functions Execution Status Change","source":"aws.states","account":"`...)
	dst = append(dst, account...)
	dst = append(dst, `","time":"`...)
	dst = appendTimeSec(dst, c.atMs)
	dst = append(dst, `","region":"`...)
	dst = append(dst, region...)
	dst = append(dst, `","resources":["`...)
	dst = append(dst, s.execArn...)
	dst = append(dst, `"],"detail":{"executionArn":"`...)
	dst = append(dst, s.execArn...)
	dst = append(dst, `","stateMachineArn":"`...)
	dst = append(dst, s.agent.stateMachineArn...)
	dst = append(dst, `","name":"`...)
	dst = append(dst, s.execName...)
	dst = append(dst, `","status":"`...)
	dst = append(dst, c.status...)
	dst = append(dst, `","startDate":`...)
	if mal == malStartDateString {
		dst = append(dst, '"')
		dst = strconv.AppendInt(dst, c.startMs, 10)
		dst = append(dst, '"')
	} else {
		dst = strconv.AppendInt(dst, c.startMs, 10)
	}
	dst = append(dst, `,"stopDate":`...)
	dst = appendMsOrNull(dst, c.stopMs)
	dst = append(dst, `,"input":`...)
	dst = append(dst, s.input...)
	dst = append(dst, `,"inputDetails":{"included":true},"output":`...)
	if c.output == "" {
		dst = append(dst, `null,"outputDetails":null`...)
	} else {
		// What the state machine's last state returns, quoted (ids and statuses need no
		// escaping).
		dst = append(dst, `"{\"session_id\": \"`...)
		dst = append(dst, s.id...)
		dst = append(dst, `\", \"status\": \"`...)
		dst = append(dst, c.output...)
		dst = append(dst, `\"}","outputDetails":{"included":true}`...)
	}
	dst = append(dst, `,"error":`...)
	dst = appendStringOrNull(dst, c.errCode)
	dst = append(dst, `,"cause":`...)
	dst = appendStringOrNull(dst, c.cause)
	dst = append(dst, `,"redriveCount":`...)
	dst = strconv.AppendInt(dst, int64(c.redriveCount), 10)
	dst = append(dst, `,"redriveDate":`...)
	dst = appendMsOrNull(dst, c.redriveMs)
	switch c.status {
	case domain.ExecRunning:
		dst = append(dst, `,"redriveStatus":"NOT_REDRIVABLE","redriveStatusReason":"Execution is RUNNING and cannot be redriven"}}`...)
	case domain.ExecSucceeded:
		dst = append(dst, `,"redriveStatus":"NOT_REDRIVABLE","redriveStatusReason":"Execution is SUCCEEDED and cannot be redriven"}}`...)
	default:
		dst = append(dst, `,"redriveStatus":"REDRIVABLE","redriveStatusReason":null}}`...)
	}
	return dst
}

// appendJournalItem appends a journal item in seed 002's plain JSON form.
func appendJournalItem(dst []byte, sessionID string, ev *journalEvent, mal malformation) []byte {
	dst = append(dst, '{')
	if mal != malMissingPK {
		dst = append(dst, `"PK":"`+domain.SessionKeyPrefix...)
		dst = append(dst, sessionID...)
		dst = append(dst, `",`...)
	}
	var ts [len(domain.TimeLayout)]byte
	appendTimeMs(ts[:0], ev.atMs)
	dst = append(dst, `"SK":"`+domain.EventKeyPrefix...)
	dst = append(dst, ts[:]...)
	if mal == malStatusNumber {
		dst = append(dst, `","Status":`...)
		dst = strconv.AppendInt(dst, int64(ev.status.AgentIndex()+1), 10)
		dst = append(dst, `,"Timestamp":"`...)
	} else {
		dst = append(dst, `","Status":"`...)
		dst = append(dst, ev.status...)
		dst = append(dst, `","Timestamp":"`...)
	}
	if mal == malBadTimestamp {
		// A US-style local time, as a careless agent might write it.
		dst = append(dst, ts[5:7]...)
		dst = append(dst, '/')
		dst = append(dst, ts[8:10]...)
		dst = append(dst, '/')
		dst = append(dst, ts[0:4]...)
		dst = append(dst, ' ')
		dst = append(dst, ts[11:19]...)
	} else {
		dst = append(dst, ts[:]...)
	}
	dst = append(dst, '"')
	if ev.msg != "" {
		dst = append(dst, `,"ErrorMessage":`...)
		dst = appendQuoted(dst, ev.msg)
	}
	return append(dst, '}')
}

// appendMsOrNull appends epoch milliseconds, or null for 0.
func appendMsOrNull(dst []byte, ms int64) []byte {
	if ms == 0 {
		return append(dst, "null"...)
	}
	return strconv.AppendInt(dst, ms, 10)
}

// appendStringOrNull appends s as a JSON string, or null for "".
func appendStringOrNull(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, "null"...)
	}
	return appendQuoted(dst, s)
}

const hexDigits = "0123456789abcdef"

// appendQuoted appends s as a JSON string, escaped as encoding/json does (but without
// HTML escaping). Invalid UTF-8 becomes U+FFFD.
func appendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < 0x80 {
			i++
			continue
		}
		if c >= 0x80 {
			r, size := utf8.DecodeRuneInString(s[i:])
			switch {
			case r == utf8.RuneError && size == 1:
				dst = append(dst, s[start:i]...)
				dst = append(dst, `\ufffd`...)
			case r == '\u2028' || r == '\u2029':
				dst = append(dst, s[start:i]...)
				dst = append(dst, `\u202`...)
				dst = append(dst, hexDigits[r&0xf])
			default:
				i += size
				continue
			}
			i += size
			start = i
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendUUID appends a version-4 UUID made of hi and lo.
func appendUUID(dst []byte, hi, lo uint64) []byte {
	hi = hi&^0xf000 | 0x4000           // version 4
	lo = lo&^(0xc000<<48) | 0x8000<<48 // RFC 4122 variant
	var b [36]byte
	put := func(pos int, v uint64, nibbles int) {
		for i := nibbles - 1; i >= 0; i-- {
			b[pos+i] = hexDigits[v&0xf]
			v >>= 4
		}
	}
	put(0, hi>>32, 8)
	b[8] = '-'
	put(9, hi>>16, 4)
	b[13] = '-'
	put(14, hi, 4)
	b[18] = '-'
	put(19, lo>>48, 4)
	b[23] = '-'
	put(24, lo, 12)
	return append(dst, b[:]...)
}

// appendTimeMs appends unix milliseconds in domain.TimeLayout.
func appendTimeMs(dst []byte, ms int64) []byte {
	sec := floorDiv(ms, 1000)
	dst = appendTimeSecNoZ(dst, sec)
	frac := ms - sec*1000
	return append(dst, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10), 'Z')
}

// appendTimeSec appends unix milliseconds truncated to the second, as EventBridge
// writes an envelope's time: 2006-01-02T15:04:05Z.
func appendTimeSec(dst []byte, ms int64) []byte {
	return append(appendTimeSecNoZ(dst, floorDiv(ms, 1000)), 'Z')
}

// appendTimeSecNoZ appends unix seconds as 2006-01-02T15:04:05, without a zone.
func appendTimeSecNoZ(dst []byte, sec int64) []byte {
	days := floorDiv(sec, 86400)
	rem := sec - days*86400
	y, m, d := civil(days)
	h, mi, s := rem/3600, rem/60%60, rem%60
	return append(dst,
		byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10), 'T',
		byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':',
		byte('0'+s/10), byte('0'+s%10))
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
// civil_from_days), for years 0-9999.
func civil(days int64) (y, m, d int64) {
	z := days + 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

// floorDiv divides rounding towards negative infinity.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
