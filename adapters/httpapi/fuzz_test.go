package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/agentwatch/agentwatch/adapters/httpapi"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
)

// ingestContentTypes are the Content-Types FuzzIngestHandler posts with, chosen by the
// fuzzer.
var ingestContentTypes = []string{"application/json", "application/x-ndjson", "application/jsonl",
	"application/json; charset=utf-8", "text/plain", ""}

// memJournal is an in-memory journal for FuzzIngestHandler: appends are idempotent on
// PK+SK as the real stores' are. The fuzz target stays in memory, where its coverage is
// deterministic and it runs thousands of times a second; the tests of this package run
// the same handler over SQLite.
type memJournal struct {
	mu   sync.Mutex
	keys map[string]bool
}

func (j *memJournal) Append(_ context.Context, events []domain.Event) ([]app.AppendResult, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]app.AppendResult, len(events))
	for i, e := range events {
		if j.keys[e.Key()] {
			out[i] = app.Duplicate
			continue
		}
		j.keys[e.Key()] = true
	}
	return out, nil
}

func (j *memJournal) size() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.keys)
}

// memQuarantine keeps a count of quarantined objects.
type memQuarantine struct {
	mu sync.Mutex
	n  int64
}

func (q *memQuarantine) Quarantine(context.Context, app.Quarantined) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.n++
	return nil
}

func (q *memQuarantine) ListQuarantined(context.Context, int) ([]app.Quarantined, error) {
	return nil, nil
}

func (q *memQuarantine) CountQuarantined(context.Context) (int64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n, nil
}

// FuzzIngestHandler posts arbitrary bodies to the handler of POST /v1/events, with the
// real ingester, and checks invariants, not outputs: no panic and no 500; every object
// of the body is in the answer exactly once, in order, accepted, a duplicate or
// rejected with a reason that names what is wrong; the journal grows by exactly the
// accepted objects, and every rejected object is quarantined; what is refused before
// parsing is refused for its Content-Type. Run it long with scripts/fuzz.
func FuzzIngestHandler(f *testing.F) {
	for _, seed := range []string{seed002, "{}", "[]", "[1,2,{}]", "nope\n{\"a\":1}\n", `{"PK":"SESSION#\ud800","SK":"EVENT#1"}`,
		mustJSON(statusChange(abc123, "FAILED", day, "States.TaskFailed", "boom")),
		mustJSON(agentEvent("s", strings.Repeat("X", 63)+"é", day, "")) + "\n" + mustJSON(agentEvent("s", "SESSION_INITIATED", day, "")),
	} {
		for ct := range ingestContentTypes {
			f.Add([]byte(seed), uint8(ct))
		}
	}
	journal := &memJournal{keys: map[string]bool{}}
	quarantine := &memQuarantine{}
	logger := slog.New(slog.DiscardHandler)
	metrics, err := app.NewMetrics(nil)
	if err != nil {
		f.Fatal(err)
	}
	metrics.SetLogger(logger)
	ingester := app.NewIngester(journal, quarantine, nil, domain.MappingConfig{}, logger, metrics)
	srv, err := httpapi.New(httpapi.Config{}, app.NewQueries(nil, nil, nil, nil, quarantine), ingester, nil, nil, logger)
	if err != nil {
		f.Fatal(err)
	}
	handler := srv.Handler()
	f.Fuzz(func(t *testing.T, body []byte, ct uint8) {
		contentType := ingestContentTypes[int(ct)%len(ingestContentTypes)]
		before, quarantinedBefore := journal.size(), quarantine.n
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/v1/events", bytes.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		checkIngestAnswer(t, body, contentType, rec.Code, rec.Body.Bytes())
		if rec.Code != http.StatusOK && rec.Code != http.StatusBadRequest {
			if journal.size() != before {
				t.Fatalf("answered %d, but appended", rec.Code)
			}
			return
		}
		var rep app.IngestReport
		if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
			t.Fatalf("answer %d is not a report: %v", rec.Code, err)
		}
		if appended := journal.size() - before; appended != rep.Accepted {
			t.Fatalf("%d objects accepted, %d journal events appended", rep.Accepted, appended)
		}
		if q := quarantine.n - quarantinedBefore; q != int64(max(rep.Rejected, 1)) && q != int64(rep.Rejected) {
			t.Fatalf("%d objects rejected, %d quarantined", rep.Rejected, q)
		}
	})
}

