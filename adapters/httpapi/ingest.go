package httpapi

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/agentwatch/agentwatch/app"
)

// ingestSource is the source name of objects posted to /v1/events (metrics, quarantine).
const ingestSource = app.SourceHTTP

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
		// Declared NDJSON: each line on its own, whatever the body looks like.
		rep, err = s.ingester.IngestNDJSON(r.Context(), ingestSource, body, 1)
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
