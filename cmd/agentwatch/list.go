package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/cmd/agentwatch/display"
	"github.com/agentwatch/agentwatch/projections/agentstats"
	"github.com/agentwatch/agentwatch/projections/executionindex"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// List limits of the commands that are not the execution index (as the API's).
const (
	maxListLimit   = 1000
	maxEventsLimit = 10000
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
	var all, wide bool
	list := needsDatabase(&cobra.Command{
		Use:   "list",
		Short: "List executions, newest first (by agent or status, over a date range)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if q.From, err = parseTimeFlag("from", from, false); err != nil {
				return err
			}
			if q.To, err = parseTimeFlag("to", to, true); err != nil {
				return err
			}
			if err := checkLimit("limit", q.Limit, executionindex.MaxLimit); err != nil {
				return err
			}
			q.Status = strings.ToUpper(q.Status)
			check := q
			if err := check.Normalize(); err != nil {
				return err // a usage error, naming the flag
			}
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
				headers := []string{"STATUS", "AGENT", "EXECUTION", "SESSION", "STARTED", "DURATION", "ERROR"}
				if wide {
					headers = append(headers, "ARN")
				}
				t := g.newTable(headers...).Flexible(6, 7, 3, 2, 1)
				for _, it := range page.Items {
					row := []any{display.Status(it.Status), it.AgentName, it.ExecutionName, orDash(it.SessionID),
						display.Time(it.StartDate), seconds(it.DurationSeconds), errCell(it.Error)}
					if wide {
						row = append(row, it.ExecutionArn)
					}
					t.Row(row...)
				}
				if err := t.Flush(); err != nil {
					return err
				}
				if page.NextCursor != "" {
					fmt.Fprintf(g.out, "\nmore: --cursor %s (or --all)\n", page.NextCursor)
				}
				return nil
			})
		},
	})
	f := list.Flags()
	f.StringVar(&q.AgentName, "agent", "", "only this agent's executions")
	f.StringVar(&q.Status, "status", "", "only this status: RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE")
	f.StringVar(&from, "from", "", "started at or after: RFC 3339, YYYY-MM-DD, today, yesterday, now, or a duration ago (24h, 7d)")
	f.StringVar(&to, "to", "", "started at or before (the same vocabulary; a date is its whole day)")
	f.IntVar(&q.Limit, "limit", executionindex.DefaultLimit, fmt.Sprintf("page size, 1 to %d", executionindex.MaxLimit))
	f.StringVar(&q.Cursor, "cursor", "", "continue from a previous page")
	f.BoolVar(&all, "all", false, "follow every page")
	f.BoolVar(&wide, "wide", false, "also show each execution's ARN")
	f.BoolVar(&g.asJSON, "json", false, "print JSON, as GET /v1/executions answers")
	show := needsDatabase(&cobra.Command{
		Use:   "show ARN|NAME|SESSION",
		Short: "Show an execution, found by its ARN, its name or its session id",
		Long: "show finds the execution an ARN names; else the executions of a session id; else the executions\n" +
			"of that name (a name is unique per state machine). --json prints the item as GET\n" +
			"/v1/executions/{arn} answers it, or {\"items\": [...]} when several match.",
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withQueries(cmd, func(ctx context.Context, qs *app.Queries) error {
				items, err := qs.LookupExecutions(ctx, a[0])
				if err != nil {
					return err
				}
				if g.asJSON {
					if len(items) == 1 {
						return printJSON(g.out, items[0])
					}
					return printJSON(g.out, map[string]any{"items": items})
				}
				for i, it := range items {
					if i > 0 {
						fmt.Fprintln(g.out)
					}
					g.printExecution(it)
				}
				return nil
			})
		},
	})
	show.Flags().BoolVar(&g.asJSON, "json", false, "print JSON, as GET /v1/executions/{arn} answers")
	cmd.AddCommand(list, show)
	return cmd
}

