package dynamodb_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	awdynamodb "github.com/agentwatch/agentwatch/adapters/dynamodb"
	"github.com/agentwatch/agentwatch/adapters/dynamodb/dynamotest"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/projections/executionindex"
)

func TestConfig(t *testing.T) {
	var cfg awdynamodb.Config
	cfg.SetDefaults()
	require.NoError(t, cfg.Validate())
	assert.Equal(t, "agentwatch-journal", cfg.JournalTable)
	assert.Equal(t, 90*24*time.Hour, cfg.TTL)
	assert.Equal(t, 16, cfg.StuckShards)
	assert.Equal(t, awdynamodb.Tables{Journal: "agentwatch-journal", Sessions: "agentwatch-sessions",
		Alerts: "agentwatch-alerts", Control: "agentwatch-control", Quarantine: "agentwatch-quarantine"}, cfg.TablesOf(1))
	assert.Equal(t, "agentwatch-executions", cfg.ReadModelTable("executions", 1), "seed 000's table")
	assert.Equal(t, "agentwatch-agent-stats", cfg.ReadModelTable("agent_stats", 1))
	g3 := cfg.TablesOf(3)
	assert.Equal(t, "agentwatch-executions-g3", cfg.ReadModelTable("executions", 3))
	assert.Equal(t, "agentwatch-sessions-g3", g3.Sessions)
	assert.Equal(t, "agentwatch-alerts", g3.Alerts, "only read models have generations")

	cfg = awdynamodb.Config{TablePrefix: "prod", JournalTable: "agents-table-dev"}
	cfg.SetDefaults()
	assert.Equal(t, "agents-table-dev", cfg.TablesOf(1).Journal)

	bad := awdynamodb.Config{TablePrefix: "no spaces", JournalTable: "x", TTL: time.Minute, StuckShards: -1, ScanSegments: -1, WriteConcurrency: -1}
	bad.SetDefaults()
	err := bad.Validate()
	require.Error(t, err)
	for _, field := range []string{"TablePrefix", "JournalTable", "TTL", "StuckShards", "ScanSegments", "WriteConcurrency"} {
		assert.Contains(t, err.Error(), field)
	}
}

func TestIsLocalEndpoint(t *testing.T) {
	for endpoint, local := range map[string]bool{
		"": false,
		"https://dynamodb.us-east-1.amazonaws.com":     false,
		"https://dynamodb.cn-north-1.amazonaws.com.cn": false,
		"http://127.0.0.1:8000":                        true,
		"http://localhost:4566":                        true,
	} {
		assert.Equal(t, local, awdynamodb.IsLocalEndpoint(endpoint), endpoint)
	}
}

// setLocalEnvironment configures the SDK's standard chain for the test server, as a
// user points agentwatch at DynamoDB Local.
func setLocalEnvironment(t *testing.T) {
	endpoint := dynamotest.Endpoint(t)
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
	t.Setenv("AWS_REGION", dynamotest.Region)
	t.Setenv("AWS_ACCESS_KEY_ID", dynamotest.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", dynamotest.AccessKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
}

// NewClient takes everything from the SDK's standard environment, turns off checksum
// validation for the local endpoint, and counts requests.
func TestNewClientFromEnvironment(t *testing.T) {
	setLocalEnvironment(t)
	counter := awdynamodb.NewRequestCounter()
	c, err := awdynamodb.NewClient(t.Context(), awdynamodb.WithRequestCounter(counter))
	require.NoError(t, err)
	assert.True(t, c.Options().DisableValidateResponseChecksum)
	_, err = c.ListTables(t.Context(), &dynamodb.ListTablesInput{})
	require.NoError(t, err)
	_, err = c.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String("no-such-table")})
	require.Error(t, err)
	snap := counter.Snapshot()
	assert.Equal(t, map[string]int64{"ListTables": 1, "DescribeTable": 1}, snap.Calls)
	assert.Equal(t, int64(2), snap.Total)
	assert.Zero(t, snap.Writes)
	assert.Equal(t, int64(2), snap.Attempts, "a missing table is not retried")
}

// The fx module provides every store port from a Config, on the migrated tables.
func TestModule(t *testing.T) {
	setLocalEnvironment(t)
	c := dynamotest.NewClient(t)
	cfg := dynamotest.Migrated(t, c)
	var (
		reader  executionindex.Reader
		journal app.JournalAppender
		counter *awdynamodb.RequestCounter
	)
	a := fxtest.New(t, awdynamodb.Module, app.CoreModule,
		fx.Supply(cfg, app.Config{}, slog.New(slog.DiscardHandler)),
		fx.Populate(&reader, &journal, &counter),
		fx.Invoke(func(app.JournalReader, app.JournalScanner, app.ProjectionStore, app.StatsReader, app.StuckStore,
			app.AlertStore, app.CheckpointStore, app.Quarantine, app.GenerationStore) {
		}),
	)
	a.RequireStart()
	defer a.RequireStop()
	page, err := reader.Query(t.Context(), executionindex.Query{})
	require.NoError(t, err)
	assert.Empty(t, page.Items)
	assert.Positive(t, counter.Snapshot().Total, "the module's client counts its requests")
}

func TestModuleGraph(t *testing.T) {
	require.NoError(t, fx.ValidateApp(awdynamodb.Module, app.CoreModule, fx.NopLogger,
		fx.Supply(awdynamodb.Config{}, app.Config{}, slog.New(slog.DiscardHandler)),
		fx.Invoke(func(app.JournalAppender, app.JournalReader, app.JournalScanner, app.ProjectionStore, executionindex.Reader,
			app.StatsReader, app.StuckStore, app.AlertStore, app.CheckpointStore, app.Quarantine, *awdynamodb.RequestCounter) {
		})))
}
