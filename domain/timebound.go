package domain

import (
	"strconv"
	"strings"
	"time"
)

// TimeBoundVocabulary says what ParseTimeBound takes, for help texts and errors.
const TimeBoundVocabulary = "an RFC 3339 timestamp, a date (YYYY-MM-DD, a UTC day), today, yesterday, now, " +
	"or a duration ago (90m, 24h, 7d, 2w)"

// ParseTimeBound reads one end of a time range in agentwatch's one vocabulary, the same
// for the CLI's flags (--from, --to, --after, --since) and the API's parameters (from,
// to, after):
//   - an ISO 8601 / RFC 3339 timestamp, with or without fractional seconds, with a zone
//     or none (UTC), as ParseTime reads it;
//   - a date, YYYY-MM-DD, a day in UTC: its first instant as a lower bound, its last
//     millisecond as an upper bound, so that from=to=DATE selects the whole day;
//     today and yesterday are such days;
//   - now;
//   - a duration ago: a Go duration (90m, 1h30m, 24h) or a number of days or weeks (7d,
//     2w), not negative.
//
// now is the current time; upper says which end the bound is. An empty s is the zero
// time (unbounded). An error is a *FieldError naming field.
func ParseTimeBound(field, s string, now time.Time, upper bool) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	now = now.UTC()
	day := func(d time.Time) time.Time {
		d = time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, time.UTC)
		if upper {
			return d.Add(24*time.Hour - time.Millisecond)
		}
		return d
	}
	switch strings.ToLower(s) {
	case "now":
		return now, nil
	case "today":
		return day(now), nil
	case "yesterday":
		return day(now.AddDate(0, 0, -1)), nil
	}
	if d, err := time.Parse(time.DateOnly, s); err == nil {
		return day(d), nil
	}
	if d, ok, neg := durationAgo(s); ok {
		if neg {
			return time.Time{}, &FieldError{Field: field, Reason: quoteValue(s) + " is a negative duration: a duration ago must not be negative"}
		}
		return now.Add(-d), nil
	}
	if t, err := ParseTime(s); err == nil {
		return t, nil
	}
	return time.Time{}, &FieldError{Field: field, Reason: quoteValue(s) + " is not a time: use " + TimeBoundVocabulary}
}

// durationAgo reads a Go duration or N d / N w; ok is false when s is none of those.
func durationAgo(s string) (d time.Duration, ok, negative bool) {
	if d, err := time.ParseDuration(s); err == nil {
		return d, true, d < 0
	}
	for unit, size := range map[byte]time.Duration{'d': 24 * time.Hour, 'w': 7 * 24 * time.Hour} {
		if len(s) < 2 || s[len(s)-1] != unit {
			continue
		}
		n, err := strconv.ParseFloat(s[:len(s)-1], 64)
		if err != nil || n != n { // not a number, or NaN
			return 0, false, false
		}
		if n < 0 {
			return 0, true, true
		}
		if n*float64(size) > float64(1<<62) {
			return 0, false, false
		}
		return time.Duration(n * float64(size)), true, false
	}
	return 0, false, false
}
