package dynamodb_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	awdynamodb "github.com/agentwatch/agentwatch/adapters/dynamodb"
	"github.com/agentwatch/agentwatch/adapters/dynamodb/dynamotest"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
)

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

// seedItems are the example records of seed 002 as an agent writes them: a plain
// PutItem of string attributes (what boto3's put_item sends for a dict of str).
var seedItems = []map[string]types.AttributeValue{
	{"PK": s("SESSION#abc-123-def"), "SK": s("EVENT#2024-11-04T10:30:00.000Z"), "Status": s("SESSION_INITIATED"), "Timestamp": s("2024-11-04T10:30:00.000Z")},
	{"PK": s("SESSION#abc-123-def"), "SK": s("EVENT#2024-11-04T10:30:01.234Z"), "Status": s("AGENT_RUNTIME_INVOCATION_STARTED"), "Timestamp": s("2024-11-04T10:30:01.234Z")},
	{"PK": s("SESSION#abc-123-def"), "SK": s("EVENT#2024-11-04T10:30:02.456Z"), "Status": s("AGENT_RUNTIME_INVOCATION_SUCCEEDED"), "Timestamp": s("2024-11-04T10:30:02.456Z")},
	{"PK": s("SESSION#abc-123-def"), "SK": s("EVENT#2024-11-04T10:30:03.789Z"), "Status": s("AGENT_ENTRYPOINT_STARTED"), "Timestamp": s("2024-11-04T10:30:03.789Z")},
	{"PK": s("SESSION#abc-123-def"), "SK": s("EVENT#2024-11-04T10:30:04.012Z"), "Status": s("AGENT_BACKGROUND_TASK_STARTED"), "Timestamp": s("2024-11-04T10:30:04.012Z")},
	{"PK": s("SESSION#abc-123-def"), "SK": s("EVENT#2024-11-04T10:35:45.678Z"), "Status": s("AGENT_BACKGROUND_TASK_FAILED"), "Timestamp": s("2024-11-04T10:35:45.678Z"),
		"ErrorMessage": s("ClientError: ThrottlingException - Rate exceeded")},
}

