package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// printJSON writes v indented: the same shapes the HTTP API answers.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, headers ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	t.row(headers...)
	return t
}

func (t *table) row(cols ...string) { fmt.Fprintln(t.tw, strings.Join(cols, "\t")) }

func (t *table) flush() error { return t.tw.Flush() }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// shortTime renders an ISO timestamp as "2006-01-02 15:04:05".
func shortTime(iso string) string {
	t, err := time.Parse(time.RFC3339Nano, iso)
	if err != nil {
		return orDash(iso)
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

func humanDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + humanDuration(-d)
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}

func statusIcon(status string) string {
	switch status {
	case "SUCCEEDED":
		return "✓"
	case "RUNNING", "PENDING_REDRIVE":
		return "⚡"
	case "FAILED", "TIMED_OUT":
		return "✗"
	case "ABORTED":
		return "■"
	}
	return "?"
}

// parseTimeFlag reads --from/--to: RFC 3339, a date (YYYY-MM-DD), "today", "now", or
// a duration ago such as "24h".
func parseTimeFlag(name, v string, endOfDay bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	now := time.Now().UTC()
	switch v {
	case "now":
		return now, nil
	case "today":
		d := now.Truncate(24 * time.Hour)
		if endOfDay {
			return d.Add(24*time.Hour - time.Millisecond), nil
		}
		return d, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse("2006-01-02", v); err == nil {
		if endOfDay {
			return t.Add(24*time.Hour - time.Millisecond), nil
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--%s: %q is not a time (RFC 3339, YYYY-MM-DD, today, now, or a duration like 24h)", name, v)
}
