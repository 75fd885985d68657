package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/adapters/s3"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/projections/executionindex"
)

// exportOptions are the export command's flags.
type exportOptions struct {
	since, until string
	agent        string
	status       string
	out          string
	pageSize     int
}

func newExportCommand(g *globals) *cobra.Command {
	o := &exportOptions{}
	cmd := needsDatabase(&cobra.Command{
		Use:   "export --since T [--out FILE|-|s3://bucket/prefix]",
		Short: "Write the execution index as NDJSON, for analytics (to a file, stdout or S3)",
		Long: "export writes every execution-index item started in [--since, --until], oldest first, one JSON\n" +
			"object a line: the items GET /v1/executions answers. --out - (the default) writes to stdout;\n" +
			"a FILE is written whole or not at all (a temporary file renamed at the end); s3://bucket/prefix\n" +
			"uploads one object, prefix/agentwatch-executions-<export time>.ndjson, or exactly the key given\n" +
			"when it ends in .ndjson, .jsonl or .json (one PutObject: up to 5 GB; the SDK's standard\n" +
			"configuration, AWS_ENDPOINT_URL_S3 for a local server; needs s3:PutObject).",
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := o.query()
			if err != nil {
				return err
			}
			var exporter *app.Exporter
			opts := []fx.Option{app.ExportModule, fx.Populate(&exporter)}
			if strings.HasPrefix(o.out, "s3://") {
				if _, err := s3.ExportLocation(o.out, "x.ndjson"); err != nil {
					return err
				}
				opts = append(opts, s3.Module)
			}
			return g.withApp(cmd.Context(), app.Config{}, opts, func(ctx context.Context) error {
				rep, err := exporter.Export(ctx, q, o.out, cmd.OutOrStdout())
				if err != nil {
					return err
				}
				// With the items on stdout, the summary goes to stderr.
				summary := g.out
				if o.out == "-" {
					summary = cmd.ErrOrStderr()
				}
				fmt.Fprintf(summary, "exported %d executions to %s\n", rep.Executions, rep.Where)
				return nil
			})
		},
	})
	f := cmd.Flags()
	f.StringVar(&o.since, "since", "", "executions started at or after (RFC 3339, YYYY-MM-DD, today, or a duration ago like 24h); required")
	f.StringVar(&o.until, "until", "", "executions started at or before (default: now)")
	f.StringVar(&o.agent, "agent", "", "only this agent's executions")
	f.StringVar(&o.status, "status", "", "only this status: RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE")
	f.StringVar(&o.out, "out", "-", "where to write: FILE, - for stdout, or s3://bucket/prefix")
	f.IntVar(&o.pageSize, "page-size", executionindex.MaxLimit, "items per index query (1 to 1000); smaller pages spread the read load")
	_ = cmd.MarkFlagRequired("since")
	return cmd
}

// query is the index query of the flags: every page, oldest first.
func (o *exportOptions) query() (executionindex.Query, error) {
	q := executionindex.Query{AgentName: o.agent, Status: strings.ToUpper(o.status), Limit: o.pageSize, Ascending: true}
	var err error
	if q.From, err = parseTimeFlag("since", o.since, false); err != nil {
		return q, err
	}
	if q.To, err = parseTimeFlag("until", o.until, true); err != nil {
		return q, err
	}
	check := q
	if err := check.Normalize(); err != nil {
		return q, err
	}
	return q, nil
}
