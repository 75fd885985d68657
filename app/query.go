package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
	"github.com/agentwatch/agentwatch/projections/agentstats"
	"github.com/agentwatch/agentwatch/projections/executionindex"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// Queries answers every read of the CLI and the HTTP API, so both give the same shapes.
type Queries struct {
	reg        *projections.Registry
	models     ReadModelStore
	index      executionindex.Store
	stats      agentstats.Store
	stuck      stuck.Store
	journal    JournalReader
	alerts     AlertStore
	quarantine Quarantine
}

// NewQueries returns the query side over the read models of reg in models.
func NewQueries(reg *projections.Registry, models ReadModelStore, journal JournalReader, alerts AlertStore, quarantine Quarantine) *Queries {
	return &Queries{reg: reg, models: models, index: executionindex.NewStore(models), stats: agentstats.NewStore(models),
		stuck: stuck.NewStore(models, models), journal: journal, alerts: alerts, quarantine: quarantine}
}

// Executions lists the execution index.
func (q *Queries) Executions(ctx context.Context, query executionindex.Query) (executionindex.Page, error) {
	if err := query.Normalize(); err != nil {
		return executionindex.Page{}, err
	}
	page, err := q.index.Query(ctx, query)
	if err != nil {
		return page, err
	}
	if page.Items == nil {
		page.Items = []executionindex.Item{}
	}
	return page, nil
}

// ExecutionCounts counts what query selects, by status and by outcome, from the store.
func (q *Queries) ExecutionCounts(ctx context.Context, query executionindex.Query) (executionindex.Counts, error) {
	return q.index.Count(ctx, query)
}

// ExecutionView is one execution: its index item, with the documents that other read
// models keep per execution (their fields beside the item's, under their own names).
type ExecutionView struct {
	executionindex.Item
	// More holds the other read models' documents of the execution.
	More []any `json:"-"`
}

// MarshalJSON writes the item's fields and, beside them, every field of More.
func (v ExecutionView) MarshalJSON() ([]byte, error) {
	return mergeJSON(v.Item, v.More...)
}

// mergeJSON writes base's JSON object with the fields of each extra object added (a
// field base has keeps base's value).
func mergeJSON(base any, extras ...any) ([]byte, error) {
	b, err := json.Marshal(base)
	if err != nil || len(extras) == 0 {
		return b, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return nil, err
	}
	for _, x := range extras {
		xb, err := json.Marshal(x)
		if err != nil {
			return nil, err
		}
		var more map[string]json.RawMessage
		if err := json.Unmarshal(xb, &more); err != nil {
			continue
		}
		for k, v := range more {
			if _, taken := fields[k]; !taken {
				fields[k] = v
			}
		}
	}
	return json.Marshal(fields)
}

// Execution returns one execution with what every read model keeps of it;
// domain.ErrNotFound if the index has none.
func (q *Queries) Execution(ctx context.Context, arn string) (ExecutionView, error) {
	it, err := q.index.Get(ctx, arn)
	if err != nil {
		return ExecutionView{}, err
	}
	v := ExecutionView{Item: it}
	for _, t := range q.reg.Tables() {
		if t.Kind != projections.Documents || t.Key != "executionArn" || t.Name == executionindex.Table {
			continue
		}
		row, err := q.models.GetDocument(ctx, t.Name, arn)
		switch {
		case err == nil:
			v.More = append(v.More, row.Doc)
		case !errorsIsNotFound(err):
			return v, fmt.Errorf("execution %s: %s: %w", arn, t.Name, err)
		}
	}
	return v, nil
}

