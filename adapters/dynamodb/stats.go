package dynamodb

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/projections/agentstats"
)

// Stats returns the stats buckets of one agent (or all) at one granularity (HOUR# or
// DAY#; "" selects both) whose start lies in [From, To], sorted by agent then bucket.
// Counters that went back to zero, and buckets with none left, are not returned (an
// ADD leaves a zero behind; the embedded backend deletes it). Reads are consistent.
//
// One agent's buckets are a Query on the agent with the bucket range as key
// condition. All agents' buckets are a Scan with the range as filter: the stats table
// holds one small item per agent and hour or day, and listing every agent is an
// operator's occasional question, so an index for it would cost more than it saves.
func (s *ReadModelStore) Stats(ctx context.Context, q app.StatsQuery) ([]agentstats.Bucket, error) {
	prefixes, err := q.Prefixes()
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	t, _, err := s.tables(ctx)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	var out []agentstats.Bucket
	keep := func(items []map[string]types.AttributeValue) {
		for _, item := range items {
			if b, ok := decodeBucket(item); ok {
				out = append(out, b)
			}
		}
	}
	for _, p := range prefixes {
		lo, hi := agentstats.BucketRange(p, q.From, q.To)
		if lo > hi {
			continue
		}
		if q.AgentName != "" {
			e, err := expression.NewBuilder().WithKeyCondition(expression.Key(attrAgentName).Equal(expression.Value(q.AgentName)).
				And(expression.Key(attrBucket).Between(expression.Value(lo), expression.Value(hi)))).Build()
			if err != nil {
				return nil, fmt.Errorf("stats: %w", err)
			}
			pg := dynamodb.NewQueryPaginator(s.client, &dynamodb.QueryInput{TableName: &t.AgentStats, ConsistentRead: aws.Bool(true),
				KeyConditionExpression: e.KeyCondition(), ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values()})
			for pg.HasMorePages() {
				page, err := pg.NextPage(ctx)
				if err != nil {
					return nil, fmt.Errorf("stats of %s: %w", q.AgentName, edge(err))
				}
				keep(page.Items)
			}
			continue
		}
		e, err := expression.NewBuilder().WithFilter(expression.Name(attrBucket).Between(expression.Value(lo), expression.Value(hi))).Build()
		if err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
		pg := dynamodb.NewScanPaginator(s.client, &dynamodb.ScanInput{TableName: &t.AgentStats, ConsistentRead: aws.Bool(true),
			FilterExpression: e.Filter(), ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values()})
		for pg.HasMorePages() {
			page, err := pg.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("stats: %w", edge(err))
			}
			keep(page.Items)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Agent != out[j].Agent {
			return out[i].Agent < out[j].Agent
		}
		return out[i].Bucket < out[j].Bucket
	})
	return out, nil
}

// decodeBucket reads a bucket item: every number attribute but the keys is a counter.
// ok is false when no counter is non-zero.
func decodeBucket(item map[string]types.AttributeValue) (agentstats.Bucket, bool) {
	b := agentstats.Bucket{Agent: stringOf(item, attrAgentName), Bucket: stringOf(item, attrBucket), Counters: agentstats.Counters{}}
	for name, av := range item {
		n, isN := av.(*types.AttributeValueMemberN)
		if !isN || name == attrAgentName || name == attrBucket {
			continue
		}
		if v, err := strconv.ParseInt(n.Value, 10, 64); err == nil && v != 0 {
			b.Counters[name] = v
		}
	}
	return b, len(b.Counters) > 0
}

// bucketItem renders a whole bucket for a bulk load: its counters as attributes.
func bucketItem(b *agentstats.Bucket) map[string]types.AttributeValue {
	item := map[string]types.AttributeValue{attrAgentName: str(b.Agent), attrBucket: str(b.Bucket)}
	for c, v := range b.Counters {
		if v != 0 && c != attrAgentName && c != attrBucket {
			item[c] = num(v)
		}
	}
	return item
}