// checkIngestAnswer checks one answer of POST /v1/events.
func checkIngestAnswer(t *testing.T, body []byte, contentType string, status int, answer []byte) {
	t.Helper()
	switch status {
	case http.StatusOK, http.StatusBadRequest:
	case http.StatusUnsupportedMediaType:
		if contentType == "application/json" || contentType == "application/x-ndjson" {
			t.Fatalf("415 for %s", contentType)
		}
		return
	case http.StatusRequestEntityTooLarge:
		return
	default:
		t.Fatalf("status %d: %s", status, answer)
	}
	if contentType == "text/plain" || (contentType == "" && len(body) > 0) {
		t.Fatalf("a %q body was parsed: %d", contentType, status)
	}
	var rep app.IngestReport
	if err := json.Unmarshal(answer, &rep); err != nil {
		t.Fatalf("answer is not a report: %v: %s", err, answer)
	}
	n := len(rep.Results)
	if n == 0 && status != http.StatusBadRequest {
		// A body of empty arrays holds no object: nothing to answer for but a 400.
		t.Fatalf("no result for a body, answered %d: %s", status, answer)
	}
	if mt, _, _ := strings.Cut(contentType, ";"); mt == "application/json" {
		// Every object of the body is answered, none twice.
		want := 1
		if objs, err := domain.SplitInput(body); err == nil {
			want = len(objs)
		}
		if n != want {
			t.Fatalf("%d results for a body of %d objects: %s", n, want, answer)
		}
	}
	if rep.Accepted+rep.Duplicate+rep.Rejected != n {
		t.Fatalf("totals %d+%d+%d for %d results", rep.Accepted, rep.Duplicate, rep.Rejected, n)
	}
	if (status == http.StatusOK) != (rep.Accepted+rep.Duplicate > 0) {
		t.Fatalf("status %d with %d accepted and %d duplicates", status, rep.Accepted, rep.Duplicate)
	}
	maxLine := 1 + bytes.Count(body, []byte{'\n'})
	prevLine := 0
	counts := map[app.IngestStatus]int{}
	for i, r := range rep.Results {
		if r.Index != i {
			t.Fatalf("result %d has index %d", i, r.Index)
		}
		if r.Line < prevLine || r.Line > maxLine {
			t.Fatalf("result %d: line %d after %d (of %d)", i, r.Line, prevLine, maxLine)
		}
		prevLine = r.Line
		counts[r.Status]++
		switch r.Status {
		case app.IngestAccepted, app.IngestDuplicate:
			if r.SessionID == "" || !strings.HasPrefix(r.SK, "EVENT#") {
				t.Fatalf("result %d %s without its key: %+v", i, r.Status, r)
			}
			if !utf8.ValidString(r.SessionID) || !utf8.ValidString(r.SK) {
				t.Fatalf("result %d: an id that is not valid UTF-8: %+v", i, r)
			}
		case app.IngestRejected:
			if r.Reason == "" || strings.Contains(r.Reason, ": : ") || strings.HasPrefix(r.Reason, ":") {
				t.Fatalf("result %d rejected without a reason that names a field: %q", i, r.Reason)
			}
			if strings.Contains(r.Reason, "internal error") {
				t.Fatalf("result %d: agentwatch panicked: %q", i, r.Reason)
			}
			if strings.HasPrefix(r.Reason, "object ") {
				// A reason that says where the object is says where it is.
				if want := fmt.Sprintf("object %d (line %d): ", r.Index, r.Line); !strings.HasPrefix(r.Reason, want) {
					t.Fatalf("result %d (line %d) says %q", i, r.Line, r.Reason)
				}
			}
		default:
			t.Fatalf("result %d: status %q", i, r.Status)
		}
	}
	if counts[app.IngestAccepted] != rep.Accepted || counts[app.IngestDuplicate] != rep.Duplicate || counts[app.IngestRejected] != rep.Rejected {
		t.Fatalf("totals %+v do not count the results %v", rep, counts)
	}
}