// FindExecutions finds executions by ARN, execution name or session id, newest first.
func (q *Queries) FindExecutions(ctx context.Context, term string) ([]executionindex.Item, error) {
	if term == "" {
		return nil, &domain.FieldError{Field: "q", Reason: "is empty"}
	}
	out := []executionindex.Item{}
	seen := map[string]bool{}
	add := func(it executionindex.Item) {
		if !seen[it.ExecutionArn] {
			seen[it.ExecutionArn] = true
			out = append(out, it)
		}
	}
	if it, err := q.index.Get(ctx, term); err == nil {
		add(it)
	} else if !errorsIsNotFound(err) {
		return nil, err
	}
	named, err := q.index.ByName(ctx, term, executionindex.MaxLimit)
	if err != nil {
		return nil, err
	}
	for _, it := range named {
		add(it)
	}
	sessions, err := q.models.LoadSessions(ctx, []string{term})
	if err != nil {
		return nil, fmt.Errorf("find session %s: %w", term, err)
	}
	if vs, ok := sessions[term]; ok {
		for i := range vs.Session.Execs {
			it, err := q.index.Get(ctx, vs.Session.Execs[i].Arn)
			if err == nil {
				add(it)
			} else if !errorsIsNotFound(err) {
				return nil, err
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].StartDate > out[j].StartDate })
	return out, nil
}

func errorsIsNotFound(err error) bool { return errors.Is(err, domain.ErrNotFound) }

// AnsweredItem is a journal item as the CLI and the API answer it: in seed-002 form,
// every attribute cut to domain.MaxAnswerFieldBytes (an agent may have written a
// megabyte-long ErrorMessage straight to the journal), and Truncated naming the
// attributes that were cut.
type AnsweredItem struct {
	domain.JournalItem
	Truncated []string `json:"truncated,omitempty"`
}

// EventsQuery selects a session's events as seed 002's queries do, in the vocabulary
// the API (GET /v1/sessions/{id}/events) and the CLI (`sessions events`) share.
type EventsQuery struct {
	// Descending returns the newest first (order=desc).
	Descending bool
	// Statuses keeps the events of any of these statuses (status=A,B); none: all.
	Statuses []domain.Status
	// StatusContains keeps the events whose status contains it (contains=FAILED, the
	// CLI's --failures).
	StatusContains string
	// After keeps the events after this time (after=T): SK > "EVENT#"+T.
	After time.Time
	// Limit caps the count (0: no cap), applied after the order: order=desc&limit=N is
	// the latest N.
	Limit int
}

// StatusList reads a comma list of journal statuses, as the API's status= and the CLI's
// --status take them; "" is none. Statuses are kept as written: agents may write their
// own.
func StatusList(s string) []domain.Status {
	var out []domain.Status
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, domain.Status(part))
		}
	}
	return out
}

// SessionEvents returns a session's journal items in seed-002 form, bounded (see
// AnsweredItem); domain.ErrNotFound when the journal has no event of the session at
// all (an empty list when it has some, none of which match).
func (q *Queries) SessionEvents(ctx context.Context, id string, query EventsQuery) ([]AnsweredItem, error) {
	sq := SessionEventsQuery{Descending: query.Descending, StatusContains: query.StatusContains, After: query.After, Limit: query.Limit}
	switch len(query.Statuses) {
	case 0:
	case 1:
		sq.Status = query.Statuses[0]
	default:
		// Several statuses: the stores filter one; the rest is filtered here, and the
		// limit applied after it.
		sq.Limit = 0
	}
	evs, err := q.journal.SessionEvents(ctx, id, sq)
	if err != nil {
		return nil, fmt.Errorf("session %s events: %w", id, err)
	}
	if len(query.Statuses) > 1 {
		keep := evs[:0]
		for _, e := range evs {
			if slices.Contains(query.Statuses, e.Status) {
				keep = append(keep, e)
			}
		}
		evs = keep
		if query.Limit > 0 && len(evs) > query.Limit {
			evs = evs[:query.Limit]
		}
	}
	if len(evs) == 0 {
		some, err := q.journal.SessionEvents(ctx, id, SessionEventsQuery{Limit: 1})
		if err != nil {
			return nil, fmt.Errorf("session %s events: %w", id, err)
		}
		if len(some) == 0 {
			return nil, fmt.Errorf("session %s: %w", id, domain.ErrNotFound)
		}
	}
	items := make([]AnsweredItem, len(evs))
	for i := range evs {
		items[i].JournalItem, items[i].Truncated = evs[i].Item().Bounded(domain.MaxAnswerFieldBytes)
	}
	return items, nil
}

