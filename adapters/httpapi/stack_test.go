package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/adapters/httpapi"
	"github.com/agentwatch/agentwatch/adapters/sqlite"
	"github.com/agentwatch/agentwatch/adapters/sqlite/sqlitetest"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
)

// stack is the server over the real embedded backend (SQLite in a temporary
// directory) with the real ingester and projector. Where the worker would project the
// journal in the background, the stack projects synchronously inside each append, so
// that what a POST accepted is readable as soon as the POST answers.
type stack struct {
	t          testing.TB
	dir        string // the SQLite directory
	db         *sqlite.DB
	alerts     *sqlite.AlertStore
	quarantine *sqlite.QuarantineStore
	queries    *app.Queries
	ingester   *app.Ingester
	registry   *prometheus.Registry
	server     *httpapi.Server
	http       *httptest.Server
	logs       *syncBuffer
	// direct appends to the journal as an agent's PutItem would, bypassing ingest,
	// and projects.
	direct app.JournalAppender
}

// stackOptions adjust a stack.
type stackOptions struct {
	config      httpapi.Config
	ready       func(context.Context) error
	noIngester  bool
	failJournal bool
	// resolver, when set, resolves agent names (a fault can be planted in it).
	resolver domain.AgentNameResolver
	// wrapJournal, when set, wraps the journal the ingester appends to.
	wrapJournal func(app.JournalAppender) app.JournalAppender
	// quiet logs warnings and errors only (long fuzz runs would keep every request).
	quiet bool
}

func newStack(t testing.TB, opts stackOptions) *stack {
	t.Helper()
	logs := &syncBuffer{}
	level := slog.LevelDebug
	if opts.quiet {
		level = slog.LevelWarn
	}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level}))
	dir := t.TempDir()
	db, err := sqlite.Open(t.Context(), dir, logger)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })

	emb := sqlitetest.On(t, db)
	journal := emb.Journal
	readModel := emb.Models
	registry := prometheus.NewRegistry()
	metrics, err := app.NewMetrics(registry)
	require.NoError(t, err)
	s := &stack{t: t, dir: dir, db: db, alerts: sqlite.NewAlertStore(db), quarantine: sqlite.NewQuarantineStore(db), registry: registry, logs: logs}

	appender := &projectingJournal{
		journal:     journal,
		projector:   app.NewProjector(readModel, emb.Registry, logger, metrics),
		checkpoints: sqlite.NewCheckpointStore(db),
		fail:        opts.failJournal,
	}
	s.direct = appender
	s.queries = app.NewQueries(emb.Registry, readModel, journal, s.alerts, s.quarantine)
	if !opts.noIngester {
		var journalOut app.JournalAppender = appender
		if opts.wrapJournal != nil {
			journalOut = opts.wrapJournal(appender)
		}
		s.ingester = app.NewIngester(journalOut, s.quarantine, opts.resolver, domain.MappingConfig{}, logger, metrics)
	}
	s.server, err = httpapi.New(opts.config, s.queries, s.ingester, registry, opts.ready, logger)
	require.NoError(t, err)
	require.NoError(t, app.RegisterCollectors(registry, s.server.Collectors()...))
	s.http = httptest.NewServer(s.server.Handler())
	t.Cleanup(func() {
		// Live streams never end by themselves: end them, as a server's Stop does, so
		// that Close does not wait for them.
		require.NoError(t, s.server.Stop(context.Background()))
		s.http.Close()
	})
	return s
}

// projectingJournal appends to the SQLite journal, then projects everything new, as
// the worker's tailing subscriber would a moment later.
type projectingJournal struct {
	journal     *sqlite.JournalStore
	projector   *app.Projector
	checkpoints *sqlite.CheckpointStore
	fail        bool
	mu          sync.Mutex
}

