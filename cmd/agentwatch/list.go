package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/projections/executionindex"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// withQueries runs fn with the query side of the selected backend.
func (g *globals) withQueries(cmd *cobra.Command, fn func(ctx context.Context, q *app.Queries) error) error {
	var q *app.Queries
	return g.withApp(cmd.Context(), app.Config{}, []fx.Option{fx.Populate(&q)}, func(ctx context.Context) error {
		return fn(ctx, q)
	})
}

func newExecutionsCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "executions", Short: "The execution index"}
	var q executionindex.Query
	var from, to string
	var all bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List executions, newest first (by agent or status, over a date range)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if q.From, err = parseTimeFlag("from", from, false); err != nil {
				return err
			}
			if q.To, err = parseTimeFlag("to", to, true); err != nil {
				return err
			}
			q.Status = strings.ToUpper(q.Status)
			return g.withQueries(cmd, func(ctx context.Context, qs *app.Queries) error {
				page, err := qs.Executions(ctx, q)
				if err != nil {
					return err
				}
				for all && page.NextCursor != "" {
					next := q
					next.Cursor = page.NextCursor
					more, err := qs.Executions(ctx, next)
					if err != nil {
						return err
					}
					page.Items = append(page.Items, more.Items...)
					page.NextCursor = more.NextCursor
				}
				if g.asJSON {
					return printJSON(g.out, page)
				}
				t := newTable(g.out, "", "STATUS", "AGENT", "EXECUTION", "SESSION", "STARTED", "DURATION", "ERROR")
				for _, it := range page.Items {
					dur := "-"
					if it.DurationSeconds != nil {
						dur = humanDuration(time.Duration(*it.DurationSeconds * float64(time.Second)))
					}
					t.row(statusIcon(it.Status), it.Status, it.AgentName, it.ExecutionName, orDash(it.SessionID),
						shortTime(it.StartDate), dur, orDash(it.Error))
				}
				if err := t.flush(); err != nil {
					return err
				}
				if page.NextCursor != "" {
					fmt.Fprintf(g.out, "\nmore: --cursor %s (or --all)\n", page.NextCursor)
				}
				return nil
			})
		},
	}
	f := list.Flags()
	f.StringVar(&q.AgentName, "agent", "", "only this agent's executions")
	f.StringVar(&q.Status, "status", "", "only this status: RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE")
	f.StringVar(&from, "from", "", "start date at or after (RFC 3339, YYYY-MM-DD, today, or a duration ago like 24h)")
	f.StringVar(&to, "to", "", "start date at or before")
	f.IntVar(&q.Limit, "limit", executionindex.DefaultLimit, "page size")
	f.StringVar(&q.Cursor, "cursor", "", "continue from a previous page")
	f.BoolVar(&all, "all", false, "follow every page")
	f.BoolVar(&g.asJSON, "json", false, "print JSON, as GET /v1/executions answers")
	show := &cobra.Command{
		Use:   "show ARN",
		Short: "Show one execution",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withQueries(cmd, func(ctx context.Context, qs *app.Queries) error {
				it, err := qs.Execution(ctx, args[0])
				if err != nil {
					return err
				}
				return printJSON(g.out, it)
			})
		},
	}
	cmd.AddCommand(list, show)
	return cmd
}

func newSessionsCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "sessions", Short: "Session timelines from the journal"}
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show a session's timeline, the time between events, and its diagnosis",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withQueries(cmd, func(ctx context.Context, qs *app.Queries) error {
				v, err := qs.Session(ctx, args[0])
				if err != nil {
					return err
				}
				if g.asJSON {
					return printJSON(g.out, v)
				}
				fmt.Fprintf(g.out, "Session    %s\n", v.SessionID)
				fmt.Fprintf(g.out, "Agent      %s\n", orDash(v.AgentName))
				for _, x := range v.Executions {
					fmt.Fprintf(g.out, "Execution  %s %s  %s\n", statusIcon(x.Status), x.Status, x.ExecutionArn)
				}
				fmt.Fprintln(g.out)
				t := newTable(g.out, "TIME", "+PREV", "+START", "STATUS", "ERROR")
				for _, e := range v.Timeline {
					st := string(e.Status)
					if !e.Known {
						st += " (unknown status)"
					}
					t.row(shortTime(e.Timestamp), "+"+humanDuration(time.Duration(e.SincePreviousMs)*time.Millisecond),
						humanDuration(time.Duration(e.SinceStartMs)*time.Millisecond), st, orDash(e.ErrorMessage))
				}
				if err := t.flush(); err != nil {
					return err
				}
				fmt.Fprintf(g.out, "\nDiagnosis  %s\n", v.Diagnosis.Summary)
				if v.Diagnosis.Scenario > 0 {
					fmt.Fprintf(g.out, "Scenario   %d (seed 002)\n", v.Diagnosis.Scenario)
				}
				for _, a := range v.Alerts {
					fmt.Fprintf(g.out, "Alert      %s raised %s (%s)\n", a.Kind, a.RaisedAt.Format(time.RFC3339), a.State)
				}
				return nil
			})
		},
	}
	show.Flags().BoolVar(&g.asJSON, "json", false, "print JSON, as GET /v1/sessions/{id} answers")
	events := &cobra.Command{
		Use:   "events ID",
		Short: "Print a session's journal items in seed-002 form",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withQueries(cmd, func(ctx context.Context, qs *app.Queries) error {
				items, err := qs.SessionEvents(ctx, args[0], app.SessionEventsQuery{})
				if err != nil {
					return err
				}
				return printJSON(g.out, map[string]any{"items": items})
			})
		},
	}
	cmd.AddCommand(show, events)
	return cmd
}

func newStatsCommand(g *globals) *cobra.Command {
	var q app.StatsQuery
	var from, to, gran string
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Per-agent statistics: sessions, outcomes, failures by stage, duration quantiles, top errors",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if q.From, err = parseTimeFlag("from", from, false); err != nil {
				return err
			}
			if q.To, err = parseTimeFlag("to", to, true); err != nil {
				return err
			}
			switch gran {
			case "day":
				q.Granularity = "DAY#"
			case "hour":
				q.Granularity = "HOUR#"
			default:
				return fmt.Errorf("--granularity: must be hour or day, not %q", gran)
			}
			return g.withQueries(cmd, func(ctx context.Context, qs *app.Queries) error {
				views, err := qs.Stats(ctx, q)
				if err != nil {
					return err
				}
				if g.asJSON {
					return printJSON(g.out, map[string]any{"items": views})
				}
				t := newTable(g.out, "AGENT", "SESSIONS", "COMPLETED", "FAILED", "STUCK/MISSING", "P50", "P90", "P99", "TOP ERROR")
				for _, v := range views {
					s := v.Total
					failed := s.Failures["invocation"] + s.Failures["entrypoint"] + s.Failures["background_task"]
					top := "-"
					if len(s.TopErrors) > 0 {
						top = fmt.Sprintf("%s (%d)", s.TopErrors[0].Class, s.TopErrors[0].Count)
					}
					t.row(v.AgentName, strconv.FormatInt(s.Started, 10), strconv.FormatInt(s.Outcomes["completed"], 10),
						strconv.FormatInt(failed, 10), strconv.FormatInt(s.Failures["missing_completion"], 10),
						secs(s.Duration.P50, s.Duration.Count), secs(s.Duration.P90, s.Duration.Count), secs(s.Duration.P99, s.Duration.Count), top)
				}
				return t.flush()
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.AgentName, "agent", "", "only this agent")
	f.StringVar(&gran, "granularity", "day", "bucket size: hour or day")
	f.StringVar(&from, "from", "", "buckets starting at or after")
	f.StringVar(&to, "to", "", "buckets starting at or before")
	f.BoolVar(&g.asJSON, "json", false, "print JSON")
	return cmd
}

func secs(v float64, n int64) string {
	if n == 0 {
		return "-"
	}
	return humanDuration(time.Duration(v * float64(time.Second)))
}

func newStuckCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stuck",
		Short: "Sessions the stuck detector watches: open sessions, their stage and how long since their last event",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withQueries(cmd, func(ctx context.Context, qs *app.Queries) error {
				es, err := qs.Stuck(ctx)
				if err != nil {
					return err
				}
				if g.asJSON {
					return printJSON(g.out, map[string]any{"items": es})
				}
				now := time.Now()
				t := newTable(g.out, "SESSION", "AGENT", "STAGE", "LAST STATUS", "SINCE LAST EVENT", "EXECUTION", "OUTCOME")
				for _, e := range es {
					if e.Closed {
						continue
					}
					t.row(e.SessionID, e.Agent, string(e.Stage), string(e.LastStatus),
						humanDuration(now.Sub(time.UnixMilli(e.LastEventMs)).Round(time.Second)), orDash(string(e.ExecStatus)), string(e.Outcome))
				}
				return t.flush()
			})
		},
	}
	cmd.Flags().BoolVar(&g.asJSON, "json", false, "print JSON, as GET /v1/stuck answers")
	return cmd
}

func newAlertsCommand(g *globals) *cobra.Command {
	var f app.AlertFilter
	cmd := &cobra.Command{
		Use:   "alerts",
		Short: "Alerts raised by the stuck detector",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withQueries(cmd, func(ctx context.Context, qs *app.Queries) error {
				as, err := qs.Alerts(ctx, f)
				if err != nil {
					return err
				}
				if g.asJSON {
					return printJSON(g.out, map[string]any{"items": as})
				}
				t := newTable(g.out, "RAISED", "KIND", "SESSION", "AGENT", "STAGE", "OVERDUE", "STATE", "RESOLVED", "ACKED")
				for _, a := range as {
					resolved, acked := "-", "-"
					if a.ResolvedAt != nil {
						resolved = a.ResolvedAt.Format(time.RFC3339)
					}
					if a.AckedAt != nil {
						acked = a.AckedBy
					}
					t.row(a.RaisedAt.Format(time.RFC3339), string(a.Kind), a.SessionID, a.AgentName, orDash(string(a.Stage)),
						orDash(a.OverdueBy), string(a.State), resolved, acked)
				}
				return t.flush()
			})
		},
	}
	cmd.Flags().StringVar(&f.State, "state", "all", "open (neither acknowledged nor resolved), acknowledged, resolved or all")
	cmd.Flags().IntVar(&f.Limit, "limit", 100, "at most this many")
	cmd.Flags().BoolVar(&g.asJSON, "json", false, "print JSON, as GET /v1/alerts answers")
	var by string
	ack := &cobra.Command{
		Use:   "ack SESSION KIND",
		Short: "Acknowledge an alert",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withQueries(cmd, func(ctx context.Context, qs *app.Queries) error {
				if err := qs.AckAlert(ctx, args[0], stuck.Kind(args[1]), by); err != nil {
					return err
				}
				fmt.Fprintf(g.out, "acknowledged %s alert of session %s\n", args[1], args[0])
				return nil
			})
		},
	}
	ack.Flags().StringVar(&by, "by", envOr("USER", "cli"), "who acknowledges")
	cmd.AddCommand(ack)
	return cmd
}

func newQuarantineCommand(g *globals) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "quarantine",
		Short: "Poison inputs set aside, with the reason each was rejected",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withQueries(cmd, func(ctx context.Context, qs *app.Queries) error {
				items, total, err := qs.Quarantined(ctx, limit)
				if err != nil {
					return err
				}
				if g.asJSON {
					return printJSON(g.out, map[string]any{"items": items, "total": total})
				}
				t := newTable(g.out, "ID", "AT", "SOURCE", "KEY", "REASON")
				for _, q := range items {
					t.row(strconv.FormatInt(q.ID, 10), q.At.Format(time.RFC3339), q.Source, orDash(q.Key), q.Reason)
				}
				if err := t.flush(); err != nil {
					return err
				}
				fmt.Fprintf(g.out, "\n%d quarantined in all\n", total)
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many")
	cmd.Flags().BoolVar(&g.asJSON, "json", false, "print JSON")
	return cmd
}
