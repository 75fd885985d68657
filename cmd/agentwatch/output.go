package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rivo/uniseg"
	"golang.org/x/term"

	"github.com/agentwatch/agentwatch/domain"
)

// printJSON writes v indented: the same shapes the HTTP API answers.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// style is how a command draws its tables: in colour or not, and how wide (0: no
// limit). On a terminal: its width and colour (unless NO_COLOR is set or TERM=dumb);
// elsewhere (a pipe, a file): no colour and no limit. COLUMNS sets the width anywhere.
type style struct {
	color bool
	width int
}

// set chooses the style for out and the --color mode (auto, always, never).
func (s *style) set(mode string, out io.Writer) error {
	f, isFile := out.(*os.File)
	tty := isFile && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
	switch mode {
	case "auto":
		s.color = tty && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
	case "always":
		s.color = true
	case "never":
		s.color = false
	default:
		return usagef("--color: must be auto, always or never, not %q", mode)
	}
	s.width = 0
	if tty {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
			s.width = w
		}
	}
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		s.width = n
	}
	return nil
}

// Colours of table cells (ANSI SGR parameters).
const (
	colorNone   = ""
	colorRed    = "31"
	colorGreen  = "32"
	colorYellow = "33"
	colorBlue   = "34"
	colorGrey   = "90"
)

// cell is one table cell: its text and colour.
type cell struct {
	text  string
	color string
}

// colored is a cell of text in color.
func colored(text, color string) cell { return cell{text: text, color: color} }

// table writes aligned columns that fit the style's width: when the rows are wider,
// the flexible columns (long free text: errors, reasons, ARNs) are cut first, with an
// ellipsis, then the others down to their headers. Line breaks and tabs inside a cell
// never break a row.
type table struct {
	w       io.Writer
	st      style
	headers []string
	rows    [][]cell
	// flex lists the flexible columns, the first cut first.
	flex     []int
	noHeader bool
}

// newTable starts a table with headers, drawn in the command's style.
func (g *globals) newTable(headers ...string) *table {
	return &table{w: g.out, st: g.style, headers: headers}
}

// flexible names the columns (by index) that are cut first to fit the width, the
// first of them before the second, and so on.
func (t *table) flexible(cols ...int) *table {
	t.flex = append(t.flex, cols...)
	return t
}

// headerless draws no header row (a list of fields).
func (t *table) headerless() *table {
	t.noHeader = true
	return t
}

// row adds a row of strings and cells.
func (t *table) row(cols ...any) {
	r := make([]cell, len(cols))
	for i, c := range cols {
		switch v := c.(type) {
		case cell:
			r[i] = v
		case string:
			r[i] = cell{text: v}
		default:
			r[i] = cell{text: fmt.Sprint(v)}
		}
		r[i].text = oneLine(r[i].text)
	}
	t.rows = append(t.rows, r)
}

// oneLine keeps a cell on one line: line breaks become "⏎", tabs spaces.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n\t\v\f") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.NewReplacer("\n", " ⏎ ", "\r", " ⏎ ", "\t", " ", "\v", " ", "\f", " ").Replace(s)
}

// gap is the space between two columns.
const gap = 2

// flush writes the table.
func (t *table) flush() error {
	n := len(t.headers)
	widths := make([]int, n)
	for i, h := range t.headers {
		widths[i] = uniseg.StringWidth(h)
	}
	for _, r := range t.rows {
		for i := 0; i < n && i < len(r); i++ {
			widths[i] = max(widths[i], uniseg.StringWidth(r[i].text))
		}
	}
	t.fit(widths)
	var b strings.Builder
	line := func(cells []cell, header bool) {
		b.Reset()
		for i := 0; i < n; i++ {
			var c cell
			if i < len(cells) {
				c = cells[i]
			}
			text := cut(c.text, widths[i])
			pad := widths[i] - uniseg.StringWidth(text)
			if i == n-1 {
				pad = 0 // no trailing spaces
			}
			color := c.color
			if header {
				color = "1"
			}
			if t.st.color && color != "" && text != "" {
				b.WriteString("\x1b[" + color + "m" + text + "\x1b[0m")
			} else {
				b.WriteString(text)
			}
			if i < n-1 {
				b.WriteString(strings.Repeat(" ", pad+gap))
			}
		}
		b.WriteByte('\n')
		_, _ = io.WriteString(t.w, strings.TrimRight(b.String(), " "))
	}
	hs := make([]cell, n)
	for i, h := range t.headers {
		hs[i] = cell{text: h}
	}
	if !t.noHeader {
		line(hs, true)
	}
	for _, r := range t.rows {
		line(r, false)
	}
	return nil
}

// minFlexWidth is how narrow a flexible column may become.
const minFlexWidth = 12

// fit shrinks widths until the row fits the style's width: the flexible columns in
// their order, each down to minFlexWidth, then the widest of any column down to its
// header (at least 4).
func (t *table) fit(widths []int) {
	if t.st.width <= 0 {
		return
	}
	total := func() int {
		s := gap * (len(widths) - 1)
		for _, w := range widths {
			s += w
		}
		return s
	}
	for _, c := range t.flex {
		if c >= len(widths) {
			continue
		}
		if over := total() - t.st.width; over > 0 && widths[c] > minFlexWidth {
			widths[c] = max(minFlexWidth, widths[c]-over)
		}
	}
	for total() > t.st.width {
		widest := -1
		for i, w := range widths {
			if w > max(4, min(uniseg.StringWidth(t.headers[i]), 8)) && (widest < 0 || w > widths[widest]) {
				widest = i
			}
		}
		if widest < 0 {
			return
		}
		widths[widest]--
	}
}