// TimelineEntry is one event of a session's timeline.
type TimelineEntry struct {
	Status    domain.Status `json:"status"`
	Timestamp string        `json:"timestamp"`
	SK        string        `json:"sk"`
	// ErrorMessage is cut to domain.MaxAnswerFieldBytes; ErrorMessageTruncated says so.
	ErrorMessage          string `json:"errorMessage,omitempty"`
	ErrorMessageTruncated bool   `json:"errorMessageTruncated,omitempty"`
	// SincePreviousMs is the time since the previous event; SinceStartMs since the first.
	SincePreviousMs int64 `json:"sincePreviousMs"`
	SinceStartMs    int64 `json:"sinceStartMs"`
	// Known is false for a status agentwatch does not know (kept as written).
	Known bool `json:"known"`
}

// SessionView is what `sessions show` and GET /v1/sessions/{id} answer.
type SessionView struct {
	SessionID  string                `json:"sessionId"`
	AgentName  string                `json:"agentName,omitempty"`
	Diagnosis  domain.Diagnosis      `json:"diagnosis"`
	Timeline   []TimelineEntry       `json:"timeline"`
	Executions []executionindex.Item `json:"executions"`
	Alerts     []Alert               `json:"alerts"`
	StartedAt  string                `json:"startedAt,omitempty"`
	LastAt     string                `json:"lastEventAt,omitempty"`
	Stage      domain.Stage          `json:"stage,omitempty"`
	Stats      *agentstats.Quantiles `json:"-"`
}

// Session returns a session's timeline and diagnosis; domain.ErrNotFound when the
// journal has no event of it.
func (q *Queries) Session(ctx context.Context, id string) (SessionView, error) {
	evs, err := q.journal.SessionEvents(ctx, id, SessionEventsQuery{})
	if err != nil {
		return SessionView{}, fmt.Errorf("session %s events: %w", id, err)
	}
	if len(evs) == 0 {
		return SessionView{}, fmt.Errorf("session %s: %w", id, domain.ErrNotFound)
	}
	// Fold the events here rather than trusting the stored aggregate: the view is then
	// exact even while the projector catches up.
	var s domain.Session
	for i := range evs {
		s.Apply(&evs[i])
	}
	v := SessionView{SessionID: id, AgentName: s.AgentName(), Diagnosis: s.Diagnose(),
		Timeline: make([]TimelineEntry, 0, len(evs)), Executions: executionindex.ItemsOf(&s, nil), Alerts: []Alert{}}
	if v.Executions == nil {
		v.Executions = []executionindex.Item{}
	}
	v.Stage, _ = s.CurrentStage()
	v.StartedAt = domain.FormatTime(s.StartTime())
	v.LastAt = domain.FormatTime(time.UnixMilli(s.LastAt))
	sort.SliceStable(evs, func(i, j int) bool {
		if !evs[i].Timestamp.Equal(evs[j].Timestamp) {
			return evs[i].Timestamp.Before(evs[j].Timestamp)
		}
		return evs[i].SK < evs[j].SK
	})
	first := evs[0].Timestamp
	prev := first
	for i := range evs {
		e := &evs[i]
		msg, cut := domain.Truncate(e.ErrorMessage, domain.MaxAnswerFieldBytes)
		v.Timeline = append(v.Timeline, TimelineEntry{
			Status: e.Status, Timestamp: domain.FormatTime(e.Timestamp), SK: e.SK, ErrorMessage: msg, ErrorMessageTruncated: cut,
			SincePreviousMs: e.Timestamp.Sub(prev).Milliseconds(), SinceStartMs: e.Timestamp.Sub(first).Milliseconds(),
			Known: e.Status.Known(),
		})
		prev = e.Timestamp
	}
	if q.alerts != nil {
		page, err := q.alerts.ListAlerts(ctx, AlertFilter{SessionID: id, State: AlertFilterAll})
		if err != nil {
			return v, fmt.Errorf("session %s alerts: %w", id, err)
		}
		if page.Items != nil {
			v.Alerts = page.Items
		}
	}
	return v, nil
}

