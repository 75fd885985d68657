package dynamodb_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	awdynamodb "github.com/agentwatch/agentwatch/adapters/dynamodb"
	"github.com/agentwatch/agentwatch/adapters/dynamodb/dynamotest"
)

func keyOf(ks []types.KeySchemaElement) []string {
	var out []string
	for _, k := range ks {
		out = append(out, string(k.KeyType)+" "+aws.ToString(k.AttributeName))
	}
	return out
}

func TestMigrate(t *testing.T) {
	ctx := t.Context()
	c := dynamotest.NewClient(t)
	cfg := awdynamodb.Config{TablePrefix: dynamotest.TablePrefix(t, c)}
	cfg.SetDefaults()
	tables := cfg.TablesOf(1)
	executions, stats, stuckT := cfg.ReadModelTable("executions", 1), cfg.ReadModelTable("agent_stats", 1), cfg.ReadModelTable("stuck", 1)

	first, err := awdynamodb.Migrate(ctx, c, cfg, dynamotest.Registry(t), nil)
	require.NoError(t, err)
	assert.Equal(t, 1, first.Generation)
	for _, tb := range []string{tables.Journal, executions, tables.Sessions, stats, stuckT, tables.Alerts, tables.Control, tables.Quarantine} {
		assert.Contains(t, first.Created, "table "+tb)
	}
	for _, want := range []string{
		"index AgentDateIndex on " + executions, "index StatusDateIndex on " + executions,
		"index OutcomeDateIndex on " + executions, "index NameDateIndex on " + executions,
		"index DueIndex on " + stuckT, "index PendingIndex on " + tables.Alerts, "index RaisedIndex on " + tables.Alerts,
		"stream (NEW_IMAGE) on " + tables.Journal,
		"TTL on attribute expiresAt of " + executions, "TTL on attribute expiresAt of " + stuckT,
		"read-model generation 1 (current) in " + tables.Control,
	} {
		assert.Contains(t, first.Created, want)
	}
	assert.Empty(t, first.Existing)

	second, err := awdynamodb.Migrate(ctx, c, cfg, dynamotest.Registry(t), nil)
	require.NoError(t, err)
	assert.Empty(t, second.Created, "a second run creates nothing")
	assert.Len(t, second.Existing, len(first.Created)-1, "everything is found (the generation is not listed)")
	assert.Contains(t, second.Existing, "stream (NEW_IMAGE) on "+tables.Journal)
	assert.Contains(t, second.String(), "existing  table "+tables.Journal)

	// What was created is what seed 000 and seed 002 describe.
	exec, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &executions})
	require.NoError(t, err)
	assert.Equal(t, []string{"HASH executionArn"}, keyOf(exec.Table.KeySchema))
	gsis := map[string][]string{}
	for _, g := range exec.Table.GlobalSecondaryIndexes {
		gsis[aws.ToString(g.IndexName)] = keyOf(g.KeySchema)
		assert.Equal(t, types.ProjectionTypeAll, g.Projection.ProjectionType)
	}
	assert.Equal(t, map[string][]string{
		"AgentDateIndex":   {"HASH agentName", "RANGE startDate"},
		"StatusDateIndex":  {"HASH status", "RANGE startDate"},
		"OutcomeDateIndex": {"HASH outcome", "RANGE startDate"},
		"NameDateIndex":    {"HASH executionName", "RANGE startDate"},
	}, gsis)
	journal, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &tables.Journal})
	require.NoError(t, err)
	assert.Equal(t, []string{"HASH PK", "RANGE SK"}, keyOf(journal.Table.KeySchema))
	require.NotNil(t, journal.Table.StreamSpecification)
	assert.Equal(t, types.StreamViewTypeNewImage, journal.Table.StreamSpecification.StreamViewType)
	assert.NotEmpty(t, aws.ToString(journal.Table.LatestStreamArn))
	ttl, err := c.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: &stuckT})
	require.NoError(t, err)
	assert.Equal(t, "expiresAt", aws.ToString(ttl.TimeToLiveDescription.AttributeName))
}

// An agents table that exists without a stream (seed 002's "agents-table-dev") gets
// one; a table with another key is a mismatch, reported after everything else.
func TestMigrateExistingJournal(t *testing.T) {
	ctx := t.Context()
	c := dynamotest.NewClient(t)
	prefix := dynamotest.TablePrefix(t, c)
	create := func(name string, keys ...string) {
		t.Helper()
		in := &dynamodb.CreateTableInput{TableName: aws.String(name), BillingMode: types.BillingModePayPerRequest}
		for i, k := range keys {
			kt := types.KeyTypeHash
			if i == 1 {
				kt = types.KeyTypeRange
			}
			in.KeySchema = append(in.KeySchema, types.KeySchemaElement{AttributeName: aws.String(k), KeyType: kt})
			in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{AttributeName: aws.String(k), AttributeType: types.ScalarAttributeTypeS})
		}
		_, err := c.CreateTable(ctx, in)
		require.NoError(t, err)
	}
	agents := prefix + "-agents-table-dev"
	create(agents, "PK", "SK")
	cfg := awdynamodb.Config{TablePrefix: prefix, JournalTable: agents}
	rep, err := awdynamodb.Migrate(ctx, c, cfg, dynamotest.Registry(t), nil)
	require.NoError(t, err)
	assert.Contains(t, rep.Existing, "table "+agents)
	assert.Contains(t, rep.Created, "stream (NEW_IMAGE) on "+agents)
	d, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &agents})
	require.NoError(t, err)
	assert.True(t, aws.ToBool(d.Table.StreamSpecification.StreamEnabled))

	wrong := prefix + "-wrong-journal"
	create(wrong, "id")
	cfg = awdynamodb.Config{TablePrefix: prefix, JournalTable: wrong}
	rep, err = awdynamodb.Migrate(ctx, c, cfg, dynamotest.Registry(t), nil)
	require.ErrorIs(t, err, awdynamodb.ErrSchemaMismatch)
	assert.Contains(t, err.Error(), "table "+wrong+": key is HASH id (S), agentwatch needs HASH PK (S), RANGE SK (S)")
	assert.Contains(t, rep.Existing, "table "+prefix+"-executions", "the other tables were still checked")
}
