package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// IngestChunkLines is how many NDJSON lines one journal append of IngestReader carries.
const IngestChunkLines = 5000

// IngestReader ingests an input of any size: NDJSON (its first line a whole JSON object)
// in chunks of IngestChunkLines lines, so that a million events never sit in memory at
// once, each line on its own (domain.SplitNDJSON); anything else (a JSON array, a
// pretty-printed object) whole, as IngestBody does. Lines and indexes in the report are
// those of the whole input. keep, when not nil, chooses the results the report keeps
// (its totals count them all). When the projector is too far behind (a
// *BackpressureError), wait, when not nil, is called and the refused part is offered
// again once it returns nil; without it, or when it fails, that error ends the input.
// Errors are reading errors and IngestBody's.
func (in *Ingester) IngestReader(ctx context.Context, source string, r io.Reader, keep func(IngestResult) bool,
	wait func(ctx context.Context, refused *BackpressureError) error) (IngestReport, error) {
	total := IngestReport{Results: []IngestResult{}}
	br := bufio.NewReaderSize(r, 1<<20)
	first, err := br.ReadBytes('\n')
	if err != nil && err != io.EOF {
		return total, fmt.Errorf("read input: %w", err)
	}
	if t := bytes.TrimSpace(bytes.TrimPrefix(first, []byte("\xef\xbb\xbf"))); len(t) == 0 || t[0] != '{' || !json.Valid(t) {
		// A JSON array, a pretty-printed object, or one line: one body.
		rest, err := io.ReadAll(br)
		if err != nil {
			return total, fmt.Errorf("read input: %w", err)
		}
		body := append(first, rest...)
		rep, err := in.retrying(ctx, wait, func() (IngestReport, error) { return in.IngestBody(ctx, source, body) })
		if err != nil {
			return total, err
		}
		total.Append(rep, keep)
		return total, nil
	}
	var chunk bytes.Buffer
	chunk.Write(first)
	lines, firstLine := 1, 1
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			chunk.Write(line)
			lines++
		}
		if lines >= IngestChunkLines || (err == io.EOF && chunk.Len() > 0) {
			if len(bytes.TrimSpace(chunk.Bytes())) > 0 {
				rep, ierr := in.retrying(ctx, wait, func() (IngestReport, error) {
					return in.IngestNDJSON(ctx, source, chunk.Bytes(), firstLine)
				})
				if ierr != nil {
					return total, ierr
				}
				total.Append(rep, keep)
			}
			firstLine += lines
			chunk.Reset()
			lines = 0
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, fmt.Errorf("read input: %w", err)
		}
	}
}

// retrying calls ingest until it is not refused for backpressure, calling wait between
// tries.
func (in *Ingester) retrying(ctx context.Context, wait func(context.Context, *BackpressureError) error,
	ingest func() (IngestReport, error)) (IngestReport, error) {
	for {
		rep, err := ingest()
		bp, ok := errors.AsType[*BackpressureError](err)
		if !ok || wait == nil {
			return rep, err
		}
		if werr := wait(ctx, bp); werr != nil {
			return rep, werr
		}
	}
}
