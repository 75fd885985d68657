// Package display is how the agentwatch command shows things on a terminal: tables that
// fit its width and keep each row on one line, colour where it helps (on a terminal,
// unless NO_COLOR says not), instants in the local zone with its name, and durations as
// the History page writes them.
package display

import (
	"errors"
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
)

// ErrMode is a colour mode that is none of auto, always and never.
var ErrMode = errors.New("bad colour mode")

// Style is how a command draws its tables: in colour or not, and how wide (0: no
// limit). On a terminal: its width and colour (unless NO_COLOR is set or TERM=dumb);
// elsewhere (a pipe, a file): no colour and no limit. COLUMNS sets the width anywhere.
type Style struct {
	// Color draws cells in colour.
	Color bool
	// Width is the width tables fit in; 0: no limit.
	Width int
}

// Set chooses the style for out and a colour mode: auto, always or never.
func (s *Style) Set(mode string, out io.Writer) error {
	f, isFile := out.(*os.File)
	tty := isFile && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
	switch mode {
	case "auto":
		s.Color = tty && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
	case "always":
		s.Color = true
	case "never":
		s.Color = false
	default:
		return fmt.Errorf("%w: --color: must be auto, always or never, not %q", ErrMode, mode)
	}
	s.Width = 0
	if tty {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
			s.Width = w
		}
	}
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		s.Width = n
	}
	return nil
}

// Colours of table cells (ANSI SGR parameters).
const (
	None   = ""
	Red    = "31"
	Green  = "32"
	Yellow = "33"
	Blue   = "34"
	Grey   = "90"
)

// Cell is one table cell: its text and colour (an ANSI SGR parameter; "" for none).
type Cell struct {
	Text  string
	Color string
}

// Paint renders one cell outside a table, in colour when the style has it.
func (s Style) Paint(c Cell) string {
	if s.Color && c.Color != "" && c.Text != "" {
		return "\x1b[" + c.Color + "m" + c.Text + "\x1b[0m"
	}
	return c.Text
}

// Colored is a Cell of text in color.
func Colored(text, color string) Cell { return Cell{Text: text, Color: color} }

// Table writes aligned columns that fit the style's width: when the rows are wider,
// the flexible columns (long free text: errors, reasons, ARNs) are cut first, with an
// ellipsis, then the others down to their headers. Line breaks and tabs inside a cell
// never break a row.
type Table struct {
	w       io.Writer
	st      Style
	headers []string
	rows    [][]Cell
	// flex lists the flexible columns, the first cut first.
	flex     []int
	noHeader bool
}

// NewTable starts a table with headers, written to w in style st.
func NewTable(w io.Writer, st Style, headers ...string) *Table {
	return &Table{w: w, st: st, headers: headers}
}

// Flexible names the columns (by index) that are cut first to fit the width, the
// first of them before the second, and so on.
func (t *Table) Flexible(cols ...int) *Table {
	t.flex = append(t.flex, cols...)
	return t
}

// Headerless draws no header row (a list of fields).
func (t *Table) Headerless() *Table {
	t.noHeader = true
	return t
}

// Row adds a row of strings and cells.
func (t *Table) Row(cols ...any) {
	r := make([]Cell, len(cols))
	for i, c := range cols {
		switch v := c.(type) {
		case Cell:
			r[i] = v
		case string:
			r[i] = Cell{Text: v}
		default:
			r[i] = Cell{Text: fmt.Sprint(v)}
		}
		r[i].Text = OneLine(r[i].Text)
	}
	t.rows = append(t.rows, r)
}

// OneLine keeps a cell on one line: line breaks become "⏎", tabs spaces.
func OneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n\t\v\f") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.NewReplacer("\n", " ⏎ ", "\r", " ⏎ ", "\t", " ", "\v", " ", "\f", " ").Replace(s)
}

// gap is the space between two columns.
const gap = 2