// cut shortens s to width display cells, with an ellipsis when it cuts.
func cut(s string, width int) string {
	if uniseg.StringWidth(s) <= width {
		return s
	}
	if width <= 1 {
		return "…"
	}
	var b strings.Builder
	w := 0
	g := uniseg.NewGraphemes(s)
	for g.Next() {
		cw := g.Width()
		if w+cw > width-1 {
			break
		}
		b.WriteString(g.Str())
		w += cw
	}
	return b.String() + "…"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// clockLayout is how tables show an instant: local time, with its zone.
const clockLayout = "2006-01-02 15:04:05 MST"

// shortTime renders an ISO timestamp in the local zone, saying which: "2024-11-04
// 10:30:01 UTC".
func shortTime(iso string) string {
	t, err := time.Parse(time.RFC3339Nano, iso)
	if err != nil {
		return orDash(iso)
	}
	return localTime(t)
}

// clockMillisLayout is how timelines show an event's instant: to the millisecond, as
// the journal keeps it and the History page's timeline shows it.
const clockMillisLayout = "2006-01-02 15:04:05.000 MST"

// eventTime renders an ISO timestamp of a journal event in the local zone, to the
// millisecond, saying which zone.
func eventTime(iso string) string {
	t, err := time.Parse(time.RFC3339Nano, iso)
	if err != nil {
		return orDash(iso)
	}
	return t.Local().Format(clockMillisLayout)
}

// localTime renders t in the local zone, saying which.
func localTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(clockLayout)
}

// humanDuration renders a duration as the History page does: "0.4s", "10s", "1m 05s",
// "2h 03m", growing units as needed.
func humanDuration(d time.Duration) string {
	if d < 0 {
		return "-" + humanDuration(-d)
	}
	s := d.Seconds()
	if s < 1 {
		return strings.TrimSuffix(strconv.FormatFloat(math.Round(s*10)/10, 'f', 1, 64), ".0") + "s"
	}
	total := int64(math.Round(s))
	switch {
	case total < 60:
		return fmt.Sprintf("%ds", total)
	case total < 3600:
		return fmt.Sprintf("%dm %02ds", total/60, total%60)
	}
	m := total / 60
	return fmt.Sprintf("%dh %02dm", m/60, m%60)
}

// humanDelta renders the time between two events as the History page does: "+120ms",
// "+1.2s", "+5m 41s".
func humanDelta(d time.Duration) string {
	ms := d.Milliseconds()
	switch {
	case ms < 0:
		return "-" + strings.TrimPrefix(humanDelta(-d), "+")
	case ms < 1000:
		return fmt.Sprintf("+%dms", ms)
	case ms < 60_000:
		return "+" + strings.TrimSuffix(strconv.FormatFloat(math.Round(float64(ms)/100)/10, 'f', 1, 64), ".0") + "s"
	}
	return "+" + humanDuration(d)
}

// statusCell is an execution status with its icon, coloured: green succeeded, yellow
// running, red failed or timed out, grey aborted.
func statusCell(status string) cell {
	switch status {
	case "SUCCEEDED":
		return colored("✓ "+status, colorGreen)
	case "RUNNING":
		return colored("● "+status, colorYellow)
	case "PENDING_REDRIVE":
		return colored("↻ "+status, colorYellow)
	case "FAILED", "TIMED_OUT":
		return colored("✗ "+status, colorRed)
	case "ABORTED":
		return colored("■ "+status, colorGrey)
	case "":
		return cell{text: "-"}
	}
	return cell{text: "? " + status}
}

// outcomeColor colours a diagnosis outcome: green completed, yellow in progress, red
// the failures.
func outcomeColor(outcome string) string {
	switch outcome {
	case "completed":
		return colorGreen
	case "in_progress":
		return colorYellow
	case "execution_only", "":
		return colorNone
	case "aborted":
		return colorGrey
	}
	return colorRed
}

// eventColor colours a journal status: red failures, green completions.
func eventColor(status string) string {
	switch {
	case strings.Contains(status, "FAILED"), status == "EXECUTION_TIMED_OUT":
		return colorRed
	case status == "AGENT_BACKGROUND_TASK_COMPLETED", status == "EXECUTION_SUCCEEDED":
		return colorGreen
	case strings.HasPrefix(status, "EXECUTION_"):
		return colorBlue
	}
	return colorNone
}

// parseTimeFlag reads a time flag in the vocabulary the API shares
// (domain.ParseTimeBound).
func parseTimeFlag(name, v string, upper bool) (time.Time, error) {
	return domain.ParseTimeBound("--"+name, v, time.Now(), upper)
}

// checkLimit refuses a --limit outside 1..max, naming the flag.
func checkLimit(name string, n, max int) error {
	if n < 1 || n > max {
		return usagef("--%s: must be between 1 and %d, not %d", name, max, n)
	}
	return nil
}
