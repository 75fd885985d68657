package executionindex

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
)

// Query selects executions the way the History page of seed 000 does: by agent
// (AgentDateIndex), by status (StatusDateIndex) or by outcome (OutcomeDateIndex), over
// a startDate range, newest first.
type Query struct {
	// AgentName, if set, selects one agent's executions.
	AgentName string
	// Status, if set, selects one status (RUNNING, SUCCEEDED, ...).
	Status string
	// Outcomes, if set, selects executions whose session has one of these outcomes.
	Outcomes []string
	// From and To bound startDate, inclusive; zero means unbounded.
	From, To time.Time
	// Limit caps the page size (default 50, at most 1000).
	Limit int
	// Cursor continues a previous page; opaque to callers.
	Cursor string
	// Ascending returns oldest first.
	Ascending bool
}

// Page is one page of a Query.
type Page struct {
	Items      []Item `json:"items"`
	NextCursor string `json:"nextCursor,omitempty"`
}

// Limits of a query page.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

// Outcomes lists the outcomes an item can have, in the order listings show them.
var Outcomes = []domain.Outcome{domain.OutcomeCompleted, domain.OutcomeInProgress, domain.OutcomeInvocationFailed,
	domain.OutcomeEntrypointFailed, domain.OutcomeBackgroundTaskFailed, domain.OutcomeMissingCompletion,
	domain.OutcomeNeverStarted, domain.OutcomeAborted, domain.OutcomeExecutionOnly}

// Normalize applies defaults and checks the query, naming the bad field.
func (q *Query) Normalize() error {
	var errs []error
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	if q.Limit < 0 || q.Limit > MaxLimit {
		errs = append(errs, &domain.FieldError{Field: "limit", Reason: fmt.Sprintf("must be between 1 and %d", MaxLimit)})
	}
	if q.Status != "" && !domain.ExecStatus(q.Status).Known() {
		errs = append(errs, &domain.FieldError{Field: "status", Reason: "must be one of RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE"})
	}
	for _, o := range q.Outcomes {
		if !slices.Contains(Outcomes, domain.Outcome(o)) {
			names := make([]string, len(Outcomes))
			for i, x := range Outcomes {
				names[i] = string(x)
			}
			errs = append(errs, &domain.FieldError{Field: "outcome", Reason: fmt.Sprintf("%q: must be one of %s", o, strings.Join(names, ", "))})
			break
		}
	}
	slices.Sort(q.Outcomes)
	q.Outcomes = slices.Compact(q.Outcomes)
	if !q.From.IsZero() && !q.To.IsZero() && q.To.Before(q.From) {
		errs = append(errs, &domain.FieldError{Field: "to", Reason: "must not be before from"})
	}
	return errors.Join(errs...)
}

// Reader answers index queries. Implementations must return items in startDate order
// (descending unless Ascending), ties broken by executionArn, and a NextCursor only
// when more items may follow.
type Reader interface {
	// Get returns one execution; domain.ErrNotFound (wrapped) when the index has none.
	Get(ctx context.Context, executionArn string) (Item, error)
	// Query returns one page of executions.
	Query(ctx context.Context, q Query) (Page, error)
}

// Counts are how many executions a query selects, in all, by status and by outcome.
type Counts struct {
	Total     int64            `json:"total"`
	ByStatus  map[string]int64 `json:"byStatus"`
	ByOutcome map[string]int64 `json:"byOutcome"`
}

// Store reads the index through a backend's documents reader.
type Store struct {
	docs projections.DocumentReader
}

var _ Reader = Store{}

// NewStore returns the index's queries over docs.
func NewStore(docs projections.DocumentReader) Store { return Store{docs: docs} }

// Get returns one execution.
func (s Store) Get(ctx context.Context, executionArn string) (Item, error) {
	row, err := s.docs.GetDocument(ctx, Table, executionArn)
	if err != nil {
		return Item{}, fmt.Errorf("get execution %s: %w", executionArn, err)
	}
	return itemOfRow(row), nil
}

// itemOfRow is the item a row holds, its rank the row's guard.
func itemOfRow(r projections.Row) Item {
	it := *r.Doc.(*Item)
	it.Rank = r.Guard
	return it
}

// source is one index query of a listing: a listing merges several when it selects
// more than one partition (every status, or several outcomes).
func (q *Query) sources() []projections.IndexQuery {
	base := projections.IndexQuery{Table: Table, Descending: !q.Ascending}
	if !q.From.IsZero() {
		base.From = domain.FormatTime(q.From)
	}
	if !q.To.IsZero() {
		base.To = domain.FormatTime(q.To)
	}
	outcomes := make([]any, len(q.Outcomes))
	for i, o := range q.Outcomes {
		outcomes[i] = o
	}
	var out []projections.IndexQuery
	switch {
	case q.AgentName != "":
		src := base
		src.Index, src.Partition = AgentDateIndex, q.AgentName
		if q.Status != "" {
			src.Where = append(src.Where, projections.Filter{Attr: "status", Values: []any{q.Status}})
		}
		if len(outcomes) > 0 {
			src.Where = append(src.Where, projections.Filter{Attr: "outcome", Values: outcomes})
		}
		out = append(out, src)
	case q.Status != "":
		src := base
		src.Index, src.Partition = StatusDateIndex, q.Status
		if len(outcomes) > 0 {
			src.Where = append(src.Where, projections.Filter{Attr: "outcome", Values: outcomes})
		}
		out = append(out, src)
	case len(q.Outcomes) > 0:
		for _, o := range q.Outcomes {
			src := base
			src.Index, src.Partition = OutcomeDateIndex, o
			out = append(out, src)
		}
	default:
		for _, st := range domain.ExecStatuses {
			src := base
			src.Index, src.Partition = StatusDateIndex, string(st)
			out = append(out, src)
		}
	}
	return out
}

