package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/app"
)

// localProjection projects, in embedded mode, what a command appended to the journal,
// so that listings show the effect whether or not a worker runs. In AWS mode the
// worker projects from the journal's stream, and catchUp does nothing.
type localProjection struct {
	projector   *app.Projector
	tail        app.JournalTail
	checkpoints app.CheckpointStore
	checkpoint  string
}

// localProjection returns the projection and the fx option that fills it.
func (g *globals) localProjection(cfg app.Config) (*localProjection, fx.Option) {
	l := &localProjection{checkpoint: cfg.CheckpointName}
	populate := fx.Populate(&l.projector, &l.checkpoints)
	if g.backend == "sqlite" {
		populate = fx.Options(populate, fx.Populate(&l.tail))
	}
	return l, populate
}

// catchUp projects the journal events after the worker's checkpoint and returns how
// many it projected.
func (l *localProjection) catchUp(ctx context.Context) (int, error) {
	if l.tail == nil {
		return 0, nil
	}
	return l.projector.CatchUp(ctx, l.tail, l.checkpoints, l.checkpoint, 2000)
}

func newIngestCommand(g *globals) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "ingest FILE|-",
		Short: "Append status changes and journal items (JSON object, array or NDJSON) to the journal",
		Long: "ingest takes what POST /v1/events takes: one JSON object, a JSON array, or NDJSON, each object\n" +
			"an EventBridge \"Step Functions Execution Status Change\" envelope (raw or wrapped in an SNS\n" +
			"notification) or a journal item (plain or DynamoDB JSON). Each object is accepted, a\n" +
			"duplicate, or rejected with the reason (and quarantined). In embedded mode the read models\n" +
			"are brought up to date before it returns, whether or not a worker is running.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, closeIn, err := openInput(cmd, args[0])
			if err != nil {
				return err
			}
			defer closeIn()
			var ingester *app.Ingester
			var cfg app.Config
			cfg.SetDefaults()
			local, populate := g.localProjection(cfg)
			return g.withApp(cmd.Context(), cfg, []fx.Option{fx.Populate(&ingester), populate}, func(ctx context.Context) error {
				total, err := ingester.IngestReader(ctx, app.SourceCLI, in, func(r app.IngestResult) bool {
					return r.Status == app.IngestRejected || !quiet
				}, waitForProjection(local))
				if err != nil {
					return err
				}
				projected, err := local.catchUp(ctx)
				if err != nil {
					return fmt.Errorf("project ingested events: %w", err)
				}
				if g.asJSON {
					return printJSON(g.out, total)
				}
				for _, r := range total.Results {
					if r.Status == app.IngestRejected {
						fmt.Fprintf(g.out, "rejected  object %d (line %d): %s\n", r.Index, r.Line, r.Reason)
					}
				}
				fmt.Fprintf(g.out, "%d accepted, %d duplicate, %d rejected; %d journal events projected\n",
					total.Accepted, total.Duplicate, total.Rejected, projected)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&g.asJSON, "json", false, "print the per-object report as JSON (as POST /v1/events answers)")
	cmd.Flags().BoolVar(&quiet, "quiet", true, "list only rejected objects in the report")
	return cmd
}

// waitForProjection is what ingest does while the projector is too far behind: it
// projects the backlog itself (in embedded mode, beside any worker: commits are
// exactly-once whoever makes them), or sleeps as the refusal says.
func waitForProjection(local *localProjection) func(ctx context.Context, refused *app.BackpressureError) error {
	return func(ctx context.Context, refused *app.BackpressureError) error {
		n, err := local.catchUp(ctx)
		if err != nil {
			return fmt.Errorf("project the backlog: %w", err)
		}
		if n > 0 {
			return nil
		}
		t := time.NewTimer(refused.RetryAfter)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}
}

func openInput(cmd *cobra.Command, name string) (io.Reader, func(), error) {
	if name == "-" {
		return cmd.InOrStdin(), func() {}, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, fmt.Errorf("open input: %w", err)
	}
	return f, func() { f.Close() }, nil
}