func (j *projectingJournal) Append(ctx context.Context, events []domain.Event) ([]app.AppendResult, error) {
	if j.fail {
		return nil, fmt.Errorf("append: %w", errDiskOnFire)
	}
	res, err := j.journal.Append(ctx, events)
	if err != nil {
		return nil, err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.projector.CatchUp(ctx, sqlite.NewJournalTail(j.journal), j.checkpoints, "httpapi-test", 500); err != nil {
		return nil, fmt.Errorf("project: %w", err)
	}
	return res, nil
}

var errDiskOnFire = fmt.Errorf("disk on fire")

// syncBuffer is a log sink that tests can read while the server writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// answer is a response, read whole.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a generic value.
func (a answer) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(a.body, &m), "body: %s", a.body)
	return m
}

// decode decodes the body into v.
func (a answer) decode(t testing.TB, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(a.body, v), "body: %s", a.body)
}

// do sends a request to the stack's server.
func (s *stack) do(method, path, contentType string, body []byte, header ...string) answer {
	s.t.Helper()
	req, err := http.NewRequestWithContext(s.t.Context(), method, s.http.URL+path, bytes.NewReader(body))
	require.NoError(s.t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := s.http.Client().Do(req)
	require.NoError(s.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(s.t, err)
	return answer{status: res.StatusCode, header: res.Header, body: b}
}

func (s *stack) get(path string) answer { return s.do(http.MethodGet, path, "", nil) }

// post posts objects as a JSON array and requires that every one was accepted.
func (s *stack) post(objs ...any) {
	s.t.Helper()
	b, err := json.Marshal(objs)
	require.NoError(s.t, err)
	a := s.do(http.MethodPost, "/v1/events", "application/json", b)
	require.Equal(s.t, http.StatusOK, a.status, "body: %s", a.body)
	var rep app.IngestReport
	a.decode(s.t, &rep)
	require.Zero(s.t, rep.Rejected, "body: %s", a.body)
}

// ---- Inputs ------------------------------------------------------------------

const (
	region  = "us-east-1"
	account = "123456789012"
)

func executionArn(agent, name string) string {
	return "arn:aws:states:" + region + ":" + account + ":execution:" + agent + ":" + name
}

// execution describes one Step Functions execution for statusChange.
type execution struct {
	agent, name, session string
	start                time.Time
}

// statusChange is the EventBridge envelope of a Step Functions status change of x.
// stop is zero for RUNNING.
func statusChange(x execution, status string, stop time.Time, errCode, cause string) map[string]any {
	input, _ := json.Marshal(map[string]string{"session_id": x.session, "prompt": "summarise Q3"})
	detail := map[string]any{
		"executionArn":    executionArn(x.agent, x.name),
		"stateMachineArn": "arn:aws:states:" + region + ":" + account + ":stateMachine:" + x.agent,
		"name":            x.name,
		"status":          status,
		"startDate":       x.start.UnixMilli(),
		"stopDate":        nil,
		"input":           string(input),
		"inputDetails":    map[string]any{"included": true},
		"redriveCount":    0,
		"error":           nil,
		"cause":           nil,
	}
	at := x.start
	if !stop.IsZero() {
		detail["stopDate"] = stop.UnixMilli()
		at = stop
	}
	if errCode != "" {
		detail["error"], detail["cause"] = errCode, cause
	}
	return map[string]any{
		"version":     "0",
		"id":          fmt.Sprintf("%s-%s-%s", x.name, status, at.Format("150405.000")),
		"detail-type": domain.StatusChangeDetailType,
		"source":      domain.StatusChangeSource,
		"account":     account,
		"time":        at.UTC().Format(time.RFC3339),
		"region":      region,
		"resources":   []string{executionArn(x.agent, x.name)},
		"detail":      detail,
	}
}

// agentEvent is a seed-002 journal item.
func agentEvent(session, status string, at time.Time, errMsg string) map[string]any {
	ts := at.UTC().Format(domain.TimeLayout)
	m := map[string]any{"PK": "SESSION#" + session, "SK": "EVENT#" + ts, "Status": status, "Timestamp": ts}
	if errMsg != "" {
		m["ErrorMessage"] = errMsg
	}
	return m
}

// lifecycle returns the agent events of a session that ends at the scenario of seed
// 002 (0: success, 1-3: the failures, 4: no completion event), one second apart from
// start, the last one (the completion or failure) after a pause of pause.
func lifecycle(session string, start time.Time, scenario int, pause time.Duration, errMsg string) []any {
	steps := map[int][]string{
		0: {"SESSION_INITIATED", "AGENT_RUNTIME_INVOCATION_STARTED", "AGENT_RUNTIME_INVOCATION_SUCCEEDED", "AGENT_ENTRYPOINT_STARTED", "AGENT_BACKGROUND_TASK_STARTED", "AGENT_BACKGROUND_TASK_COMPLETED"},
		1: {"SESSION_INITIATED", "AGENT_RUNTIME_INVOCATION_STARTED", "AGENT_RUNTIME_INVOCATION_FAILED"},
		2: {"SESSION_INITIATED", "AGENT_RUNTIME_INVOCATION_STARTED", "AGENT_RUNTIME_INVOCATION_SUCCEEDED", "AGENT_ENTRYPOINT_STARTED", "AGENT_ENTRYPOINT_FAILED"},
		3: {"SESSION_INITIATED", "AGENT_RUNTIME_INVOCATION_STARTED", "AGENT_RUNTIME_INVOCATION_SUCCEEDED", "AGENT_ENTRYPOINT_STARTED", "AGENT_BACKGROUND_TASK_STARTED", "AGENT_BACKGROUND_TASK_FAILED"},
		4: {"SESSION_INITIATED", "AGENT_RUNTIME_INVOCATION_STARTED", "AGENT_RUNTIME_INVOCATION_SUCCEEDED", "AGENT_ENTRYPOINT_STARTED", "AGENT_BACKGROUND_TASK_STARTED"},
	}[scenario]
	var out []any
	at := start
	for i, st := range steps {
		msg := ""
		if strings.HasSuffix(st, "_FAILED") {
			msg = errMsg
		}
		if i == len(steps)-1 && scenario != 4 && i > 0 {
			at = at.Add(pause)
		}
		out = append(out, agentEvent(session, st, at, msg))
		at = at.Add(time.Second)
	}
	return out
}

// seed002 is the happy path of seed 002, as the seed writes it.
const seed002 = `[
{"PK": "SESSION#abc-123-def", "SK": "EVENT#2024-11-04T10:30:00.000Z", "Status": "SESSION_INITIATED", "Timestamp": "2024-11-04T10:30:00.000Z"},
{"PK": "SESSION#abc-123-def", "SK": "EVENT#2024-11-04T10:30:01.234Z", "Status": "AGENT_RUNTIME_INVOCATION_STARTED", "Timestamp": "2024-11-04T10:30:01.234Z"},
{"PK": "SESSION#abc-123-def", "SK": "EVENT#2024-11-04T10:30:02.456Z", "Status": "AGENT_RUNTIME_INVOCATION_SUCCEEDED", "Timestamp": "2024-11-04T10:30:02.456Z"},
{"PK": "SESSION#abc-123-def", "SK": "EVENT#2024-11-04T10:30:03.789Z", "Status": "AGENT_ENTRYPOINT_STARTED", "Timestamp": "2024-11-04T10:30:03.789Z"},
{"PK": "SESSION#abc-123-def", "SK": "EVENT#2024-11-04T10:30:04.012Z", "Status": "AGENT_BACKGROUND_TASK_STARTED", "Timestamp": "2024-11-04T10:30:04.012Z"},
{"PK": "SESSION#abc-123-def", "SK": "EVENT#2024-11-04T10:35:45.678Z", "Status": "AGENT_BACKGROUND_TASK_COMPLETED", "Timestamp": "2024-11-04T10:35:45.678Z"}
]`
