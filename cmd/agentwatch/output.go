package main

import (
	"encoding/json"
	"errors"
	"io"
	"time"

	"github.com/agentwatch/agentwatch/cmd/agentwatch/display"
	"github.com/agentwatch/agentwatch/domain"
)

// printJSON writes v indented: the same shapes the HTTP API answers.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
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

// newTable starts a table in the command's style, on its output.
func (g *globals) newTable(headers ...string) *display.Table {
	return display.NewTable(g.out, g.style, headers...)
}

// setStyle chooses the command's style for its output and --color.
func (g *globals) setStyle(out io.Writer) error {
	if err := g.style.Set(g.color, out); err != nil {
		if errors.Is(err, display.ErrMode) {
			return usage(err)
		}
		return err
	}
	return nil
}
