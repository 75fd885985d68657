package display_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/rivo/uniseg"
	"github.com/stretchr/testify/assert"

	"github.com/agentwatch/agentwatch/cmd/agentwatch/display"
)

func TestDurationsAsTheHistoryPage(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{400 * time.Millisecond, "0.4s"}, {0, "0s"}, {10 * time.Second, "10s"}, {59600 * time.Millisecond, "1m 00s"},
		{65 * time.Second, "1m 05s"}, {2*time.Hour + 3*time.Minute + 20*time.Second, "2h 03m"}, {-10 * time.Second, "-10s"},
	} {
		assert.Equal(t, tt.want, display.Duration(tt.d), "%v", tt.d)
	}
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{120 * time.Millisecond, "+120ms"}, {1200 * time.Millisecond, "+1.2s"}, {5*time.Minute + 41*time.Second, "+5m 41s"},
	} {
		assert.Equal(t, tt.want, display.Delta(tt.d), "%v", tt.d)
	}
}

func TestTableFitsAndKeepsRowsOnOneLine(t *testing.T) {
	var b bytes.Buffer
	tb := display.NewTable(&b, display.Style{Width: 40}, "ID", "NAME", "REASON").Flexible(2, 1)
	tb.Row("1", "a-long-name-that-is-long", "first line\nsecond line\tand a tab")
	tb.Row("22", "short", display.Colored("ok", display.Green))
	tb.Row("3", "名前の長いエージェント名前", "😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀")
	_ = tb.Flush()
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	assert.Len(t, lines, 4)
	for _, l := range lines {
		assert.LessOrEqual(t, uniseg.StringWidth(l), 40, "%q", l)
		assert.NotContains(t, l, "\x1b", "no colour in this style")
	}
	assert.Contains(t, lines[1], "…")
	assert.Equal(t, "first line ⏎ second line and a tab", display.OneLine("first line\r\nsecond line\tand a tab"))
}

func TestColourOnlyWhenTheStyleHasIt(t *testing.T) {
	var b bytes.Buffer
	tb := display.NewTable(&b, display.Style{Color: true}, "STATUS")
	tb.Row(display.Status("FAILED"))
	_ = tb.Flush()
	assert.Contains(t, b.String(), "\x1b[31m✗ FAILED\x1b[0m")
	assert.Equal(t, "x", display.Style{}.Paint(display.Colored("x", display.Red)))
}
