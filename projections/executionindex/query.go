package executionindex

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/agentwatch/agentwatch/domain"
)

// Query selects executions the way the History page of seed 000 does: by agent
// (AgentDateIndex) or by status (StatusDateIndex), over a startDate range, newest first.
type Query struct {
	// AgentName, if set, selects one agent's executions.
	AgentName string
	// Status, if set, selects one status (RUNNING, SUCCEEDED, ...).
	Status string
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
	if !q.From.IsZero() && !q.To.IsZero() && q.To.Before(q.From) {
		errs = append(errs, &domain.FieldError{Field: "to", Reason: "must not be before from"})
	}
	return errors.Join(errs...)
}

// Reader answers index queries. Implementations must return items in startDate order
// (descending unless Ascending), ties broken by executionArn, and a NextCursor only
// when more items may follow.
type Reader interface {
	Get(ctx context.Context, executionArn string) (Item, error)
	Query(ctx context.Context, q Query) (Page, error)
}

// Match reports whether it satisfies the filters of q (not the cursor or limit).
func (q *Query) Match(it *Item) bool {
	if q.AgentName != "" && it.AgentName != q.AgentName {
		return false
	}
	if q.Status != "" && it.Status != q.Status {
		return false
	}
	if !q.From.IsZero() && it.StartDate < domain.FormatTime(q.From) {
		return false
	}
	if !q.To.IsZero() && it.StartDate > domain.FormatTime(q.To) {
		return false
	}
	return true
}

// Cursor is where a page continues: the last item's startDate and ARN (the order of
// every query is total on that pair). Stores encode it as an opaque string.
type Cursor struct {
	StartDate string `json:"s"`
	Arn       string `json:"a"`
}

// EncodeCursor is the opaque cursor of the page that follows it.
func EncodeCursor(it *Item) string {
	b, _ := json.Marshal(Cursor{StartDate: it.StartDate, Arn: it.ExecutionArn})
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor reads a cursor that EncodeCursor made; anything else is an error naming
// the cursor field.
func DecodeCursor(s string) (Cursor, error) {
	var c Cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.Arn == "" {
		return c, &domain.FieldError{Field: "cursor", Reason: "is not a cursor this server returned"}
	}
	return c, nil
}
