package dynamodb

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/agentwatch/agentwatch/app"
)

var _ app.SessionRecorder = (*ReadModelStore)(nil)

// rebuildPK is the partition of the control table that records the sessions live
// commits changed while generation gen was being built.
func rebuildPK(gen int) string { return fmt.Sprintf("REBUILD#%010d", gen) }

const rebuildSKPrefix = "SESSION#"

func rebuildSK(id string) string { return rebuildSKPrefix + id }

// StartRecording marks gen as the generation a rebuild is loading (the current
// generation item's "building"). From then on every commit of a store following the
// current generation counts, in the same transaction, each session it changes under
// REBUILD#<gen>: its generation check fails once the mark changes, so a store that had
// not seen the mark reads it and commits again, recording.
func (s *ReadModelStore) StartRecording(ctx context.Context, gen int) error {
	control := s.cfg.TablesOf(1).Control
	e, err := expression.NewBuilder().
		WithCondition(expression.AttributeExists(expression.Name(attrGen))).
		WithUpdate(expression.Set(expression.Name(attrBuilding), expression.Value(gen))).Build()
	if err != nil {
		return fmt.Errorf("start recording for generation %d: %w", gen, err)
	}
	_, err = s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &control, Key: controlKey(pkGeneration, skCurrent),
		ConditionExpression: e.Condition(), UpdateExpression: e.Update(),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values()})
	if err != nil {
		return fmt.Errorf("start recording for generation %d: %w", gen, edge(err))
	}
	s.forgetGeneration()
	return nil
}

// RecordedSessions returns the sessions recorded for gen, each with its count of
// changes (consistent reads).
func (s *ReadModelStore) RecordedSessions(ctx context.Context, gen int) (map[string]int64, error) {
	out := map[string]int64{}
	err := s.forEachRecord(ctx, gen, func(item map[string]types.AttributeValue) {
		n, _ := numberOf(item, attrChanges)
		out[strings.TrimPrefix(stringOf(item, attrSK), rebuildSKPrefix)] = n
	})
	if err != nil {
		return nil, fmt.Errorf("recorded sessions of generation %d: %w", gen, err)
	}
	return out, nil
}

// StopRecording clears the mark if it is still gen (a switch to gen has cleared it
// already) and deletes what was recorded for gen.
func (s *ReadModelStore) StopRecording(ctx context.Context, gen int) error {
	control := s.cfg.TablesOf(1).Control
	e, err := expression.NewBuilder().
		WithCondition(expression.Name(attrBuilding).Equal(expression.Value(gen))).
		WithUpdate(expression.Remove(expression.Name(attrBuilding))).Build()
	if err != nil {
		return fmt.Errorf("stop recording for generation %d: %w", gen, err)
	}
	_, err = s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &control, Key: controlKey(pkGeneration, skCurrent),
		ConditionExpression: e.Condition(), UpdateExpression: e.Update(),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values()})
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("stop recording for generation %d: %w", gen, edge(err))
	}
	s.forgetGeneration()
	var deletes []types.WriteRequest
	err = s.forEachRecord(ctx, gen, func(item map[string]types.AttributeValue) {
		deletes = append(deletes, types.WriteRequest{DeleteRequest: &types.DeleteRequest{
			Key: map[string]types.AttributeValue{attrPK: item[attrPK], attrSK: item[attrSK]}}})
	})
	if err == nil {
		err = batchWrite(ctx, s.client, control, deletes, s.cfg.WriteConcurrency)
	}
	if err != nil {
		return fmt.Errorf("stop recording for generation %d: delete the records: %w", gen, err)
	}
	return nil
}

// forEachRecord calls fn with every record item of gen.
func (s *ReadModelStore) forEachRecord(ctx context.Context, gen int, fn func(map[string]types.AttributeValue)) error {
	control := s.cfg.TablesOf(1).Control
	e, err := expression.NewBuilder().WithKeyCondition(expression.Key(attrPK).Equal(expression.Value(rebuildPK(gen)))).Build()
	if err != nil {
		return err
	}
	p := dynamodb.NewQueryPaginator(s.client, &dynamodb.QueryInput{TableName: &control, ConsistentRead: aws.Bool(true),
		KeyConditionExpression: e.KeyCondition(), ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values()})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return edge(err)
		}
		for _, item := range page.Items {
			fn(item)
		}
	}
	return nil
}
