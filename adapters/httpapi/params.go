package httpapi

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/agentwatch/agentwatch/domain"
)

// params reads query parameters and collects the first error, so that a handler
// reads all of them and checks once.
type params struct {
	q   url.Values
	now time.Time
	err error
}

func newParams(q url.Values, now time.Time) *params { return &params{q: q, now: now.UTC()} }

func (p *params) fail(field, reason string) {
	if p.err == nil {
		p.err = paramError(field, reason)
	}
}

// str returns the parameter, trimmed.
func (p *params) str(name string) string { return strings.TrimSpace(p.q.Get(name)) }

// limit returns a positive count no larger than max, def when absent.
func (p *params) limit(name string, def, max int) int {
	s := p.str(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		p.fail(name, "must be a whole number between 1 and "+strconv.Itoa(max)+", found "+strconv.Quote(s))
		return def
	}
	return n
}

// order returns true for ascending: "asc" (or "oldest"), false for "desc" (or
// "newest"), def when absent.
func (p *params) ascending(name string, def bool) bool {
	switch strings.ToLower(p.str(name)) {
	case "":
		return def
	case "asc", "oldest":
		return true
	case "desc", "newest":
		return false
	default:
		p.fail(name, "must be asc or desc, found "+strconv.Quote(p.str(name)))
		return def
	}
}

// oneOf returns the parameter if it is one of allowed (case-insensitive, answered in
// the case of allowed), def when absent.
func (p *params) oneOf(name, def string, allowed ...string) string {
	s := p.str(name)
	if s == "" {
		return def
	}
	for _, a := range allowed {
		if strings.EqualFold(s, a) {
			return a
		}
	}
	p.fail(name, "must be one of "+strings.Join(allowed, ", ")+", found "+strconv.Quote(s))
	return def
}

// timeBound parses a range bound in the vocabulary the CLI shares
// (domain.ParseTimeBound): a timestamp, a date, today, yesterday, now, or a duration
// ago. Absent: the zero time (unbounded).
func (p *params) timeBound(name string, upper bool) time.Time {
	s := p.str(name)
	// A '+' of a zone offset arrives as a space when the client did not escape it.
	if strings.Contains(s, "T") && strings.Contains(s, " ") {
		s = strings.ReplaceAll(s, " ", "+")
	}
	t, err := domain.ParseTimeBound(name, s, p.now, upper)
	if err != nil && p.err == nil {
		p.err = err
	}
	return t
}
