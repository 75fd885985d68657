package app

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/executionindex"
)

// LookupExecutions finds the executions a person means by term, as `executions show`
// takes it: an execution ARN, else a session id (the session's executions), else an
// execution name (names are unique per state machine, so several state machines may
// have one; the index's name index answers it). The
// items come from the index, or from the journal for a session's executions the index
// does not have yet. domain.ErrNotFound when nothing matches.
func (q *Queries) LookupExecutions(ctx context.Context, term string) ([]executionindex.Item, error) {
	term = strings.TrimSpace(term)
	if term == "" {
		return nil, &domain.FieldError{Field: "execution", Reason: "is empty: give an execution ARN, an execution name or a session id"}
	}
	if strings.HasPrefix(term, "arn:") {
		it, err := q.index.Get(ctx, term)
		if err != nil {
			return nil, err
		}
		return []executionindex.Item{it}, nil
	}
	v, err := q.Session(ctx, term)
	switch {
	case err == nil && len(v.Executions) > 0:
		items := make([]executionindex.Item, 0, len(v.Executions))
		for _, x := range v.Executions {
			it, err := q.index.Get(ctx, x.ExecutionArn)
			switch {
			case err == nil:
				items = append(items, it)
			case errors.Is(err, domain.ErrNotFound):
				items = append(items, x) // not indexed yet: what the journal says
			default:
				return nil, err
			}
		}
		return items, nil
	case err != nil && !errors.Is(err, domain.ErrNotFound):
		return nil, err
	}
	found, err := q.index.ByName(ctx, term, executionindex.MaxLimit)
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("no execution has the ARN, name or session id %q: %w", term, domain.ErrNotFound)
	}
	return found, nil
}