// The journal reads seed-002 items exactly as agents write them, ignores items of the
// table that are not journal items, and skips (without failing) malformed ones; what
// agentwatch appends for an agent event is the same four attributes, nothing more.
func TestSeedItemAsAgentsWriteIt(t *testing.T) {
	ctx := t.Context()
	c := dynamotest.NewClient(t)
	cfg := dynamotest.Migrated(t, c) // the migrated journal, with its stream
	table := aws.String(cfg.JournalTable)
	for _, item := range seedItems {
		_, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: table, Item: item})
		require.NoError(t, err)
	}
	// Not journal items: an old per-session record, another kind of item, and a
	// journal item an agent got wrong.
	for _, item := range []map[string]types.AttributeValue{
		{"PK": s("SESSION#abc-123-def"), "SK": s("SESSION"), "Status": s("RUNNING")},
		{"PK": s("USER#42"), "SK": s("EVENT#2024-11-04T10:30:00.000Z"), "Status": s("x")},
		{"PK": s("SESSION#abc-123-def"), "SK": s("EVENT#2024-11-04T10:36:00.000Z"), "Status": s("AGENT_BACKGROUND_TASK_COMPLETED"), "Timestamp": s("yesterday")},
	} {
		_, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: table, Item: item})
		require.NoError(t, err)
	}
	journal, err := awdynamodb.NewJournalStore(c, cfg, nil)
	require.NoError(t, err)

	want := make([]domain.JournalItem, len(seedItems))
	for i, item := range seedItems {
		want[i] = domain.JournalItem{PK: item["PK"].(*types.AttributeValueMemberS).Value, SK: item["SK"].(*types.AttributeValueMemberS).Value,
			Status: item["Status"].(*types.AttributeValueMemberS).Value, Timestamp: item["Timestamp"].(*types.AttributeValueMemberS).Value}
		if m, ok := item["ErrorMessage"]; ok {
			want[i].ErrorMessage = m.(*types.AttributeValueMemberS).Value
		}
	}
	got, err := journal.SessionEvents(ctx, "abc-123-def", app.SessionEventsQuery{})
	require.NoError(t, err)
	require.Len(t, got, len(want))
	for i := range got {
		assert.Equal(t, want[i], got[i].Item())
	}
	assert.Equal(t, time.Date(2024, 11, 4, 10, 30, 1, 234e6, time.UTC), got[1].Timestamp)
	assert.Equal(t, domain.StatusBackgroundTaskFailed, got[5].Status)
	assert.Equal(t, "ClientError: ThrottlingException - Rate exceeded", got[5].ErrorMessage)

	failed, err := journal.SessionEvents(ctx, "abc-123-def", app.SessionEventsQuery{StatusContains: "FAILED"})
	require.NoError(t, err)
	require.Len(t, failed, 1)
	assert.Equal(t, want[5], failed[0].Item())

	var scanned []domain.Event
	require.NoError(t, journal.Scan(ctx, app.ScanOptions{}, func(b []domain.Event) error { scanned = append(scanned, b...); return nil }))
	assert.Len(t, scanned, len(seedItems), "only the valid journal items")

	for _, item := range seedItems {
		ev, err := awdynamodb.DecodeItem(item)
		require.NoError(t, err)
		assert.Equal(t, "abc-123-def", ev.SessionID)
	}
	_, err = awdynamodb.DecodeItem(map[string]types.AttributeValue{"PK": s("SESSION#x"), "SK": s("EVENT#x"), "Status": &types.AttributeValueMemberN{Value: "1"}})
	require.ErrorIs(t, err, domain.ErrInvalid)

	// What agentwatch appends for an agent event is what an agent writes.
	ev, err := awdynamodb.DecodeItem(seedItems[0])
	require.NoError(t, err)
	ev.SessionID = "appended-by-agentwatch"
	res, err := journal.Append(ctx, []domain.Event{ev})
	require.NoError(t, err)
	require.Equal(t, []app.AppendResult{app.Appended}, res)
	out, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: table, ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"PK": s("SESSION#appended-by-agentwatch"), "SK": seedItems[0]["SK"]}})
	require.NoError(t, err)
	wantItem := map[string]types.AttributeValue{"PK": s("SESSION#appended-by-agentwatch")}
	for _, k := range []string{"SK", "Status", "Timestamp"} {
		wantItem[k] = seedItems[0][k]
	}
	assert.Equal(t, wantItem, out.Item)
}

// A Step Functions status change that agentwatch appends keeps every attribute, with
// RedriveCount a number, and reads back as the same event.
func TestExecutionItemAttributes(t *testing.T) {
	ctx := t.Context()
	c := dynamotest.NewClient(t)
	cfg := dynamotest.MigratedWithoutStream(t, c)
	journal, err := awdynamodb.NewJournalStore(c, cfg, nil)
	require.NoError(t, err)
	at := time.Date(2024, 11, 4, 12, 35, 10, 250e6, time.UTC)
	arn := "arn:aws:states:us-east-1:123456789012:execution:my-agent:abc123"
	in := false
	ev := domain.Event{SessionID: "abc123", SK: domain.ExecutionSortKey(at, domain.ExecFailed, 1, arn), Status: domain.StatusExecutionFailed,
		Timestamp: at, Exec: domain.Execution{ExecutionArn: arn, StateMachineArn: "arn:aws:states:us-east-1:123456789012:stateMachine:my-agent",
			ExecutionName: "abc123", AgentName: "my-agent", StartDate: at.Add(-10 * time.Second), StopDate: at, Error: "States.TaskFailed",
			Cause: "boom", RedriveCount: 1, SourceEventID: "evt-1", InputIncluded: &in}}
	_, err = journal.Append(ctx, []domain.Event{ev})
	require.NoError(t, err)
	out, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(cfg.JournalTable), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"PK": s("SESSION#abc123"), "SK": s(ev.SK)}})
	require.NoError(t, err)
	assert.Equal(t, &types.AttributeValueMemberN{Value: "1"}, out.Item["RedriveCount"])
	assert.Equal(t, s("2024-11-04T12:35:00.250Z"), out.Item["StartDate"])
	assert.Equal(t, s("evt-1"), out.Item["SourceEventId"])
	assert.Equal(t, &types.AttributeValueMemberBOOL{Value: false}, out.Item["InputIncluded"])
	back, err := awdynamodb.DecodeItem(out.Item)
	require.NoError(t, err)
	assert.Equal(t, ev.Item(), back.Item())
}
