package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/agentstats"
	"github.com/agentwatch/agentwatch/projections/executionindex"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// Limits of the list endpoints that are not the execution index.
const (
	defaultListLimit   = 100
	maxListLimit       = 1000
	maxEventsLimit     = 10000
	maxAckBodyBytes    = 64 << 10
	defaultAckedByName = "http"
)

// list is the answer of every listing but the execution index: {"items": [...]}.
type list[T any] struct {
	Items []T `json:"items"`
}

// executionsPage is the answer of GET /v1/executions. NextCursor is null on the last
// page; otherwise pass it back as ?cursor= (with the same filters) for the next one.
type executionsPage struct {
	Items      []executionindex.Item `json:"items"`
	NextCursor *string               `json:"nextCursor"`
}

// quarantinePage is the answer of GET /v1/quarantine: the newest items and how many
// there are in all.
type quarantinePage struct {
	Items []app.Quarantined `json:"items"`
	Total int64             `json:"total"`
}

// status is the answer of the health endpoints.
type status struct {
	Status string `json:"status"`
}

// ackBody is the optional body of POST /v1/alerts/{sessionId}/{kind}/ack.
type ackBody struct {
	// By names who acknowledged; default "http".
	By string `json:"by"`
}

// routes registers every route on a new mux.
func (s *Server) routes(gatherer prometheus.Gatherer, assets http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/events", s.postEvents)
	mux.HandleFunc("GET /v1/executions", s.listExecutions)
	mux.HandleFunc("GET /v1/executions/counts", s.countExecutions)
	// {arn...}: an ARN is matched whole, raw (arn:aws:states:...) or escaped (%3A).
	mux.HandleFunc("GET /v1/executions/{arn...}", s.getExecution)
	mux.HandleFunc("GET /v1/sessions/{id}", s.getSession)
	mux.HandleFunc("GET /v1/sessions/{id}/events", s.listSessionEvents)
	mux.HandleFunc("GET /v1/agents/{name}/stats", s.getAgentStats)
	mux.HandleFunc("GET /v1/stats", s.listStats)
	mux.HandleFunc("GET /v1/alerts", s.listAlerts)
	mux.HandleFunc("GET /v1/alerts/counts", s.countAlerts)
	mux.HandleFunc("POST /v1/alerts/{sessionId}/{kind}/ack", s.ackAlert)
	mux.HandleFunc("GET /v1/stuck", s.listStuck)
	mux.HandleFunc("GET /v1/quarantine", s.listQuarantine)
	mux.HandleFunc("GET /v1/live", s.streamLive)
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      slogPromLogger{s},
	}))
	mux.HandleFunc("POST /auth/login", s.postLogin)
	mux.HandleFunc("POST /auth/logout", s.postLogout)
	mux.HandleFunc("GET /login", s.serveLogin)
	mux.HandleFunc("GET /login.js", s.serveLoginScript)
	mux.HandleFunc("GET /{$}", s.servePage)
	mux.Handle("GET /assets/", assets)
	mux.HandleFunc("/", s.noRoute)
	return mux
}

// noRoute answers what no route matches: 405 with Allow when the path has routes for
// other methods, 404 otherwise, both as JSON.
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "/" && pattern != "" {
			allowed = append(allowed, m)
			if m == http.MethodGet {
				allowed = append(allowed, http.MethodHead)
			}
		}
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeJSON(w, r, http.StatusMethodNotAllowed, errorBody{
			Error: fmt.Sprintf("method %s is not allowed on %s; use %s", r.Method, r.URL.Path, strings.Join(allowed, " or ")),
		})
		return
	}
	writeJSON(w, r, http.StatusNotFound, errorBody{Error: "no route for " + r.Method + " " + r.URL.Path})
}

// executionsQuery reads the filters of the execution listings: agent, status,
// outcome (one or a comma list), from, to, and the page's limit, cursor and order.
func executionsQuery(p *params) executionindex.Query {
	st := strings.ToUpper(p.str("status"))
	if st == "ALL" {
		st = ""
	}
	var outcomes []string
	for _, o := range strings.Split(p.str("outcome"), ",") {
		if o = strings.ToLower(strings.TrimSpace(o)); o != "" && o != "all" {
			outcomes = append(outcomes, o)
		}
	}
	return executionindex.Query{
		AgentName: p.str("agent"),
		Status:    st,
		Outcomes:  outcomes,
		From:      p.timeBound("from", false),
		To:        p.timeBound("to", true),
		Limit:     p.limit("limit", executionindex.DefaultLimit, executionindex.MaxLimit),
		Cursor:    p.str("cursor"),
		Ascending: p.ascending("order", false),
	}
}