// AgentStatsView is what `stats` and GET /v1/agents/{name}/stats answer.
type AgentStatsView struct {
	AgentName   string             `json:"agentName,omitempty"`
	Granularity string             `json:"granularity"`
	Total       agentstats.Stats   `json:"total"`
	Buckets     []agentstats.Stats `json:"buckets"`
	// More holds, under their read models' names, the sums that other read models keep
	// per agent over the same range (projections.CounterPresenter).
	More map[string]any `json:"-"`
}

// MarshalJSON writes the view's fields and, beside them, More.
func (v AgentStatsView) MarshalJSON() ([]byte, error) {
	type plain AgentStatsView
	if len(v.More) == 0 {
		return json.Marshal(plain(v))
	}
	return mergeJSON(plain(v), v.More)
}

// Stats returns per-bucket stats and their total over the range, per agent, with what
// other read models sum per agent over it.
func (q *Queries) Stats(ctx context.Context, query StatsQuery) ([]AgentStatsView, error) {
	if query.Granularity == "" {
		query.Granularity = agentstats.DayPrefix
	}
	if query.Granularity != agentstats.DayPrefix && query.Granularity != agentstats.HourPrefix {
		return nil, &domain.FieldError{Field: "granularity", Reason: "must be hour or day"}
	}
	buckets, err := q.stats.Stats(ctx, query)
	if err != nil {
		return nil, err
	}
	byAgent := map[string]*AgentStatsView{}
	totals := map[string]agentstats.Counters{}
	var order []string
	for _, b := range buckets {
		v := byAgent[b.Agent]
		if v == nil {
			v = &AgentStatsView{AgentName: b.Agent, Granularity: granularityName(query.Granularity), Buckets: []agentstats.Stats{}}
			byAgent[b.Agent] = v
			totals[b.Agent] = agentstats.Counters{}
			order = append(order, b.Agent)
		}
		v.Buckets = append(v.Buckets, agentstats.StatsOf(b.Agent, b.Bucket, b.Counters))
		agentstats.Merge(totals[b.Agent], b.Counters)
	}
	sort.Strings(order)
	out := make([]AgentStatsView, 0, len(order))
	for _, a := range order {
		v := byAgent[a]
		v.Total = agentstats.StatsOf(a, "TOTAL", totals[a])
		sort.Slice(v.Buckets, func(i, j int) bool { return v.Buckets[i].Bucket < v.Buckets[j].Bucket })
		out = append(out, *v)
	}
	if err := q.addAgentSums(ctx, query, out); err != nil {
		return nil, err
	}
	return out, nil
}

// addAgentSums adds to each view what the other read models' per-agent counters tables
// (partitioned by agentName, sorted by the same buckets) sum to over the query's range.
func (q *Queries) addAgentSums(ctx context.Context, query StatsQuery, views []AgentStatsView) error {
	for _, m := range q.reg.Models() {
		p, ok := m.(projections.CounterPresenter)
		if !ok {
			continue
		}
		for _, t := range m.Tables() {
			if t.Kind != projections.Counters || t.Partition != "agentName" || t.Name == agentstats.Table {
				continue
			}
			lo, hi := agentstats.BucketRange(query.Granularity, query.From, query.To)
			for i := range views {
				rows, err := q.models.ReadCounters(ctx, t.Name, views[i].AgentName, lo, hi)
				if err != nil {
					return fmt.Errorf("stats of %s: %s: %w", views[i].AgentName, t.Name, err)
				}
				sum := map[string]int64{}
				for _, r := range rows {
					projections.AddCounters(sum, r.Counters)
				}
				if views[i].More == nil {
					views[i].More = map[string]any{}
				}
				views[i].More[m.Name()] = p.Present(t.Name, sum)
			}
		}
	}
	return nil
}