// Query answers an index query: from AgentDateIndex when an agent is given (status and
// outcomes then filter), else StatusDateIndex for a status, else OutcomeDateIndex once
// per outcome, else StatusDateIndex once per status — indexed queries, never a scan —
// merged in (startDate, executionArn) order. NextCursor is set exactly when more items
// follow.
func (s Store) Query(ctx context.Context, q Query) (Page, error) {
	if err := q.Normalize(); err != nil {
		return Page{}, fmt.Errorf("query executions: %w", err)
	}
	var after *projections.Cursor
	if q.Cursor != "" {
		c, err := projections.DecodeCursor(q.Cursor, projections.String, "cursor")
		if err != nil {
			return Page{}, fmt.Errorf("query executions: %w", err)
		}
		after = c
	}
	srcs := q.sources()
	found := make([][]projections.Row, len(srcs))
	for i := range srcs {
		srcs[i].After, srcs[i].Limit = after, q.Limit+1
		rows, err := s.docs.QueryIndex(ctx, srcs[i])
		if err != nil {
			return Page{}, fmt.Errorf("query executions: %w", err)
		}
		found[i] = rows
	}
	merged := mergeRows(found, !q.Ascending)
	page := Page{Items: make([]Item, 0, min(len(merged), q.Limit))}
	for _, r := range merged {
		if len(page.Items) == q.Limit {
			last := &page.Items[q.Limit-1]
			page.NextCursor = projections.EncodeCursor(&projections.Cursor{Sort: last.StartDate, Key: last.ExecutionArn})
			break
		}
		page.Items = append(page.Items, itemOfRow(r))
	}
	return page, nil
}

// mergeRows merges rows of several sources in (startDate, key) order, dropping a key
// seen twice (an item that changed partition between two source queries).
func mergeRows(sources [][]projections.Row, descending bool) []projections.Row {
	var all []projections.Row
	for _, rows := range sources {
		all = append(all, rows...)
	}
	slices.SortFunc(all, func(a, b projections.Row) int {
		c := strings.Compare(a.Doc.(*Item).StartDate, b.Doc.(*Item).StartDate)
		if c == 0 {
			c = strings.Compare(a.Key, b.Key)
		}
		if descending {
			return -c
		}
		return c
	})
	return slices.CompactFunc(all, func(a, b projections.Row) bool { return a.Key == b.Key })
}

// Count counts what q selects (its cursor and limit aside), by status and by outcome.
func (s Store) Count(ctx context.Context, q Query) (Counts, error) {
	q.Limit, q.Cursor = MaxLimit, ""
	if err := q.Normalize(); err != nil {
		return Counts{}, fmt.Errorf("count executions: %w", err)
	}
	c := Counts{ByStatus: map[string]int64{}, ByOutcome: map[string]int64{}}
	count := func(sub Query) (int64, error) {
		var n int64
		for _, src := range sub.sources() {
			k, err := s.docs.CountIndex(ctx, src)
			if err != nil {
				return 0, fmt.Errorf("count executions: %w", err)
			}
			n += k
		}
		return n, nil
	}
	for _, st := range domain.ExecStatuses {
		if q.Status != "" && q.Status != string(st) {
			continue
		}
		sub := q
		sub.Status = string(st)
		n, err := count(sub)
		if err != nil {
			return Counts{}, err
		}
		if n > 0 {
			c.ByStatus[string(st)] = n
		}
		c.Total += n
	}
	for _, o := range Outcomes {
		if len(q.Outcomes) > 0 && !slices.Contains(q.Outcomes, string(o)) {
			continue
		}
		sub := q
		sub.Outcomes = []string{string(o)}
		n, err := count(sub)
		if err != nil {
			return Counts{}, err
		}
		if n > 0 {
			c.ByOutcome[string(o)] = n
		}
	}
	return c, nil
}

// ByName returns up to limit executions named name (NameDateIndex), newest first.
func (s Store) ByName(ctx context.Context, name string, limit int) ([]Item, error) {
	rows, err := s.docs.QueryIndex(ctx, projections.IndexQuery{Table: Table, Index: NameDateIndex, Partition: name,
		Descending: true, Limit: limit})
	if err != nil {
		return nil, fmt.Errorf("executions named %s: %w", name, err)
	}
	out := make([]Item, len(rows))
	for i := range rows {
		out[i] = itemOfRow(rows[i])
	}
	return out, nil
}

// Items returns every item of a state, sorted by executionArn (tests, export).
func Items(st *projections.State) []Item {
	rows := st.Documents(Table)
	out := make([]Item, len(rows))
	for i := range rows {
		out[i] = itemOfRow(rows[i])
	}
	return out
}
