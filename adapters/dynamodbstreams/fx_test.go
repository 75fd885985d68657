package dynamodbstreams

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	awdynamodb "github.com/agentwatch/agentwatch/adapters/dynamodb"
	"github.com/agentwatch/agentwatch/app"
)

// The module turns the AWS backend's configuration into the worker's journal feed: the
// journal table's stream, leases in the control table, no CheckpointName.
func TestModuleProvidesJournalFeed(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	var feed app.JournalFeed
	fxtest.New(t,
		fx.Supply(awdynamodb.Config{TablePrefix: "aw", JournalTable: "agents-table-dev"}, Config{WorkerID: "w", MaxInFlight: 4}, discardLogger()),
		awdynamodb.Module, Module,
		fx.Populate(&feed),
	).RequireStart().RequireStop()
	require.NotNil(t, feed.Subscriber)
	assert.Empty(t, feed.CheckpointName, "the stream feed checkpoints itself on Ack")
	sub, ok := feed.Subscriber.(*Subscriber)
	require.True(t, ok)
	assert.Equal(t, "agents-table-dev", sub.cfg.TableName)
	assert.Equal(t, 4, sub.cfg.MaxInFlight)
	store, ok := sub.leases.(*DynamoDBLeaseStore)
	require.True(t, ok)
	assert.Equal(t, "aw-control", store.table)
}