// listExecutions answers GET /v1/executions?agent=&status=&outcome=&from=&to=&limit=&cursor=&order=,
// or, with q=TERM, the executions whose ARN, name or session id is TERM.
func (s *Server) listExecutions(w http.ResponseWriter, r *http.Request) {
	p := newParams(r.URL.Query(), s.now())
	if term := p.str("q"); term != "" {
		items, err := s.queries.FindExecutions(r.Context(), term)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, r, http.StatusOK, executionsPage{Items: items})
		return
	}
	q := executionsQuery(p)
	if p.err != nil {
		s.writeError(w, r, p.err)
		return
	}
	page, err := s.queries.Executions(r.Context(), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := executionsPage{Items: page.Items}
	if page.NextCursor != "" {
		out.NextCursor = &page.NextCursor
	}
	writeJSON(w, r, http.StatusOK, out)
}

// countExecutions answers GET /v1/executions/counts with the filters of
// /v1/executions: how many executions they select, in all, by status and by outcome,
// counted by the store (not from a loaded page).
func (s *Server) countExecutions(w http.ResponseWriter, r *http.Request) {
	p := newParams(r.URL.Query(), s.now())
	q := executionsQuery(p)
	if p.err != nil {
		s.writeError(w, r, p.err)
		return
	}
	c, err := s.queries.ExecutionCounts(r.Context(), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusOK, c)
}

// getExecution answers GET /v1/executions/{arn}: the index item, or 404.
func (s *Server) getExecution(w http.ResponseWriter, r *http.Request) {
	arn := r.PathValue("arn")
	if arn == "" {
		s.writeError(w, r, paramError("arn", "is missing: GET /v1/executions/{executionArn}"))
		return
	}
	it, err := s.queries.Execution(r.Context(), arn)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusOK, it)
}

// getSession answers GET /v1/sessions/{id}: the session's timeline, diagnosis,
// executions and alerts (app.SessionView), or 404 when the journal has no event of it.
func (s *Server) getSession(w http.ResponseWriter, r *http.Request) {
	v, err := s.queries.Session(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusOK, v)
}

