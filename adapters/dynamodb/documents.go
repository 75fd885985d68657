package dynamodb

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
)

// GetDocument returns the document of key in table (a consistent read);
// domain.ErrNotFound when there is none.
func (s *ReadModelStore) GetDocument(ctx context.Context, table, key string) (projections.Row, error) {
	t, name, err := s.tableOf(ctx, table)
	if err != nil {
		return projections.Row{}, err
	}
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &name, ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{t.Key: str(key)}})
	if err != nil {
		return projections.Row{}, fmt.Errorf("get %s %s: %w", table, key, edge(err))
	}
	if out.Item == nil {
		return projections.Row{}, domain.ErrNotFound
	}
	return decodeDoc(t, out.Item)
}

// ListDocuments returns up to limit documents after key after, in the table's scan
// order (stable: the key is the scan's ExclusiveStartKey).
func (s *ReadModelStore) ListDocuments(ctx context.Context, table, after string, limit int) ([]projections.Row, error) {
	t, name, err := s.tableOf(ctx, table)
	if err != nil {
		return nil, err
	}
	in := &dynamodb.ScanInput{TableName: &name, ConsistentRead: aws.Bool(true), Limit: aws.Int32(int32(min(limit, 1000)))}
	if after != "" {
		in.ExclusiveStartKey = map[string]types.AttributeValue{t.Key: str(after)}
	}
	var out []projections.Row
	p := dynamodb.NewScanPaginator(s.client, in)
	for p.HasMorePages() && len(out) < limit {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", table, edge(err))
		}
		for _, item := range page.Items {
			r, err := decodeDoc(t, item)
			if err != nil {
				return nil, err
			}
			if len(out) < limit {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// source is one DynamoDB query of an index query: the index partition, or one shard of
// an index over the whole table.
type source struct {
	key    expression.KeyConditionBuilder
	filter *expression.ConditionBuilder
}

// indexSources renders an index query as the queries that answer it: one for a
// partitioned index, one per shard for an index over the whole table. The sort bounds
// are key conditions; a cursor narrows them to start at its sort value (the query then
// skips what is not after it); filters are filter expressions.
func (s *ReadModelStore) indexSources(t *projections.Table, ix projections.Index, q projections.IndexQuery) []source {
	from, to := q.From, q.To
	if c := q.After; c != nil {
		if !q.Descending && (from == nil || projections.CompareValues(c.Sort, from) > 0) {
			from = c.Sort
		}
		if q.Descending && (to == nil || projections.CompareValues(c.Sort, to) < 0) {
			to = c.Sort
		}
	}
	sortBounds := func(k expression.KeyConditionBuilder) expression.KeyConditionBuilder {
		d := expression.Key(ix.Sort)
		switch {
		case from != nil && to != nil:
			return k.And(d.Between(expression.Value(from), expression.Value(to)))
		case from != nil:
			return k.And(d.GreaterThanEqual(expression.Value(from)))
		case to != nil:
			return k.And(d.LessThanEqual(expression.Value(to)))
		}
		return k
	}
	var filter *expression.ConditionBuilder
	for _, f := range q.Where {
		vals := make([]expression.OperandBuilder, len(f.Values))
		for i, v := range f.Values {
			vals[i] = expression.Value(v)
		}
		var c expression.ConditionBuilder
		if len(vals) == 1 {
			c = expression.Name(f.Attr).Equal(vals[0])
		} else {
			c = expression.Name(f.Attr).In(vals[0], vals[1:]...)
		}
		if filter != nil {
			c = filter.And(c)
		}
		filter = &c
	}
	if ix.Partition != "" {
		return []source{{key: sortBounds(expression.Key(ix.Partition).Equal(expression.Value(q.Partition))), filter: filter}}
	}
	out := make([]source, s.cfg.StuckShards)
	for i := range out {
		out[i] = source{key: sortBounds(expression.Key(ix.ShardAttrOf()).Equal(expression.Value(fmt.Sprintf("shard#%d", i)))), filter: filter}
	}
	return out
}

// QueryIndex returns up to q.Limit documents of an index in (sort, key) order.
//
// Why a keyset cursor rather than DynamoDB's LastEvaluatedKey: a GSI sorts by its sort
// attribute only, and items with equal sort values come back in no defined order, while
// the contract orders them by key; and an index over the whole table is several shard
// queries, which have as many LastEvaluatedKeys. So each source is read from the cursor's
// sort value on, skipping what is not after the cursor, until it has Limit items and
// every item sharing the last one's sort value (their order among themselves is then
// made by key); the merge of the sources is exact up to Limit.
func (s *ReadModelStore) QueryIndex(ctx context.Context, q projections.IndexQuery) ([]projections.Row, error) {
	t, name, err := s.tableOf(ctx, q.Table)
	if err != nil {
		return nil, err
	}
	ix, ok := t.Index(q.Index)
	if !ok {
		return nil, fmt.Errorf("table %s has no index %s", q.Table, q.Index)
	}
	srcs := s.indexSources(t, ix, q)
	limit := max(q.Limit, 1)
	found := make([][]projections.Row, len(srcs))
	err = forEach(ctx, len(srcs), len(srcs), func(ctx context.Context, i int) error {
		rows, err := s.querySource(ctx, t, name, ix, srcs[i], q, limit)
		found[i] = rows
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("query %s.%s: %w", q.Table, q.Index, err)
	}
	var all []projections.Row
	for _, rows := range found {
		all = append(all, rows...)
	}
	slices.SortFunc(all, func(a, b projections.Row) int { return compareRows(t, ix.Sort, a, b, q.Descending) })
	all = slices.CompactFunc(all, func(a, b projections.Row) bool { return a.Key == b.Key })
	if len(all) > limit {
		all = all[:limit]
	}
	return all, nil
}

// compareRows orders rows by (sort, key), reversed when descending.
func compareRows(t *projections.Table, sortAttr string, a, b projections.Row, descending bool) int {
	c := projections.CompareValues(projections.SortValue(t, a, sortAttr), projections.SortValue(t, b, sortAttr))
	if c == 0 {
		switch {
		case a.Key < b.Key:
			c = -1
		case a.Key > b.Key:
			c = 1
		}
	}
	if descending {
		return -c
	}
	return c
}

// querySource reads one source in index order, skipping items not after the cursor,
// until it has need items and every item sharing the last one's sort value, or the
// source is exhausted.
func (s *ReadModelStore) querySource(ctx context.Context, t *projections.Table, table string, ix projections.Index, src source,
	q projections.IndexQuery, need int) ([]projections.Row, error) {
	b := expression.NewBuilder().WithKeyCondition(src.key)
	pageSize := need + 1
	if src.filter != nil {
		b = b.WithFilter(*src.filter)
		pageSize = max(need, 100) // Limit counts items before the filter
	}
	e, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("build %s query: %w", ix.Name, err)
	}
	p := dynamodb.NewQueryPaginator(s.client, &dynamodb.QueryInput{
		TableName: &table, IndexName: aws.String(ix.Name),
		KeyConditionExpression: e.KeyCondition(), FilterExpression: e.Filter(),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
		ScanIndexForward: aws.Bool(!q.Descending), Limit: aws.Int32(int32(min(pageSize, 1000))),
	})
	var out []projections.Row
	var boundary any
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", ix.Name, edge(err))
		}
		for _, item := range page.Items {
			r, err := decodeDoc(t, item)
			if err != nil {
				return nil, err
			}
			if c := q.After; c != nil && !afterCursor(t, ix.Sort, c, r, q.Descending) {
				continue
			}
			v := projections.SortValue(t, r, ix.Sort)
			if len(out) >= need && projections.CompareValues(v, boundary) != 0 {
				return out, nil
			}
			out = append(out, r)
			if len(out) == need {
				boundary = v
			}
		}
	}
	return out, nil
}

// afterCursor reports whether row r comes strictly after the cursor in the query's order.
func afterCursor(t *projections.Table, sortAttr string, c *projections.Cursor, r projections.Row, descending bool) bool {
	cmp := projections.CompareValues(projections.SortValue(t, r, sortAttr), c.Sort)
	if cmp == 0 {
		switch {
		case r.Key > c.Key:
			cmp = 1
		case r.Key < c.Key:
			cmp = -1
		}
	}
	if descending {
		return cmp < 0
	}
	return cmp > 0
}

// CountIndex counts the documents QueryIndex selects (Select COUNT over every source's
// pages), without Limit and After.
func (s *ReadModelStore) CountIndex(ctx context.Context, q projections.IndexQuery) (int64, error) {
	t, name, err := s.tableOf(ctx, q.Table)
	if err != nil {
		return 0, err
	}
	ix, ok := t.Index(q.Index)
	if !ok {
		return 0, fmt.Errorf("table %s has no index %s", q.Table, q.Index)
	}
	q.After = nil
	srcs := s.indexSources(t, ix, q)
	counts := make([]int64, len(srcs))
	err = forEach(ctx, len(srcs), len(srcs), func(ctx context.Context, i int) error {
		b := expression.NewBuilder().WithKeyCondition(srcs[i].key)
		if srcs[i].filter != nil {
			b = b.WithFilter(*srcs[i].filter)
		}
		e, err := b.Build()
		if err != nil {
			return err
		}
		p := dynamodb.NewQueryPaginator(s.client, &dynamodb.QueryInput{TableName: &name, IndexName: aws.String(ix.Name),
			KeyConditionExpression: e.KeyCondition(), FilterExpression: e.Filter(),
			ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(), Select: types.SelectCount})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return edge(err)
			}
			counts[i] += int64(page.Count)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count %s.%s: %w", q.Table, q.Index, err)
	}
	var n int64
	for _, c := range counts {
		n += c
	}
	return n, nil
}