// Flush writes the table.
func (t *Table) Flush() error {
	n := len(t.headers)
	widths := make([]int, n)
	for i, h := range t.headers {
		widths[i] = uniseg.StringWidth(h)
	}
	for _, r := range t.rows {
		for i := 0; i < n && i < len(r); i++ {
			widths[i] = max(widths[i], uniseg.StringWidth(r[i].Text))
		}
	}
	t.fit(widths)
	var b strings.Builder
	line := func(cells []Cell, header bool) {
		b.Reset()
		for i := 0; i < n; i++ {
			var c Cell
			if i < len(cells) {
				c = cells[i]
			}
			text := Cut(c.Text, widths[i])
			pad := widths[i] - uniseg.StringWidth(text)
			if i == n-1 {
				pad = 0 // no trailing spaces
			}
			color := c.Color
			if header {
				color = "1"
			}
			if t.st.Color && color != "" && text != "" {
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
	hs := make([]Cell, n)
	for i, h := range t.headers {
		hs[i] = Cell{Text: h}
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
func (t *Table) fit(widths []int) {
	if t.st.Width <= 0 {
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
		if over := total() - t.st.Width; over > 0 && widths[c] > minFlexWidth {
			widths[c] = max(minFlexWidth, widths[c]-over)
		}
	}
	for total() > t.st.Width {
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

// Cut shortens s to width display cells, with an ellipsis when it cuts.
func Cut(s string, width int) string {
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

// clockLayout is how tables show an instant: local time, with its zone.
const clockLayout = "2006-01-02 15:04:05 MST"

// Time renders an ISO timestamp in the local zone, saying which: "2024-11-04
// 10:30:01 UTC".
func Time(iso string) string {
	t, err := time.Parse(time.RFC3339Nano, iso)
	if err != nil {
		return dash(iso)
	}
	return Local(t)
}

// clockMillisLayout is how timelines show an event's instant: to the millisecond, as
// the journal keeps it and the History page's timeline shows it.
const clockMillisLayout = "2006-01-02 15:04:05.000 MST"

// EventTime renders an ISO timestamp of a journal event in the local zone, to the
// millisecond, saying which zone.
func EventTime(iso string) string {
	t, err := time.Parse(time.RFC3339Nano, iso)
	if err != nil {
		return dash(iso)
	}
	return t.Local().Format(clockMillisLayout)
}

// Local renders t in the local zone, saying which.
func Local(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(clockLayout)
}

// Duration renders a duration as the History page does: "0.4s", "10s", "1m 05s",
// "2h 03m", growing units as needed.
func Duration(d time.Duration) string {
	if d < 0 {
		return "-" + Duration(-d)
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

// Delta renders the time between two events as the History page does: "+120ms",
// "+1.2s", "+5m 41s".
func Delta(d time.Duration) string {
	ms := d.Milliseconds()
	switch {
	case ms < 0:
		return "-" + strings.TrimPrefix(Delta(-d), "+")
	case ms < 1000:
		return fmt.Sprintf("+%dms", ms)
	case ms < 60_000:
		return "+" + strings.TrimSuffix(strconv.FormatFloat(math.Round(float64(ms)/100)/10, 'f', 1, 64), ".0") + "s"
	}
	return "+" + Duration(d)
}

// Status is an execution status with its icon, coloured: green succeeded, yellow
// running, red failed or timed out, grey aborted.
func Status(status string) Cell {
	switch status {
	case "SUCCEEDED":
		return Colored("✓ "+status, Green)
	case "RUNNING":
		return Colored("● "+status, Yellow)
	case "PENDING_REDRIVE":
		return Colored("↻ "+status, Yellow)
	case "FAILED", "TIMED_OUT":
		return Colored("✗ "+status, Red)
	case "ABORTED":
		return Colored("■ "+status, Grey)
	case "":
		return Cell{Text: "-"}
	}
	return Cell{Text: "? " + status}
}

// OutcomeColor colours a diagnosis outcome: green completed, yellow in progress, red
// the failures.
func OutcomeColor(outcome string) string {
	switch outcome {
	case "completed":
		return Green
	case "in_progress":
		return Yellow
	case "execution_only", "":
		return None
	case "aborted":
		return Grey
	}
	return Red
}

// EventColor colours a journal status: red failures, green completions.
func EventColor(status string) string {
	switch {
	case strings.Contains(status, "FAILED"), status == "EXECUTION_TIMED_OUT":
		return Red
	case status == "AGENT_BACKGROUND_TASK_COMPLETED", status == "EXECUTION_SUCCEEDED":
		return Green
	case strings.HasPrefix(status, "EXECUTION_"):
		return Blue
	}
	return None
}

// dash is s, or "-" when it is empty.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
