package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/projections"
)

func newRebuildCommand(g *globals) *cobra.Command {
	var opts app.RebuildOptions
	cmd := needsDatabase(&cobra.Command{
		Use:   "rebuild",
		Short: "Rebuild the read models from the journal into a new generation, then switch to it (zero downtime)",
		Long: "rebuild reads the whole journal, folds it per session in memory, writes a new generation of\n" +
			"the read models in large batches, catches it up with what was written meanwhile, and switches\n" +
			"reads to it atomically while a running worker keeps serving the old one. The old generation is\n" +
			"dropped after --grace. Ctrl-C (or SIGTERM) leaves the live generation untouched and removes the\n" +
			"partial one. It raises no alert for the history it replays.",
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var rb *app.Rebuilder
			cfg := app.Config{}
			var reg *projections.Registry
			return g.withApp(cmd.Context(), cfg, []fx.Option{fx.Populate(&rb, &reg)}, func(ctx context.Context) error {
				progress, done := progressReporter(g.logger())
				opts.Progress = progress
				rep, err := rb.Rebuild(ctx, opts)
				done()
				if err != nil {
					return err
				}
				if g.asJSON {
					return printJSON(g.out, rep)
				}
				var rows []string
				for _, t := range reg.Tables() {
					rows = append(rows, fmt.Sprintf("%d %s", rep.Rows[t.Name], t.Name))
				}
				fmt.Fprintf(g.out, "rebuilt generation %d from %d events in %s (%.0f events/s): %d sessions; %s; %d events caught up; generation %d dropped\n",
					rep.ToGeneration, rep.Events, rep.Total.Round(time.Millisecond), float64(rep.Events)/rep.Total.Seconds(),
					rep.Sessions, strings.Join(rows, ", "), rep.CaughtUp, rep.FromGeneration)
				return nil
			})
		},
	})
	f := cmd.Flags()
	f.StringVar(&opts.Projection, "projection", "all", "a registered read model's name, or all (all share the session aggregates: a generation is rebuilt whole)")
	f.IntVar(&opts.Parallel, "parallel", 0, "read the journal in N parts at once: DynamoDB Scan segments (default 4), SQLite readers (default one per CPU, at most 4)")
	f.DurationVar(&opts.Grace, "grace", 5*time.Second, "keep the old generation this long after the switch, then drop it")
	f.BoolVar(&g.asJSON, "json", false, "print the report as JSON")
	return cmd
}

// progressReporter shows a progress bar with events/s and ETA on a terminal, and a log
// line every few seconds otherwise.
func progressReporter(logger *slog.Logger) (func(done, total int64), func()) {
	var mu sync.Mutex
	if isatty.IsTerminal(os.Stderr.Fd()) {
		var bar *progressbar.ProgressBar
		return func(done, total int64) {
				mu.Lock()
				defer mu.Unlock()
				if bar == nil {
					if total <= 0 {
						total = -1
					}
					bar = progressbar.NewOptions64(total, progressbar.OptionSetDescription("rebuild"),
						progressbar.OptionSetWriter(os.Stderr), progressbar.OptionShowCount(), progressbar.OptionShowIts(),
						progressbar.OptionSetItsString("events"), progressbar.OptionThrottle(100*time.Millisecond),
						progressbar.OptionSetPredictTime(true), progressbar.OptionClearOnFinish())
				}
				_ = bar.Set64(done)
			}, func() {
				mu.Lock()
				defer mu.Unlock()
				if bar != nil {
					_ = bar.Finish()
				}
			}
	}
	start := time.Now()
	var last time.Time
	return func(done, total int64) {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(last) < 2*time.Second {
			return
		}
		last = time.Now()
		rate := float64(done) / time.Since(start).Seconds()
		args := []any{"events", done, "eventsPerSecond", int64(rate)}
		if total > 0 && rate > 0 {
			args = append(args, "total", total, "eta", (time.Duration(float64(total-done)/rate) * time.Second).Round(time.Second))
		}
		logger.Info("rebuild progress", args...)
	}, func() {}
}
