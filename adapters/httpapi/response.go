package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
)

// errorBody is every error answer.
type errorBody struct {
	Error string `json:"error"`
	// Field names the request parameter or input field at fault, when one is.
	Field string `json:"field,omitempty"`
	// Limit is the body limit in bytes, on 413 answers.
	Limit int64 `json:"limit,omitempty"`
}

// paramError is a bad request parameter; it is a domain.FieldError so that the field
// reaches the answer the same way as the use cases' own validation errors.
func paramError(field, reason string) error {
	return &domain.FieldError{Field: field, Reason: reason}
}

// writeJSON answers v with status. GET and HEAD answers of status 200 carry a strong
// ETag of the body and "Cache-Control: no-cache": a client that polls (the History
// page) revalidates with If-None-Match and gets 304 with no body while nothing changed.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		// Only a programming error (an unencodable type) gets here.
		http.Error(w, `{"error":"encode answer"}`, http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	if status == http.StatusOK && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		sum := sha256.Sum256(buf.Bytes())
		etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
		h.Set("ETag", etag)
		h.Set("Cache-Control", "no-cache")
		if etagMatch(r.Header.Get("If-None-Match"), etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	} else {
		h.Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// etagMatch reports whether an If-None-Match header lists etag (weak or strong) or *.
func etagMatch(header, etag string) bool {
	for t := range strings.SplitSeq(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

// writeError answers err as JSON with the status it calls for. Server-side failures
// are logged with the request and answered with a generic message; the client's own
// mistakes are answered with the error's text.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := s.classify(err)
	if bp, ok := errors.AsType[*app.BackpressureError](err); ok {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(bp.RetryAfter.Seconds())))))
	}
	switch {
	case status >= 500 && r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		s.logger.DebugContext(r.Context(), "request cancelled", "method", r.Method, "path", r.URL.Path, "error", err)
	case status >= 500:
		s.logger.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	writeJSON(w, r, status, body)
}

// classify maps an error to its status and answer.
func (s *Server) classify(err error) (int, errorBody) {
	var maxErr *http.MaxBytesError
	var fe *domain.FieldError
	if bp, ok := errors.AsType[*app.BackpressureError](err); ok {
		return http.StatusTooManyRequests, errorBody{Error: bp.Error()}
	}
	switch {
	case errors.As(err, &maxErr):
		return http.StatusRequestEntityTooLarge, errorBody{
			Error: fmt.Sprintf("request body is larger than the limit of %d bytes (%s)", maxErr.Limit, byteSize(maxErr.Limit)),
			Limit: maxErr.Limit,
		}
	case errors.As(err, &fe):
		return http.StatusBadRequest, errorBody{Error: err.Error(), Field: fe.Field}
	case errors.Is(err, domain.ErrInvalid):
		return http.StatusBadRequest, errorBody{Error: err.Error()}
	case errors.Is(err, domain.ErrNotFound):
		return http.StatusNotFound, errorBody{Error: err.Error()}
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, errorBody{Error: "the request timed out"}
	default:
		return http.StatusInternalServerError, errorBody{Error: "internal error; the server logged the details"}
	}
}

// byteSize renders n bytes for people: "10 MiB", "512 KiB", "100 bytes".
func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}
