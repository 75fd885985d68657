package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

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
	cmd := &cobra.Command{
		Use:   "export --since T [--out FILE|-|s3://bucket/prefix]",
		Short: "Write the execution index as NDJSON, for analytics (to a file, stdout or S3)",
		Long: "export writes every execution-index item started in [--since, --until], oldest first, one JSON\n" +
			"object a line: the items GET /v1/executions answers. --out - (the default) writes to stdout;\n" +
			"a FILE is written whole or not at all (a temporary file renamed at the end); s3://bucket/prefix\n" +
			"uploads one object, prefix/agentwatch-executions-<export time>.ndjson, or exactly the key given\n" +
			"when it ends in .ndjson, .jsonl or .json (one PutObject: up to 5 GB; the SDK's standard\n" +
			"configuration, AWS_ENDPOINT_URL_S3 for a local server; needs s3:PutObject).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := o.query()
			if err != nil {
				return err
			}
			return g.withQueries(cmd, func(ctx context.Context, qs *app.Queries) error {
				n, where, err := o.export(ctx, cmd, qs, q)
				if err != nil {
					return err
				}
				// With the items on stdout, the summary goes to stderr.
				summary := g.out
				if o.out == "-" {
					summary = cmd.ErrOrStderr()
				}
				fmt.Fprintf(summary, "exported %d executions to %s\n", n, where)
				return nil
			})
		},
	}
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

// export writes the items to the target of --out and says where they went.
func (o *exportOptions) export(ctx context.Context, cmd *cobra.Command, qs *app.Queries, q executionindex.Query) (int, string, error) {
	switch {
	case o.out == "-":
		n, err := writeExecutions(ctx, qs, q, cmd.OutOrStdout())
		return n, "stdout", err
	case strings.HasPrefix(o.out, "s3://"):
		return exportToS3(ctx, qs, q, o.out, time.Now())
	default:
		n, err := exportToFile(ctx, qs, q, o.out)
		return n, o.out, err
	}
}

// writeExecutions writes every item of q, page after page, as NDJSON.
func writeExecutions(ctx context.Context, qs *app.Queries, q executionindex.Query, w io.Writer) (int, error) {
	bw := bufio.NewWriterSize(w, 1<<16)
	enc := json.NewEncoder(bw) // one line per item: the encoding of the HTTP API, unindented
	n := 0
	for {
		page, err := qs.Executions(ctx, q)
		if err != nil {
			return n, err
		}
		for i := range page.Items {
			if err := enc.Encode(&page.Items[i]); err != nil {
				return n, fmt.Errorf("write execution %s: %w", page.Items[i].ExecutionArn, err)
			}
			n++
		}
		if page.NextCursor == "" {
			break
		}
		q.Cursor = page.NextCursor
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("write executions: %w", err)
	}
	return n, nil
}

// exportToFile writes to a temporary file beside name and renames it into place, so
// that name holds a whole export or is left as it was.
func exportToFile(ctx context.Context, qs *app.Queries, q executionindex.Query, name string) (int, error) {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*.tmp")
	if err != nil {
		return 0, fmt.Errorf("export to %s: %w", name, err)
	}
	committed := false
	defer func() {
		if !committed {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	n, err := writeExecutions(ctx, qs, q, f)
	if err == nil {
		err = f.Close()
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		return n, fmt.Errorf("export to %s: %w", name, err)
	}
	committed = true
	return n, nil
}

// exportToS3 writes to a temporary file (PutObject needs a seekable body of known
// length) and uploads it.
func exportToS3(ctx context.Context, qs *app.Queries, q executionindex.Query, target string, now time.Time) (int, string, error) {
	loc, err := s3Location(target, now)
	if err != nil {
		return 0, "", err
	}
	client, err := s3.NewClient(ctx)
	if err != nil {
		return 0, "", err
	}
	up, err := s3.NewUploader(client)
	if err != nil {
		return 0, "", err
	}
	f, err := os.CreateTemp("", "agentwatch-export-*.ndjson")
	if err != nil {
		return 0, "", fmt.Errorf("export to %s: %w", loc, err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	n, err := writeExecutions(ctx, qs, q, f)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		return n, "", fmt.Errorf("export to %s: %w", loc, err)
	}
	if err := up.Upload(ctx, loc, f, "application/x-ndjson"); err != nil {
		return n, "", err
	}
	return n, loc.String(), nil
}

// s3Location is where an export to target (s3://bucket/prefix) goes: the key given if
// it names a file (.ndjson, .jsonl, .json), else prefix/agentwatch-executions-<now>.ndjson.
func s3Location(target string, now time.Time) (s3.Location, error) {
	bucket, prefix, err := s3.ParseURL(target)
	if err != nil {
		return s3.Location{}, fmt.Errorf("--out: %w", err)
	}
	switch path.Ext(prefix) {
	case ".ndjson", ".jsonl", ".json":
		return s3.Location{Bucket: bucket, Key: prefix}, nil
	}
	name := "agentwatch-executions-" + now.UTC().Format("20060102T150405Z") + ".ndjson"
	if prefix == "" {
		return s3.Location{Bucket: bucket, Key: name}, nil
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return s3.Location{Bucket: bucket, Key: prefix + name}, nil
}
