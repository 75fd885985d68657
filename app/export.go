package app

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/projections/executionindex"
)

// ExportUploader puts a finished export where it goes when that is not a local file
// (S3: adapters/s3). Implementations are safe for concurrent use.
type ExportUploader interface {
	// Upload puts body, seekable and of known length, at target (a URL the uploader
	// takes, e.g. s3://bucket/prefix), as name when target names only a prefix, and
	// returns where the export went.
	Upload(ctx context.Context, target, name string, body io.ReadSeeker) (string, error)
}

// ExportReport says what an export wrote and where.
type ExportReport struct {
	Executions int    `json:"executions"`
	Where      string `json:"where"`
}

// Exporter writes the execution index as NDJSON for analytics (seed 000's "Export to
// S3 for analytics"): every item of a query, page after page, one JSON object a line,
// the items GET /v1/executions answers.
type Exporter struct {
	queries  *Queries
	uploader ExportUploader
	now      func() time.Time
}

// NewExporter returns an exporter. uploader may be nil: exports then go to files and
// writers only.
func NewExporter(queries *Queries, uploader ExportUploader) *Exporter {
	return &Exporter{queries: queries, uploader: uploader, now: time.Now}
}

// Export writes every item of q (all its pages, whatever q.Cursor) to out: "-" writes
// to stdout; a URL ("s3://bucket/prefix") goes through the uploader, as
// agentwatch-executions-<export time>.ndjson when it names a prefix; anything else is a
// file, written whole or not at all (a temporary file beside it, renamed at the end).
func (e *Exporter) Export(ctx context.Context, q executionindex.Query, out string, stdout io.Writer) (ExportReport, error) {
	switch {
	case out == "-":
		n, err := e.write(ctx, q, stdout)
		return ExportReport{Executions: n, Where: "stdout"}, err
	case strings.Contains(out, "://"):
		return e.upload(ctx, q, out)
	default:
		n, err := e.toFile(ctx, q, out)
		return ExportReport{Executions: n, Where: out}, err
	}
}

// write writes every item of q, page after page, as NDJSON.
func (e *Exporter) write(ctx context.Context, q executionindex.Query, w io.Writer) (int, error) {
	bw := bufio.NewWriterSize(w, 1<<16)
	enc := json.NewEncoder(bw) // one line per item: the encoding of the HTTP API, unindented
	n := 0
	for {
		page, err := e.queries.Executions(ctx, q)
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

// toFile writes to a temporary file beside name and renames it into place, so that
// name holds a whole export or is left as it was.
func (e *Exporter) toFile(ctx context.Context, q executionindex.Query, name string) (int, error) {
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
	n, err := e.write(ctx, q, f)
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

// upload writes to a temporary file (an upload needs a seekable body of known length)
// and hands it to the uploader.
func (e *Exporter) upload(ctx context.Context, q executionindex.Query, target string) (ExportReport, error) {
	if e.uploader == nil {
		return ExportReport{}, errors.New("export to " + target + ": no uploader for this target")
	}
	f, err := os.CreateTemp("", "agentwatch-export-*.ndjson")
	if err != nil {
		return ExportReport{}, fmt.Errorf("export to %s: %w", target, err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	n, err := e.write(ctx, q, f)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		return ExportReport{Executions: n}, fmt.Errorf("export to %s: %w", target, err)
	}
	name := "agentwatch-executions-" + e.now().UTC().Format("20060102T150405Z") + ".ndjson"
	where, err := e.uploader.Upload(ctx, target, name, f)
	if err != nil {
		return ExportReport{Executions: n}, err
	}
	return ExportReport{Executions: n, Where: where}, nil
}

// ExportModule provides the Exporter, for `agentwatch export`; an ExportUploader
// (adapters/s3.Module) is optional.
var ExportModule = fx.Module("export", fx.Provide(newFxExporter))

// ExporterParams are the exporter's dependencies in the fx graph.
type ExporterParams struct {
	fx.In
	Queries  *Queries
	Uploader ExportUploader `optional:"true"`
}

func newFxExporter(p ExporterParams) *Exporter { return NewExporter(p.Queries, p.Uploader) }
