package dynamodb

import (
	"context"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/executionindex"
)

// Get returns the index item of one execution (a consistent read); domain.ErrNotFound
// (wrapped) when the index has none.
func (s *ReadModelStore) Get(ctx context.Context, executionArn string) (executionindex.Item, error) {
	t, _, err := s.tables(ctx)
	if err != nil {
		return executionindex.Item{}, fmt.Errorf("get execution %s: %w", executionArn, err)
	}
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &t.Executions, ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{attrExecutionArn: str(executionArn)},
	})
	if err != nil {
		return executionindex.Item{}, fmt.Errorf("get execution %s: %w", executionArn, edge(err))
	}
	if out.Item == nil {
		return executionindex.Item{}, fmt.Errorf("get execution %s: %w", executionArn, domain.ErrNotFound)
	}
	return decodeIndexItem(out.Item)
}

// executionindex.Cursor is the position after which a page continues: the last item's startDate
// and ARN, the same keyset cursor as the embedded backend's.
//
// Why not DynamoDB's LastEvaluatedKey: the GSIs sort by startDate only, and items
// with equal startDates come back in no defined order, while the Reader contract
// orders them by ARN; and an unfiltered listing merges six StatusDateIndex queries,
// which have six LastEvaluatedKeys. A keyset cursor serves both: each page asks the
// index from the cursor's startDate on and skips what is not after the cursor.

// before reports whether a comes before b in the order of a query.
func before(a, b *executionindex.Item, ascending bool) bool {
	if a.StartDate != b.StartDate {
		return (a.StartDate < b.StartDate) == ascending
	}
	if a.ExecutionArn == b.ExecutionArn {
		return false
	}
	return (a.ExecutionArn < b.ExecutionArn) == ascending
}

// indexSource is one GSI query of an index listing.
type indexSource struct {
	index  string
	key    expression.KeyConditionBuilder
	filter *expression.ConditionBuilder
}