// listSessionEvents answers GET /v1/sessions/{id}/events?order=&status=&contains=&after=&limit=
// with the session's journal items in seed-002 form, the queries of seed 002: oldest
// first (order=desc: newest first), statuses (one, or a comma list), statuses
// containing a string (e.g. FAILED), events after a time, the latest N
// (order=desc&limit=N). 404 when the journal has no event of the session; an empty list
// when none matches.
func (s *Server) listSessionEvents(w http.ResponseWriter, r *http.Request) {
	p := newParams(r.URL.Query(), s.now())
	q := app.EventsQuery{
		Descending:     !p.ascending("order", true),
		Statuses:       app.StatusList(p.str("status")),
		StatusContains: p.str("contains"),
		After:          p.timeBound("after", false),
		Limit:          p.limit("limit", 0, maxEventsLimit),
	}
	if p.err != nil {
		s.writeError(w, r, p.err)
		return
	}
	items, err := s.queries.SessionEvents(r.Context(), r.PathValue("id"), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if items == nil {
		items = []app.AnsweredItem{}
	}
	writeJSON(w, r, http.StatusOK, list[app.AnsweredItem]{Items: items})
}

// statsQuery reads granularity, from and to.
func statsQuery(p *params, agent string) app.StatsQuery {
	prefix := agentstats.DayPrefix
	if p.oneOf("granularity", "day", "hour", "day") == "hour" {
		prefix = agentstats.HourPrefix
	}
	return app.StatsQuery{AgentName: agent, Granularity: prefix, From: p.timeBound("from", false), To: p.timeBound("to", true)}
}

// getAgentStats answers GET /v1/agents/{name}/stats?granularity=hour|day&from=&to=:
// the agent's buckets and their total (app.AgentStatsView), 404 when it has none in
// the range.
func (s *Server) getAgentStats(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	p := newParams(r.URL.Query(), s.now())
	q := statsQuery(p, name)
	if p.err != nil {
		s.writeError(w, r, p.err)
		return
	}
	views, err := s.queries.Stats(r.Context(), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for _, v := range views {
		if v.AgentName == name {
			writeJSON(w, r, http.StatusOK, v)
			return
		}
	}
	s.writeError(w, r, fmt.Errorf("stats of agent %q in this range: %w", name, domain.ErrNotFound))
}

// listStats answers GET /v1/stats?granularity=&from=&to= with every agent's stats,
// sorted by agent name.
func (s *Server) listStats(w http.ResponseWriter, r *http.Request) {
	p := newParams(r.URL.Query(), s.now())
	q := statsQuery(p, "")
	if p.err != nil {
		s.writeError(w, r, p.err)
		return
	}
	views, err := s.queries.Stats(r.Context(), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if views == nil {
		views = []app.AgentStatsView{}
	}
	writeJSON(w, r, http.StatusOK, list[app.AgentStatsView]{Items: views})
}

// ackAlert answers POST /v1/alerts/{sessionId}/{kind}/ack (optional body {"by": "..."})
// with the acknowledged alert; 404 when there is no such alert. Acknowledging twice
// keeps the first acknowledgement.
func (s *Server) ackAlert(w http.ResponseWriter, r *http.Request) {
	sessionID, kind := r.PathValue("sessionId"), stuck.Kind(r.PathValue("kind"))
	var body ackBody
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAckBodyBytes))
	if err != nil {
		s.writeError(w, r, fmt.Errorf("read body: %w", err))
		return
	}
	if len(strings.TrimSpace(string(raw))) > 0 {
		if err := json.Unmarshal(raw, &body); err != nil {
			s.writeError(w, r, paramError("body", `must be empty or {"by": "..."}: `+err.Error()))
			return
		}
	}
	by := strings.TrimSpace(body.By)
	if by == "" {
		by = defaultAckedByName
	}
	if err := s.queries.AckAlert(r.Context(), sessionID, kind, by); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.live.poke()
	as, err := s.queries.Alerts(r.Context(), app.AlertFilter{SessionID: sessionID, State: "all"})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for _, a := range as {
		if a.Kind == kind {
			writeJSON(w, r, http.StatusOK, a)
			return
		}
	}
	s.writeError(w, r, fmt.Errorf("alert %s/%s: %w", sessionID, kind, domain.ErrNotFound))
}

// listStuck answers GET /v1/stuck?limit=&cursor= with a page of the sessions the
// detector watches, in session id order, and the cursor of the next page.
func (s *Server) listStuck(w http.ResponseWriter, r *http.Request) {
	p := newParams(r.URL.Query(), s.now())
	limit := p.limit("limit", executionindex.DefaultLimit, executionindex.MaxLimit)
	if p.err != nil {
		s.writeError(w, r, p.err)
		return
	}
	page, err := s.queries.Stuck(r.Context(), p.str("cursor"), limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusOK, page)
}

// listQuarantine answers GET /v1/quarantine?limit= with the newest poison inputs and
// their total count.
func (s *Server) listQuarantine(w http.ResponseWriter, r *http.Request) {
	p := newParams(r.URL.Query(), s.now())
	limit := p.limit("limit", defaultListLimit, maxListLimit)
	if p.err != nil {
		s.writeError(w, r, p.err)
		return
	}
	items, total, err := s.queries.Quarantined(r.Context(), limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusOK, quarantinePage{Items: items, Total: total})
}

// healthz is liveness: 200 whenever the server answers at all.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, r, http.StatusOK, status{Status: "ok"})
}

// readyz is readiness: 503 with the reason while shutting down or while the ready
// check fails, 200 otherwise.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.stopping.Load() {
		writeJSON(w, r, http.StatusServiceUnavailable, errorBody{Error: "not ready: shutting down"})
		return
	}
	if s.ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ReadyTimeout)
		err := s.ready(ctx)
		cancel()
		if err != nil {
			s.logger.WarnContext(r.Context(), "not ready", "error", err)
			writeJSON(w, r, http.StatusServiceUnavailable, errorBody{Error: "not ready: " + err.Error()})
			return
		}
	}
	writeJSON(w, r, http.StatusOK, status{Status: "ready"})
}

// slogPromLogger routes promhttp's gathering errors to the server's logger.
type slogPromLogger struct{ s *Server }

func (l slogPromLogger) Println(v ...any) {
	l.s.logger.Error("gather metrics", "error", strings.TrimSpace(fmt.Sprintln(v...)))
}