// printExecution prints one execution as a list of fields.
func (g *globals) printExecution(it executionindex.Item) {
	t := g.newTable("", "").Headerless().Flexible(1)
	add := func(k string, v any) { t.Row(k, v) }
	add("Execution", it.ExecutionName)
	add("ARN", it.ExecutionArn)
	add("Status", display.Status(it.Status))
	add("Agent", it.AgentName)
	add("Session", orDash(it.SessionID))
	add("State machine", orDash(it.StateMachineArn))
	add("Started", display.Time(it.StartDate))
	add("Stopped", display.Time(it.StopDate))
	add("Duration", seconds(it.DurationSeconds))
	if it.RedriveCount > 0 {
		add("Redrives", strconv.Itoa(it.RedriveCount))
	}
	if it.Error != "" || it.Cause != "" {
		add("Error", errCell(it.Error))
		add("Cause", orDash(it.Cause))
	}
	add("Last event", display.Time(it.LastEventAt))
	_ = t.Flush()
}

// errCell is an error message in red, or a plain "-" when there is none.
func errCell(msg string) display.Cell {
	if msg == "" {
		return display.Cell{Text: "-"}
	}
	return display.Colored(msg, display.Red)
}

// seconds renders an optional duration in seconds.
func seconds(s *float64) string {
	if s == nil {
		return "-"
	}
	return display.Duration(time.Duration(*s * float64(time.Second)))
}

func newSessionsCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "sessions", Short: "Session timelines from the journal"}
	show := needsDatabase(&cobra.Command{
		Use:   "show ID",
		Short: "Show a session's timeline, the time between events, and its diagnosis",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withQueries(cmd, func(ctx context.Context, qs *app.Queries) error {
				v, err := qs.Session(ctx, a[0])
				if err != nil {
					return err
				}
				if g.asJSON {
					return printJSON(g.out, v)
				}
				g.printSession(v)
				return nil
			})
		},
	})
	show.Flags().BoolVar(&g.asJSON, "json", false, "print JSON, as GET /v1/sessions/{id} answers")

	var eq app.EventsQuery
	var order, statuses, after string
	var failures bool
	events := needsDatabase(&cobra.Command{
		Use:   "events ID",
		Short: "A session's journal items, with seed 002's queries: order, by status, failures, latest N, since a time",
		Long: "events lists a session's journal items, oldest first, with the queries of the journaling guide:\n" +
			"  --order desc                       newest first\n" +
			"  --status AGENT_BACKGROUND_TASK_COMPLETED[,...]   only these statuses\n" +
			"  --failures                         only failure events (statuses containing FAILED)\n" +
			"  --order desc --limit 10            the latest 10\n" +
			"  --after 5m --order desc            what happened in the last 5 minutes (monitoring)\n" +
			"They are GET /v1/sessions/{id}/events's order, status, contains=FAILED, limit and after.\n" +
			"A session the journal does not know exits 3.",
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			switch strings.ToLower(order) {
			case "asc", "oldest":
				eq.Descending = false
			case "desc", "newest":
				eq.Descending = true
			default:
				return usagef("--order: must be asc or desc, not %q", order)
			}
			eq.Statuses = app.StatusList(statuses)
			if failures {
				eq.StatusContains = "FAILED"
			}
			var err error
			if eq.After, err = parseTimeFlag("after", after, false); err != nil {
				return err
			}
			if cmd.Flags().Changed("limit") {
				if err := checkLimit("limit", eq.Limit, maxEventsLimit); err != nil {
					return err
				}
			}
			return g.withQueries(cmd, func(ctx context.Context, qs *app.Queries) error {
				items, err := qs.SessionEvents(ctx, a[0], eq)
				if err != nil {
					return err
				}
				if g.asJSON {
					if items == nil {
						items = []app.AnsweredItem{}
					}
					return printJSON(g.out, map[string]any{"items": items})
				}
				t := g.newTable("TIME", "STATUS", "ERROR / EXECUTION").Flexible(2)
				for _, it := range items {
					detail := it.ErrorMessage
					if detail == "" && it.ExecutionArn != "" {
						detail = it.ExecutionArn
					}
					t.Row(display.EventTime(it.Timestamp), display.Colored(it.Status, display.EventColor(it.Status)), orDash(detail))
				}
				if err := t.Flush(); err != nil {
					return err
				}
				fmt.Fprintf(g.out, "\n%s\n", plural(len(items), "event"))
				return nil
			})
		},
	})
	ef := events.Flags()
	ef.StringVar(&order, "order", "asc", "asc (oldest first) or desc (newest first)")
	ef.StringVar(&statuses, "status", "", "only these statuses, comma-separated")
	ef.BoolVar(&failures, "failures", false, "only failure events (statuses containing FAILED)")
	ef.StringVar(&after, "after", "", "only events after this time: RFC 3339, YYYY-MM-DD, today, yesterday, now, or a duration ago (5m, 24h)")
	ef.IntVar(&eq.Limit, "limit", 0, fmt.Sprintf("at most this many, 1 to %d, after the order (default: all)", maxEventsLimit))
	ef.BoolVar(&g.asJSON, "json", false, "print JSON, as GET /v1/sessions/{id}/events answers")
	cmd.AddCommand(show, events)
	return cmd
}