// Query answers an index query in startDate order (newest first unless q.Ascending),
// ties broken by ARN: by agent through AgentDateIndex (a status, if also given, is a
// filter), by status through StatusDateIndex, and with neither by querying
// StatusDateIndex once per status and merging — six indexed queries rather than a
// scan of the table. The date range is the GSI key condition on startDate. NextCursor
// is set exactly when more items follow.
//
// GSIs are eventually consistent; an execution indexed without a startDate (a status
// change that carried none) is in no GSI and only Get finds it.
func (s *ReadModelStore) Query(ctx context.Context, q executionindex.Query) (executionindex.Page, error) {
	if err := q.Normalize(); err != nil {
		return executionindex.Page{}, fmt.Errorf("query executions: %w", err)
	}
	t, _, err := s.tables(ctx)
	if err != nil {
		return executionindex.Page{}, fmt.Errorf("query executions: %w", err)
	}
	var cur *executionindex.Cursor
	if q.Cursor != "" {
		c, err := executionindex.DecodeCursor(q.Cursor)
		if err != nil {
			return executionindex.Page{}, fmt.Errorf("query executions: %w", err)
		}
		cur = &c
	}
	lo, hi := "", ""
	if !q.From.IsZero() {
		lo = domain.FormatTime(q.From)
	}
	if !q.To.IsZero() {
		hi = domain.FormatTime(q.To)
	}
	if cur != nil {
		if q.Ascending && cur.StartDate > lo {
			lo = cur.StartDate
		}
		if !q.Ascending && (hi == "" || cur.StartDate < hi) {
			hi = cur.StartDate
		}
	}
	if lo != "" && hi != "" && lo > hi {
		return executionindex.Page{Items: []executionindex.Item{}}, nil
	}
	dates := func(k expression.KeyConditionBuilder) expression.KeyConditionBuilder {
		d := expression.Key(attrStartDate)
		switch {
		case lo != "" && hi != "":
			return k.And(d.Between(expression.Value(lo), expression.Value(hi)))
		case lo != "":
			return k.And(d.GreaterThanEqual(expression.Value(lo)))
		case hi != "":
			return k.And(d.LessThanEqual(expression.Value(hi)))
		}
		return k
	}
	var sources []indexSource
	switch {
	case q.AgentName != "":
		src := indexSource{index: indexAgentDate, key: dates(expression.Key(attrAgentName).Equal(expression.Value(q.AgentName)))}
		if q.Status != "" {
			f := expression.Name(attrStatus).Equal(expression.Value(q.Status))
			src.filter = &f
		}
		sources = append(sources, src)
	case q.Status != "":
		sources = append(sources, indexSource{index: indexStatusDate, key: dates(expression.Key(attrStatus).Equal(expression.Value(q.Status)))})
	default:
		for _, st := range domain.ExecStatuses {
			sources = append(sources, indexSource{index: indexStatusDate, key: dates(expression.Key(attrStatus).Equal(expression.Value(string(st))))})
		}
	}

	// Each source yields its first Limit+1 items after the cursor (completing the last
	// startDate, whose items come in no order); the first Limit+1 of the merge are
	// then exact, and the +1 says whether more follow.
	need := q.Limit + 1
	found := make([][]executionindex.Item, len(sources))
	err = forEach(ctx, len(sources), len(sources), func(ctx context.Context, i int) error {
		items, err := s.querySource(ctx, t.Executions, sources[i], q.Ascending, cur, need)
		found[i] = items
		return err
	})
	if err != nil {
		return executionindex.Page{}, fmt.Errorf("query executions: %w", err)
	}
	var merged []executionindex.Item
	seen := map[string]bool{}
	for _, items := range found {
		for _, it := range items {
			// An item that changed status between two source queries can be in both.
			if !seen[it.ExecutionArn] {
				seen[it.ExecutionArn] = true
				merged = append(merged, it)
			}
		}
	}
	sort.Slice(merged, func(i, j int) bool { return before(&merged[i], &merged[j], q.Ascending) })
	page := executionindex.Page{Items: merged}
	if len(merged) > q.Limit {
		page.Items = merged[:q.Limit]
		page.NextCursor = executionindex.EncodeCursor(&page.Items[q.Limit-1])
	}
	if page.Items == nil {
		page.Items = []executionindex.Item{}
	}
	return page, nil
}

// querySource reads one source in index order, skipping items not after the cursor,
// until it has need items and every item sharing the last one's startDate, or the
// source is exhausted.
func (s *ReadModelStore) querySource(ctx context.Context, table string, src indexSource, ascending bool, cur *executionindex.Cursor, need int) ([]executionindex.Item, error) {
	b := expression.NewBuilder().WithKeyCondition(src.key)
	pageSize := need
	if src.filter != nil {
		b = b.WithFilter(*src.filter)
		pageSize = max(need, 100) // Limit counts items before the filter
	}
	e, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("build %s query: %w", src.index, err)
	}
	p := dynamodb.NewQueryPaginator(s.client, &dynamodb.QueryInput{
		TableName: &table, IndexName: aws.String(src.index),
		KeyConditionExpression: e.KeyCondition(), FilterExpression: e.Filter(),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
		ScanIndexForward: aws.Bool(ascending), Limit: aws.Int32(int32(pageSize)),
	})
	var out []executionindex.Item
	boundary := ""
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", src.index, edge(err))
		}
		for _, raw := range page.Items {
			it, err := decodeIndexItem(raw)
			if err != nil {
				return nil, err
			}
			if cur != nil && !before(&executionindex.Item{StartDate: cur.StartDate, ExecutionArn: cur.Arn}, &it, ascending) {
				continue
			}
			if len(out) >= need && it.StartDate != boundary {
				return out, nil
			}
			out = append(out, it)
			if len(out) == need {
				boundary = it.StartDate
			}
		}
	}
	return out, nil
}
