package dynamodbstreams

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	awdynamodb "github.com/agentwatch/agentwatch/adapters/dynamodb"
	"github.com/agentwatch/agentwatch/adapters/httpapi"
	"github.com/agentwatch/agentwatch/app"
)

// The module turns the AWS backend's configuration into the worker's journal feed: the
// journal table's stream, leases in the control table, no CheckpointName; the same
// subscriber is the projection watermark and adds a readiness check.
func TestModuleProvidesJournalFeed(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	var feed app.JournalFeed
	var watermark app.ProjectionWatermark
	var checks []httpapi.ReadyCheck
	fxtest.New(t,
		fx.Supply(awdynamodb.Config{TablePrefix: "aw", JournalTable: "agents-table-dev"}, Config{WorkerID: "w", MaxRecords: 100}, discardLogger()),
		awdynamodb.Module, Module,
		fx.Populate(&feed, &watermark),
		fx.Invoke(fx.Annotate(func(c []httpapi.ReadyCheck) { checks = c }, fx.ParamTags(`group:"`+httpapi.ReadinessGroup+`"`))),
	).RequireStart().RequireStop()
	require.NotNil(t, feed.Subscriber)
	assert.Empty(t, feed.CheckpointName, "the stream feed checkpoints itself on Ack")
	sub, ok := feed.Subscriber.(*Subscriber)
	require.True(t, ok)
	assert.Equal(t, "agents-table-dev", sub.cfg.TableName)
	assert.Equal(t, 100, sub.cfg.MaxRecords)
	assert.Same(t, sub, watermark, "the subscriber is the projection watermark")
	require.Len(t, checks, 1, "a readiness check in the httpapi group")
	assert.NoError(t, checks[0](t.Context()), "nothing held, nothing stalled")
	store, ok := sub.leases.(*DynamoDBLeaseStore)
	require.True(t, ok)
	assert.Equal(t, "aw-control", store.table)
}
