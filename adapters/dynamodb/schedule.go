package dynamodb

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/agentwatch/agentwatch/projections"
)

// Reschedule applies moves to the schedules of a table's documents — each an UpdateItem
// (or DeleteItem) conditional on the schedule still being its Prev, WriteConcurrency at
// once — and reports how many it applied; a document a commit rewrote meanwhile keeps
// what the commit wrote. A document scheduled Never leaves every index over the whole
// table on its schedule.
func (s *ReadModelStore) Reschedule(ctx context.Context, table string, moves []projections.Move) (int, error) {
	t, name, err := s.tableOf(ctx, table)
	if err != nil {
		return 0, err
	}
	if t.Schedule == "" {
		return 0, fmt.Errorf("reschedule %s: the table has no schedule", table)
	}
	var applied atomic.Int64
	err = forEach(ctx, len(moves), s.cfg.WriteConcurrency, func(ctx context.Context, i int) error {
		m := moves[i]
		cond := expression.Name(t.Schedule).Equal(expression.Value(m.Prev))
		key := map[string]types.AttributeValue{t.Key: str(m.Key)}
		var err error
		if m.Delete {
			e, berr := conditionOf(cond)
			if berr != nil {
				return berr
			}
			_, err = s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &name, Key: key,
				ConditionExpression: e.Condition(), ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values()})
		} else {
			upd := expression.Set(expression.Name(t.Schedule), expression.Value(m.Next))
			if t.Expires {
				upd = upd.Set(expression.Name(attrExpiresAt), expression.Value(s.now().Add(s.cfg.TTL).Unix()))
			}
			for _, ix := range t.Indexes {
				if ix.Partition != "" || ix.Sort != t.Schedule {
					continue
				}
				if m.Next == projections.Never {
					upd = upd.Remove(expression.Name(ix.ShardAttrOf()))
				} else {
					upd = upd.Set(expression.Name(ix.ShardAttrOf()), expression.Value(shardOf(m.Key, s.cfg.StuckShards)))
				}
			}
			e, berr := expression.NewBuilder().WithCondition(cond).WithUpdate(upd).Build()
			if berr != nil {
				return berr
			}
			_, err = s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &name, Key: key,
				ConditionExpression: e.Condition(), UpdateExpression: e.Update(),
				ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values()})
		}
		switch {
		case err == nil:
			applied.Add(1)
		case isConditionFailed(err):
		default:
			return fmt.Errorf("%s: %w", m.Key, edge(err))
		}
		return nil
	})
	if err != nil {
		return int(applied.Load()), fmt.Errorf("reschedule %s: %w", table, err)
	}
	return int(applied.Load()), nil
}
