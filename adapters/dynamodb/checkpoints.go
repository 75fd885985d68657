package dynamodb

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/agentwatch/agentwatch/app"
)

// CheckpointStore keeps named feed positions in the control table (PK "CHECKPOINT",
// SK the name), the items that ReadModelStore.Commit writes a batch's checkpoint to.
type CheckpointStore struct {
	client *dynamodb.Client
	table  string
}

var _ app.CheckpointStore = (*CheckpointStore)(nil)

// NewCheckpointStore returns the checkpoints of cfg's control table.
func NewCheckpointStore(client *dynamodb.Client, cfg Config) (*CheckpointStore, error) {
	cfg, err := prepare(cfg)
	if err != nil {
		return nil, err
	}
	return &CheckpointStore{client: client, table: cfg.TablesOf(1).Control}, nil
}

func checkpointItem(name, position string) map[string]types.AttributeValue {
	item := controlKey(pkCheckpoint, name)
	item[attrPosition] = str(position)
	item[attrUpdatedAt] = num(time.Now().UnixMilli())
	return item
}

// GetCheckpoint returns the position stored under name (a consistent read), or ""
// when there is none.
func (s *CheckpointStore) GetCheckpoint(ctx context.Context, name string) (string, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: controlKey(pkCheckpoint, name), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return "", fmt.Errorf("get checkpoint %s: %w", name, edge(err))
	}
	return stringOf(out.Item, attrPosition), nil
}

// SetCheckpoint stores position under name, replacing what was there.
func (s *CheckpointStore) SetCheckpoint(ctx context.Context, name, position string) error {
	if _, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: checkpointItem(name, position)}); err != nil {
		return fmt.Errorf("set checkpoint %s: %w", name, edge(err))
	}
	return nil
}

// DeleteCheckpoint removes the checkpoint name; removing one that is not there does
// nothing.
func (s *CheckpointStore) DeleteCheckpoint(ctx context.Context, name string) error {
	if _, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &s.table, Key: controlKey(pkCheckpoint, name)}); err != nil {
		return fmt.Errorf("delete checkpoint %s: %w", name, edge(err))
	}
	return nil
}