func granularityName(prefix string) string {
	if prefix == agentstats.HourPrefix {
		return "hour"
	}
	return "day"
}

// Alerts lists the alerts f selects, newest first: one page of f.Limit (all when
// f.Limit <= 0). AlertPage says whether there are more.
func (q *Queries) Alerts(ctx context.Context, f AlertFilter) ([]Alert, error) {
	page, err := q.AlertPage(ctx, f)
	return page.Items, err
}

// AlertPage answers one page of the alerts f selects, newest first, and the cursor of
// the next page ("" on the last).
func (q *Queries) AlertPage(ctx context.Context, f AlertFilter) (AlertPage, error) {
	if err := f.Validate(); err != nil {
		return AlertPage{}, err
	}
	page, err := q.alerts.ListAlerts(ctx, f)
	if err != nil {
		return AlertPage{}, err
	}
	if page.Items == nil {
		page.Items = []Alert{}
	}
	return page, nil
}

// AlertCounts counts the alerts f selects, in all and per kind: the true numbers, not
// the size of a page.
func (q *Queries) AlertCounts(ctx context.Context, f AlertFilter) (AlertCounts, error) {
	if err := f.Validate(); err != nil {
		return AlertCounts{}, err
	}
	c, err := q.alerts.CountAlerts(ctx, f)
	if err != nil {
		return AlertCounts{}, err
	}
	if c.ByKind == nil {
		c.ByKind = map[stuck.Kind]int64{}
	}
	return c, nil
}

// AckAlert acknowledges an alert.
func (q *Queries) AckAlert(ctx context.Context, sessionID string, kind stuck.Kind, by string) error {
	if kind.Bit() == 0 {
		return &domain.FieldError{Field: "kind", Reason: "must be one of stuck, missing_completion, never_started, journal_mismatch, recovered"}
	}
	// The store's error says "ack alert SESSION/KIND" already: say it once.
	return q.alerts.Ack(ctx, sessionID, kind, by, time.Now().UTC())
}

// StuckPage is one page of the sessions the detector watches.
type StuckPage struct {
	Items      []stuck.Entry `json:"items"`
	NextCursor string        `json:"nextCursor,omitempty"`
}

// Stuck lists up to limit sessions the detector watches, in session id order, after
// the cursor of a previous page.
func (q *Queries) Stuck(ctx context.Context, cursor string, limit int) (StuckPage, error) {
	if limit == 0 {
		limit = executionindex.DefaultLimit
	}
	if limit < 0 || limit > executionindex.MaxLimit {
		return StuckPage{}, &domain.FieldError{Field: "limit", Reason: fmt.Sprintf("must be between 1 and %d", executionindex.MaxLimit)}
	}
	page := StuckPage{Items: []stuck.Entry{}}
	after := cursor
	for len(page.Items) < limit {
		es, next, err := q.stuck.Entries(ctx, after, limit)
		if err != nil {
			return page, err
		}
		for _, e := range es {
			// Closed entries wait only for the detector's last look; they are not open.
			if !e.Closed && len(page.Items) < limit {
				page.Items = append(page.Items, e)
				after = e.SessionID
			}
		}
		if next == "" {
			return page, nil
		}
		if len(page.Items) < limit {
			after = next
		}
	}
	page.NextCursor = after
	return page, nil
}

// Quarantined lists poison inputs.
func (q *Queries) Quarantined(ctx context.Context, limit int) ([]Quarantined, int64, error) {
	items, err := q.quarantine.ListQuarantined(ctx, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("list quarantine: %w", err)
	}
	n, err := q.quarantine.CountQuarantined(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("count quarantine: %w", err)
	}
	if items == nil {
		items = []Quarantined{}
	}
	return items, n, nil
}
