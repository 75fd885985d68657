package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"

	"github.com/agentwatch/agentwatch/app"
)

// ingestSource is the source name of objects posted to /v1/events (metrics, quarantine).
const ingestSource = "http"

// errIngestDisabled answers POST /v1/events on a server without an ingester.
var errIngestDisabled = errors.New("ingest is disabled on this server")

// ndjsonTypes are the media types that declare one JSON value per line.
var ndjsonTypes = map[string]bool{
	"application/x-ndjson":    true,
	"application/ndjson":      true,
	"application/jsonl":       true,
	"application/x-jsonlines": true,
}

// postEvents answers POST /v1/events: the body is one JSON object, a JSON array, or
// NDJSON; each object an EventBridge envelope (raw or SNS-wrapped) or a journal item.
// The answer is the app.IngestReport, one result per object: 200 when at least one
// object was accepted or was a duplicate, 400 when every object was rejected, 413 when
// the body is over Config.MaxBodyBytes (nothing is ingested then), 500 when the journal
// could not be written (retrying the whole body is safe: appends are idempotent).
func (s *Server) postEvents(w http.ResponseWriter, r *http.Request) {
	if s.ingester == nil {
		writeJSON(w, r, http.StatusNotImplemented, errorBody{Error: errIngestDisabled.Error()})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); !ok {
			err = paramError("body", "could not be read: "+err.Error())
		}
		s.writeError(w, r, fmt.Errorf("read body: %w", err))
		return
	}
	var rep app.IngestReport
	if mt, _, perr := mime.ParseMediaType(r.Header.Get("Content-Type")); perr == nil && ndjsonTypes[mt] {
		rep, err = s.ingestNDJSON(r.Context(), body)
	} else {
		rep, err = s.ingester.IngestBody(r.Context(), ingestSource, body)
	}
	if err != nil {
		s.writeError(w, r, fmt.Errorf("ingest %d bytes: %w", len(body), err))
		return
	}
	if rep.Results == nil {
		rep.Results = []app.IngestResult{}
	}
	code := http.StatusOK
	if rep.Accepted+rep.Duplicate == 0 {
		code = http.StatusBadRequest
	}
	writeJSON(w, r, code, rep)
}

// ingestNDJSON ingests a body declared NDJSON so that a malformed line costs only
// itself. domain.SplitInput treats a body as NDJSON only when every non-blank line
// starts with '{'; otherwise a line that is not an object would end the body and the
// lines after it would be lost. So the lines that start with '{' go to the ingester
// together (each parsed on its own, appended in one batch), and each other line goes
// alone. The results are merged back in line order, with the body's line numbers.
func (s *Server) ingestNDJSON(ctx context.Context, body []byte) (app.IngestReport, error) {
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	var objects bytes.Buffer
	var objectLines []int // objectLines[i] is the body line of line i+1 of objects
	type oddLine struct {
		line int
		raw  []byte
	}
	var odd []oddLine
	line := 0
	for rest := body; len(rest) > 0; {
		line++
		l := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			l, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		l = bytes.TrimSpace(l)
		switch {
		case len(l) == 0:
		case l[0] == '{':
			objects.Write(l)
			objects.WriteByte('\n')
			objectLines = append(objectLines, line)
		default:
			odd = append(odd, oddLine{line: line, raw: l})
		}
	}
	if len(odd) == 0 || len(objectLines) == 0 && len(odd) == 1 {
		// Nothing the plain path would get wrong.
		return s.ingester.IngestBody(ctx, ingestSource, body)
	}

	var results []app.IngestResult
	if len(objectLines) > 0 {
		rep, err := s.ingester.IngestBody(ctx, ingestSource, objects.Bytes())
		if err != nil {
			return app.IngestReport{}, err
		}
		for _, res := range rep.Results {
			if res.Line >= 1 && res.Line <= len(objectLines) {
				res.Line = objectLines[res.Line-1]
			}
			results = append(results, res)
		}
	}
	for _, o := range odd {
		rep, err := s.ingester.IngestBody(ctx, ingestSource, o.raw)
		if err != nil {
			return app.IngestReport{}, err
		}
		for _, res := range rep.Results {
			res.Line = o.line
			results = append(results, res)
		}
	}
	sort.SliceStable(results, func(i, j int) bool { return results[i].Line < results[j].Line })
	var out app.IngestReport
	out.Results = results
	for i := range out.Results {
		out.Results[i].Index = i
		switch out.Results[i].Status {
		case app.IngestAccepted:
			out.Accepted++
		case app.IngestDuplicate:
			out.Duplicate++
		default:
			out.Rejected++
		}
	}
	return out, nil
}