// printSession prints a session's executions, timeline and diagnosis.
func (g *globals) printSession(v app.SessionView) {
	fmt.Fprintf(g.out, "Session    %s\n", v.SessionID)
	fmt.Fprintf(g.out, "Agent      %s\n", orDash(v.AgentName))
	for _, x := range v.Executions {
		fmt.Fprintf(g.out, "Execution  %s  %s\n", g.style.Paint(display.Status(x.Status)), x.ExecutionArn)
	}
	fmt.Fprintln(g.out)
	t := g.newTable("TIME", "+PREV", "+START", "STATUS", "ERROR").Flexible(4)
	for _, e := range v.Timeline {
		st := string(e.Status)
		if !e.Known {
			st += " (unknown status)"
		}
		t.Row(display.EventTime(e.Timestamp), display.Delta(time.Duration(e.SincePreviousMs)*time.Millisecond),
			display.Duration(time.Duration(e.SinceStartMs)*time.Millisecond), display.Colored(st, display.EventColor(string(e.Status))),
			errCell(e.ErrorMessage))
	}
	_ = t.Flush()
	d := v.Diagnosis
	fmt.Fprintf(g.out, "\nDiagnosis  %s\n", g.style.Paint(display.Colored(d.Summary, display.OutcomeColor(string(d.Outcome)))))
	if d.Scenario > 0 {
		fmt.Fprintf(g.out, "Scenario   %d of the journaling guide\n", d.Scenario)
	}
	for _, a := range v.Alerts {
		fmt.Fprintf(g.out, "Alert      %s raised %s (%s)\n", a.Kind, display.Local(a.RaisedAt), a.State)
	}
}

func newStatsCommand(g *globals) *cobra.Command {
	var q app.StatsQuery
	var from, to, gran string
	cmd := needsDatabase(&cobra.Command{
		Use:   "stats",
		Short: "Per-agent statistics per hour or day: sessions, outcomes, failures by stage, duration quantiles, top errors",
		Args:  args(cobra.NoArgs),
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
				q.Granularity = agentstats.DayPrefix
			case "hour":
				q.Granularity = agentstats.HourPrefix
			default:
				return usagef("--granularity: must be hour or day, not %q", gran)
			}
			return g.withQueries(cmd, func(ctx context.Context, qs *app.Queries) error {
				views, err := qs.Stats(ctx, q)
				if err != nil {
					return err
				}
				if g.asJSON {
					return printJSON(g.out, map[string]any{"items": views})
				}
				for i, v := range views {
					if i > 0 {
						fmt.Fprintln(g.out)
					}
					g.printStats(v)
				}
				if len(views) == 0 {
					fmt.Fprintln(g.out, "no statistics in this range")
				}
				return nil
			})
		},
	})
	f := cmd.Flags()
	f.StringVar(&q.AgentName, "agent", "", "only this agent")
	f.StringVar(&gran, "granularity", "day", "bucket size: hour or day")
	f.StringVar(&from, "from", "", "buckets at or after: RFC 3339, YYYY-MM-DD, today, yesterday, now, or a duration ago (24h, 7d)")
	f.StringVar(&to, "to", "", "buckets at or before (the same vocabulary)")
	f.BoolVar(&g.asJSON, "json", false, "print JSON, as GET /v1/stats answers")
	return cmd
}

// failureStages are the failure counters of the stats, in the lifecycle's order.
var failureStages = []struct{ key, name string }{
	{"invocation", "invocation"}, {"entrypoint", "entrypoint"}, {"background_task", "background task"},
	{"missing_completion", "missing completion"},
}

