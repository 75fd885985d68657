package dynamodb

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Limits of DynamoDB's batch operations.
const (
	maxBatchGet   = 100
	maxBatchWrite = 25
)

// errUnprocessed reports batch items DynamoDB kept refusing.
var errUnprocessed = errors.New("items left unprocessed after retries")

// batchGet reads the items of keys (no duplicates) from table with consistent reads,
// 100 keys per BatchGetItem, and calls fn for each item found, in no particular order.
// Keys DynamoDB leaves unprocessed (throttling, size) are asked for again after a
// backoff; the SDK's retryer already retried each call.
func batchGet(ctx context.Context, client *dynamodb.Client, table string, keys []map[string]types.AttributeValue,
	fn func(item map[string]types.AttributeValue) error) error {
	for start := 0; start < len(keys); start += maxBatchGet {
		pending := keys[start:min(start+maxBatchGet, len(keys))]
		for round := 0; len(pending) > 0; round++ {
			out, err := client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
				table: {Keys: pending, ConsistentRead: aws.Bool(true)},
			}})
			if err != nil {
				return fmt.Errorf("batch get from %s: %w", table, edge(err))
			}
			for _, item := range out.Responses[table] {
				if err := fn(item); err != nil {
					return err
				}
			}
			pending = out.UnprocessedKeys[table].Keys
			if len(pending) == 0 {
				break
			}
			if round >= maxRounds {
				return fmt.Errorf("batch get from %s: %d keys: %w", table, len(pending), errUnprocessed)
			}
			if err := sleepRound(ctx, round, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// batchWrite applies reqs (puts and deletes of distinct keys) to table in
// BatchWriteItem calls of 25, at most concurrency calls at once. Items DynamoDB leaves
// unprocessed are sent again after a backoff. Batch writes are unconditional: for
// bulk loads into fresh tables only.
func batchWrite(ctx context.Context, client *dynamodb.Client, table string, reqs []types.WriteRequest, concurrency int) error {
	chunks := (len(reqs) + maxBatchWrite - 1) / maxBatchWrite
	return forEach(ctx, chunks, concurrency, func(ctx context.Context, i int) error {
		pending := reqs[i*maxBatchWrite : min((i+1)*maxBatchWrite, len(reqs))]
		for round := 0; ; round++ {
			out, err := client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{table: pending}})
			if err != nil {
				return fmt.Errorf("batch write to %s: %w", table, edge(err))
			}
			pending = out.UnprocessedItems[table]
			if len(pending) == 0 {
				return nil
			}
			if round >= maxRounds {
				return fmt.Errorf("batch write to %s: %d items: %w", table, len(pending), errUnprocessed)
			}
			if err := sleepRound(ctx, round, nil); err != nil {
				return err
			}
		}
	})
}
