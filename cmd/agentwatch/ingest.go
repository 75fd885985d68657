package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/app"
)

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
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, closeIn, err := openInput(cmd, args[0])
			if err != nil {
				return err
			}
			defer closeIn()
			var ingester *app.Ingester
			var local *app.LocalProjection
			return g.withApp(cmd.Context(), app.Config{}, []fx.Option{fx.Populate(&ingester, &local)}, func(ctx context.Context) error {
				total, err := ingester.IngestReader(ctx, app.SourceCLI, in, func(r app.IngestResult) bool {
					return r.Status == app.IngestRejected || !quiet
				}, local.WaitOut)
				if err != nil {
					return err
				}
				projected, err := local.CatchUp(ctx)
				if err != nil {
					return fmt.Errorf("project ingested events: %w", err)
				}
				if g.asJSON {
					if err := printJSON(g.out, total); err != nil {
						return err
					}
					return rejected(total.Rejected, total.Objects())
				}
				for _, r := range total.Results {
					if r.Status == app.IngestRejected {
						fmt.Fprintf(g.out, "rejected  object %d (line %d): %s\n", r.Index, r.Line, r.Reason)
					}
				}
				fmt.Fprintf(g.out, "%d accepted, %d duplicate, %d rejected; %d journal events projected\n",
					total.Accepted, total.Duplicate, total.Rejected, projected)
				return rejected(total.Rejected, total.Objects())
			})
		},
	}
	cmd.Flags().BoolVar(&g.asJSON, "json", false, "print the per-object report as JSON (as POST /v1/events answers)")
	cmd.Flags().BoolVar(&quiet, "quiet", true, "list only rejected objects in the report")
	return cmd
}

// rejected is the error of an input of which some objects were rejected (exit 4), nil
// when none was.
func rejected(n, objects int) error {
	if n == 0 {
		return nil
	}
	return rejectedError{rejected: n, objects: objects}
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
