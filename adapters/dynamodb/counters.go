package dynamodb

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/agentwatch/agentwatch/projections"
)

// ReadCounters returns the rows of partition (every partition when "") of a counters
// table whose sort key is within [from, to], sorted by partition and sort key. Counters
// that went back to zero, and rows with none left, are not returned (an ADD leaves a zero
// behind; the embedded store deletes it). Reads are consistent.
//
// One partition is a Query with the range as key condition. Every partition is a Scan
// with the range as filter: a counters table holds one small item per partition and
// bucket, and reading them all is an operator's occasional question, so an index for it
// would cost more than it saves.
func (s *ReadModelStore) ReadCounters(ctx context.Context, table, partition, from, to string) ([]projections.CounterRow, error) {
	t, name, err := s.tableOf(ctx, table)
	if err != nil {
		return nil, err
	}
	if t.Kind != projections.Counters {
		return nil, fmt.Errorf("read %s: it holds documents, not counters", table)
	}
	var out []projections.CounterRow
	keep := func(items []map[string]types.AttributeValue) {
		for _, item := range items {
			if r, ok := decodeCounters(t, item); ok {
				out = append(out, r)
			}
		}
	}
	if partition != "" {
		e, err := expression.NewBuilder().WithKeyCondition(expression.Key(t.Partition).Equal(expression.Value(partition)).
			And(expression.Key(t.Sort).Between(expression.Value(from), expression.Value(to)))).Build()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", table, err)
		}
		p := dynamodb.NewQueryPaginator(s.client, &dynamodb.QueryInput{TableName: &name, ConsistentRead: aws.Bool(true),
			KeyConditionExpression: e.KeyCondition(), ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values()})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("read %s of %s: %w", table, partition, edge(err))
			}
			keep(page.Items)
		}
	} else {
		e, err := expression.NewBuilder().WithFilter(expression.Name(t.Sort).Between(expression.Value(from), expression.Value(to))).Build()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", table, err)
		}
		p := dynamodb.NewScanPaginator(s.client, &dynamodb.ScanInput{TableName: &name, ConsistentRead: aws.Bool(true),
			FilterExpression: e.Filter(), ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values()})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", table, edge(err))
			}
			keep(page.Items)
		}
	}
	projections.SortCounterRows(out)
	return out, nil
}