// printStats prints one agent's buckets and their total, with failures by stage and
// the top errors.
func (g *globals) printStats(v app.AgentStatsView) {
	fmt.Fprintf(g.out, "Agent %s, per %s\n", v.AgentName, v.Granularity)
	headers := []string{strings.ToUpper(v.Granularity), "SESSIONS", "COMPLETED", "FAILED", "MISSING", "P50", "P90", "P99", "TOP ERROR"}
	t := g.newTable(headers...).Flexible(8)
	row := func(label string, s agentstats.Stats, total bool) {
		failed := s.Failures["invocation"] + s.Failures["entrypoint"] + s.Failures["background_task"]
		top := "-"
		if len(s.TopErrors) > 0 {
			top = fmt.Sprintf("%s (%d)", s.TopErrors[0].Class, s.TopErrors[0].Count)
		}
		first := display.Cell{Text: label}
		if total {
			first.Color = "1"
		}
		t.Row(first, strconv.FormatInt(s.Started, 10), display.Colored(strconv.FormatInt(s.Outcomes["completed"], 10), display.Green),
			display.Colored(strconv.FormatInt(failed, 10), display.Red), strconv.FormatInt(s.Failures["missing_completion"], 10),
			secs(s.Duration.P50, s.Duration.Count), secs(s.Duration.P90, s.Duration.Count), secs(s.Duration.P99, s.Duration.Count), top)
	}
	for _, b := range v.Buckets {
		row(bucketLabel(b.Bucket), b, false)
	}
	row("total", v.Total, true)
	_ = t.Flush()
	var stages []string
	for _, st := range failureStages {
		stages = append(stages, fmt.Sprintf("%s %d", st.name, v.Total.Failures[st.key]))
	}
	fmt.Fprintf(g.out, "Failures by stage: %s\n", strings.Join(stages, ", "))
	if len(v.Total.TopErrors) > 0 {
		var errs []string
		for _, e := range v.Total.TopErrors {
			errs = append(errs, fmt.Sprintf("%s (%d)", display.OneLine(e.Class), e.Count))
		}
		fmt.Fprintf(g.out, "Top errors: %s\n", strings.Join(errs, "; "))
	}
}

// bucketLabel renders a stats bucket: "2024-11-04" for a day, "2024-11-04 10:00 UTC"
// for an hour (buckets are UTC).
func bucketLabel(bucket string) string {
	if h, ok := strings.CutPrefix(bucket, agentstats.HourPrefix); ok {
		if t, err := time.Parse("2006-01-02T15", h); err == nil {
			return t.Format("2006-01-02 15:04") + " UTC"
		}
		return h
	}
	return strings.TrimPrefix(bucket, agentstats.DayPrefix)
}

func secs(v float64, n int64) string {
	if n == 0 {
		return "-"
	}
	return display.Duration(time.Duration(v * float64(time.Second)))
}

func newStuckCommand(g *globals) *cobra.Command {
	cmd := needsDatabase(&cobra.Command{
		Use:   "stuck",
		Short: "Sessions the stuck detector watches: open sessions, their stage and how long since their last event",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withQueries(cmd, func(ctx context.Context, qs *app.Queries) error {
				var es []stuck.Entry
				for cursor := ""; ; {
					page, err := qs.Stuck(ctx, cursor, executionindex.MaxLimit)
					if err != nil {
						return err
					}
					es = append(es, page.Items...)
					if cursor = page.NextCursor; cursor == "" {
						break
					}
				}
				if g.asJSON {
					return printJSON(g.out, map[string]any{"items": es})
				}
				sort.SliceStable(es, func(i, j int) bool { return es[i].LastEventMs < es[j].LastEventMs })
				now := time.Now()
				t := g.newTable("SESSION", "AGENT", "STAGE", "LAST STATUS", "SILENT FOR", "EXECUTION", "OUTCOME").Flexible(0)
				for _, e := range es {
					t.Row(e.SessionID, e.Agent, string(e.Stage), display.Colored(string(e.LastStatus), display.EventColor(string(e.LastStatus))),
						display.Duration(now.Sub(time.UnixMilli(e.LastEventMs)).Round(time.Second)), display.Status(string(e.ExecStatus)),
						display.Colored(string(e.Outcome), display.OutcomeColor(string(e.Outcome))))
				}
				return t.Flush()
			})
		},
	})
	cmd.Flags().BoolVar(&g.asJSON, "json", false, "print JSON, as GET /v1/stuck answers")
	return cmd
}

