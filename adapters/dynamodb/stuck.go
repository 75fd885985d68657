package dynamodb

import (
	"context"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// DueEntries returns up to limit entries whose next check is at or before nowMs,
// earliest first (ties by session id; limit <= 0: all). It queries every DueIndex
// shard (nextCheckMs <= nowMs, in parallel) and merges; entries whose next check is
// stuck.Never are in no shard.
func (s *ReadModelStore) DueEntries(ctx context.Context, nowMs int64, limit int) ([]app.DueEntry, error) {
	t, _, err := s.tables(ctx)
	if err != nil {
		return nil, fmt.Errorf("due stuck entries: %w", err)
	}
	shards := make([][]app.DueEntry, s.cfg.StuckShards)
	err = forEach(ctx, s.cfg.StuckShards, s.cfg.StuckShards, func(ctx context.Context, i int) error {
		e, err := expression.NewBuilder().WithKeyCondition(
			expression.Key(attrDueShard).Equal(expression.Value(fmt.Sprintf("shard#%d", i))).
				And(expression.Key(attrNextCheckMs).LessThanEqual(expression.Value(nowMs)))).Build()
		if err != nil {
			return err
		}
		in := &dynamodb.QueryInput{TableName: &t.Stuck, IndexName: aws.String(indexDue),
			KeyConditionExpression: e.KeyCondition(), ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
			ScanIndexForward: aws.Bool(true)}
		if limit > 0 {
			// A shard's first limit entries are all it can contribute; ties at the
			// boundary are completed by the page that follows.
			in.Limit = aws.Int32(int32(min(limit+1, 1000)))
		}
		p := dynamodb.NewQueryPaginator(s.client, in)
		var last int64
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return edge(err)
			}
			for _, item := range page.Items {
				d, err := decodeDueEntry(item)
				if err != nil {
					return err
				}
				if limit > 0 && len(shards[i]) >= limit && d.NextCheckMs != last {
					return nil
				}
				shards[i] = append(shards[i], d)
				last = d.NextCheckMs
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("due stuck entries: %w", err)
	}
	var out []app.DueEntry
	for _, sh := range shards {
		out = append(out, sh...)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].NextCheckMs != out[j].NextCheckMs {
			return out[i].NextCheckMs < out[j].NextCheckMs
		}
		return out[i].Entry.SessionID < out[j].Entry.SessionID
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func decodeDueEntry(item map[string]types.AttributeValue) (app.DueEntry, error) {
	var d app.DueEntry
	if err := attributevalue.UnmarshalMapWithOptions(item, &d.Entry, jsonTagsDecode); err != nil {
		return d, fmt.Errorf("decode stuck entry %s: %w", stringOf(item, attrSessionID), err)
	}
	d.NextCheckMs, _ = numberOf(item, attrNextCheckMs)
	return d, nil
}

// SetNextCheck moves an entry's next check from prev to next (and its expiry to now +
// TTL). When the entry's next check is no longer prev — a commit rewrote it, or it was
// deleted — nothing changes and the error matches domain.ErrConflict.
func (s *ReadModelStore) SetNextCheck(ctx context.Context, sessionID string, prev, next int64) error {
	t, _, err := s.tables(ctx)
	if err != nil {
		return fmt.Errorf("set next check of %s: %w", sessionID, err)
	}
	upd := expression.Set(expression.Name(attrNextCheckMs), expression.Value(next)).
		Set(expression.Name(attrExpiresAt), expression.Value(s.now().Add(s.cfg.TTL).Unix()))
	if next == stuck.Never {
		upd = upd.Remove(expression.Name(attrDueShard))
	} else {
		upd = upd.Set(expression.Name(attrDueShard), expression.Value(shardOf(sessionID, s.cfg.StuckShards)))
	}
	e, err := expression.NewBuilder().WithUpdate(upd).
		WithCondition(expression.Name(attrNextCheckMs).Equal(expression.Value(prev))).Build()
	if err != nil {
		return fmt.Errorf("set next check of %s: %w", sessionID, err)
	}
	_, err = s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &t.Stuck,
		Key:              map[string]types.AttributeValue{attrSessionID: str(sessionID)},
		UpdateExpression: e.Update(), ConditionExpression: e.Condition(),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values()})
	if err != nil {
		if isConditionFailed(err) {
			return fmt.Errorf("set next check of %s: next check is no longer %d: %w", sessionID, prev, domain.ErrConflict)
		}
		return fmt.Errorf("set next check of %s: %w", sessionID, edge(err))
	}
	return nil
}

// DeleteEntry drops an entry whose next check is still prev. When it is no longer prev
// — a commit rewrote the entry, or it is gone — nothing changes and the error matches
// domain.ErrConflict.
func (s *ReadModelStore) DeleteEntry(ctx context.Context, sessionID string, prev int64) error {
	t, _, err := s.tables(ctx)
	if err != nil {
		return fmt.Errorf("delete stuck entry %s: %w", sessionID, err)
	}
	e, err := conditionOf(expression.Name(attrNextCheckMs).Equal(expression.Value(prev)))
	if err != nil {
		return fmt.Errorf("delete stuck entry %s: %w", sessionID, err)
	}
	_, err = s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &t.Stuck,
		Key:                 map[string]types.AttributeValue{attrSessionID: str(sessionID)},
		ConditionExpression: e.Condition(), ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values()})
	if err != nil {
		if isConditionFailed(err) {
			return fmt.Errorf("delete stuck entry %s: next check is no longer %d: %w", sessionID, prev, domain.ErrConflict)
		}
		return fmt.Errorf("delete stuck entry %s: %w", sessionID, edge(err))
	}
	return nil
}

// OpenEntries lists every stored detector entry, sorted by session id. It scans the
// stuck table, which holds only sessions the detector still watches (and TTL clears
// what it forgot): the `agentwatch stuck` listing.
func (s *ReadModelStore) OpenEntries(ctx context.Context) ([]stuck.Entry, error) {
	t, _, err := s.tables(ctx)
	if err != nil {
		return nil, fmt.Errorf("stuck entries: %w", err)
	}
	var out []stuck.Entry
	p := dynamodb.NewScanPaginator(s.client, &dynamodb.ScanInput{TableName: &t.Stuck, ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("stuck entries: %w", edge(err))
		}
		for _, item := range page.Items {
			d, err := decodeDueEntry(item)
			if err != nil {
				return nil, fmt.Errorf("stuck entries: %w", err)
			}
			out = append(out, d.Entry)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SessionID < out[j].SessionID })
	return out, nil
}