func newAlertsCommand(g *globals) *cobra.Command {
	var f app.AlertFilter
	cmd := needsDatabase(&cobra.Command{
		Use:   "alerts",
		Short: "Alerts raised by the stuck detector",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch f.State {
			case "open", "resolved", "all":
			default:
				return usagef("--state: must be open, resolved or all, not %q", f.State)
			}
			if err := checkLimit("limit", f.Limit, maxListLimit); err != nil {
				return err
			}
			return g.withQueries(cmd, func(ctx context.Context, qs *app.Queries) error {
				as, err := qs.Alerts(ctx, f)
				if err != nil {
					return err
				}
				if g.asJSON {
					return printJSON(g.out, map[string]any{"items": as})
				}
				t := g.newTable("RAISED", "KIND", "SESSION", "AGENT", "STAGE", "OVERDUE", "STATE", "RESOLVED", "ACKED BY").Flexible(2)
				for _, a := range as {
					resolved, acked := "-", "-"
					if a.ResolvedAt != nil {
						resolved = display.Local(*a.ResolvedAt)
					}
					if a.AckedAt != nil {
						acked = a.AckedBy
					}
					kind := display.Colored(string(a.Kind), display.Red)
					if a.Kind == stuck.KindRecovered {
						kind.Color = display.Green
					}
					t.Row(display.Local(a.RaisedAt), kind, a.SessionID, a.AgentName, orDash(string(a.Stage)),
						orDash(a.OverdueBy), string(a.State), resolved, acked)
				}
				return t.Flush()
			})
		},
	})
	cmd.Flags().StringVar(&f.State, "state", "all", "open (neither acknowledged nor resolved), acknowledged, resolved or all")
	cmd.Flags().IntVar(&f.Limit, "limit", 100, fmt.Sprintf("at most this many, 1 to %d", maxListLimit))
	cmd.Flags().BoolVar(&g.asJSON, "json", false, "print JSON, as GET /v1/alerts answers")
	var by string
	ack := needsDatabase(&cobra.Command{
		Use:   "ack SESSION KIND",
		Short: "Acknowledge an alert",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if stuck.Kind(a[1]).Bit() == 0 {
				return usagef("KIND: must be one of %s, not %q", kindList(), a[1])
			}
			return g.withQueries(cmd, func(ctx context.Context, qs *app.Queries) error {
				if err := qs.AckAlert(ctx, a[0], stuck.Kind(a[1]), by); err != nil {
					return err
				}
				fmt.Fprintf(g.out, "acknowledged the %s alert of session %s\n", a[1], a[0])
				return nil
			})
		},
	})
	ack.Flags().StringVar(&by, "by", envOr("USER", "cli"), "who acknowledges")
	cmd.AddCommand(ack)
	return cmd
}

// kindList names the alert kinds.
func kindList() string {
	names := make([]string, len(stuck.Kinds))
	for i, k := range stuck.Kinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

func newQuarantineCommand(g *globals) *cobra.Command {
	var limit int
	cmd := needsDatabase(&cobra.Command{
		Use:   "quarantine",
		Short: "Poison inputs set aside, with the reason each was rejected",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkLimit("limit", limit, maxListLimit); err != nil {
				return err
			}
			return g.withQueries(cmd, func(ctx context.Context, qs *app.Queries) error {
				items, total, err := qs.Quarantined(ctx, limit)
				if err != nil {
					return err
				}
				if g.asJSON {
					return printJSON(g.out, map[string]any{"items": items, "total": total})
				}
				t := g.newTable("ID", "AT", "SOURCE", "KEY", "REASON").Flexible(3, 4)
				for _, q := range items {
					t.Row(strconv.FormatInt(q.ID, 10), display.Local(q.At), q.Source, orDash(q.Key), errCell(q.Reason))
				}
				if err := t.Flush(); err != nil {
					return err
				}
				fmt.Fprintf(g.out, "\n%d quarantined in all\n", total)
				return nil
			})
		},
	})
	cmd.Flags().IntVar(&limit, "limit", 50, fmt.Sprintf("at most this many, 1 to %d", maxListLimit))
	cmd.Flags().BoolVar(&g.asJSON, "json", false, "print JSON, as GET /v1/quarantine answers")
	return cmd
}

// plural says "1 event", "2 events".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
