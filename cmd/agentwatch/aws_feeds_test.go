package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssfn "github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/agentwatch/agentwatch/adapters/sfn"
	"github.com/agentwatch/agentwatch/adapters/sqlite"
	"github.com/agentwatch/agentwatch/adapters/sqs"
	"github.com/agentwatch/agentwatch/adapters/sqs/mototest"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
)

// useMotoThroughEnv points the SDK's standard configuration at moto, the way an
// operator points agentwatch at a local server.
func useMotoThroughEnv(t *testing.T) {
	ep := mototest.Endpoint(t)
	t.Setenv("AWS_ENDPOINT_URL", ep)
	t.Setenv("AWS_REGION", mototest.Region)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
}

func TestAWSFeedFlags(t *testing.T) {
	t.Setenv("AGENTWATCH_SFN_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/from-env")
	t.Setenv("AGENTWATCH_AGENT_TAG_KEYS", "team-agent, agentName")
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	o := registerAWSFeedFlags(fs)
	require.NoError(t, fs.Parse([]string{"--sfn-queue-workers", "8", "--sfn-queue-visibility-timeout", "45s"}))
	assert.Equal(t, "https://sqs.us-east-1.amazonaws.com/123456789012/from-env", o.queueURL)
	assert.Equal(t, []string{"team-agent", "agentName"}, o.tagKeys)
	assert.Equal(t, 8, o.concurrency)
	assert.Equal(t, 45*time.Second, o.visibility)
	_, err := awsFeedModules(o)
	require.NoError(t, err)

	// Without a queue the worker only projects the stream; status changes come through
	// POST /v1/events and ingest.
	mods, err := awsFeedModules(&awsFeedFlags{tagTTL: time.Minute, tagTimeout: time.Second})
	require.NoError(t, err)
	assert.Len(t, mods, 2, "the tag resolver, no queue")
	_, err = awsFeedModules(&awsFeedFlags{queueURL: "not a url", batchSize: 11})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "BatchSize")
	assert.Contains(t, err.Error(), "QueueURL")
}

// TestAWSFeedModulesWireIntoTheWorker runs the worker graph that `run --backend aws`
// adds the feed modules to, with the embedded stores standing in for DynamoDB: a status
// change sent to the queue reaches the execution index under its state machine's tag.
func TestAWSFeedModulesWireIntoTheWorker(t *testing.T) {
	useMotoThroughEnv(t)
	ac := mototest.AWSConfig(t)
	client := awssqs.NewFromConfig(ac)
	q := mototest.CreateQueueWithDLQ(t, client, mototest.Name(t, "q"), 3, time.Second)
	sm, err := awssfn.NewFromConfig(ac).CreateStateMachine(t.Context(), &awssfn.CreateStateMachineInput{
		Name:       aws.String(mototest.Name(t, "flow")),
		Definition: aws.String(`{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}`),
		RoleArn:    aws.String("arn:aws:iam::123456789012:role/r"),
		Tags:       []sfntypes.Tag{{Key: aws.String("agentName"), Value: aws.String("tagged-agent")}},
	})
	require.NoError(t, err)
	mods, err := awsFeedModules(&awsFeedFlags{queueURL: q.URL})
	require.NoError(t, err)

	var feed app.StatusChangeFeed
	var resolver domain.AgentNameResolver
	var queries *app.Queries
	cfg := app.Config{}
	cfg.SetDefaults()
	opts := []fx.Option{
		fx.Supply(cfg, slog.New(slog.DiscardHandler), sqlite.Config{DataDir: t.TempDir()}),
		app.CoreModule, sqlite.Module, sqlite.WorkerFeedModule, app.WorkerModule,
		fx.Populate(&feed, &resolver, &queries),
	}
	fxApp := fxtest.New(t, append(opts, mods...)...)
	fxApp.RequireStart()
	defer fxApp.RequireStop()
	require.IsType(t, &sqs.Subscriber{}, feed.Subscriber)
	assert.True(t, feed.Redelivers)
	require.IsType(t, &sfn.TagResolver{}, resolver)

	smArn := aws.ToString(sm.StateMachineArn)
	execArn := "arn:aws:states:us-east-1:123456789012:execution:" + domain.StateMachineName(smArn) + ":run-1"
	body := `{"version":"0","id":"e-1","detail-type":"Step Functions Execution Status Change","source":"aws.states",` +
		`"detail":{"executionArn":"` + execArn + `","stateMachineArn":"` + smArn + `","name":"run-1","status":"RUNNING","startDate":1767607200000,"input":"{}"}}`
	_, err = client.SendMessage(t.Context(), &awssqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: aws.String(body)})
	require.NoError(t, err)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		it, err := queries.Execution(t.Context(), execArn)
		if assert.NoError(c, err) {
			assert.Equal(c, "tagged-agent", it.AgentName)
			assert.Equal(c, "RUNNING", it.Status)
		}
	}, 20*time.Second, 50*time.Millisecond)
}

func TestDLQCommandPeeksWithoutTaking(t *testing.T) {
	useMotoThroughEnv(t)
	client := awssqs.NewFromConfig(mototest.AWSConfig(t))
	q := mototest.CreateQueueWithDLQ(t, client, mototest.Name(t, "q"), 3, time.Second)
	for _, body := range []string{"not json", `{"version":"0","detail-type":"Step Functions Execution Status Change","source":"aws.states",` +
		`"detail":{"executionArn":"arn:aws:states:us-east-1:123456789012:execution:flow:run-1","stateMachineArn":"arn:aws:states:us-east-1:123456789012:stateMachine:flow",` +
		`"name":"run-1","status":"RUNNING","startDate":1767607200000}}`} {
		_, err := client.SendMessage(t.Context(), &awssqs.SendMessageInput{QueueUrl: aws.String(q.DLQURL), MessageBody: aws.String(body)})
		require.NoError(t, err)
	}

	run := func(args ...string) string {
		var out bytes.Buffer
		cmd := newDLQCommand(&globals{out: &out})
		cmd.SetArgs(args)
		cmd.SetOut(&out)
		require.NoError(t, cmd.ExecuteContext(t.Context()))
		return out.String()
	}
	text := run("--sfn-queue-url", q.URL)
	assert.Contains(t, text, q.DLQURL+": 2 messages")
	assert.Contains(t, text, "malformed JSON")
	assert.Contains(t, text, "arn:aws:states:us-east-1:123456789012:execution:flow:run-1")

	var got struct {
		QueueURL string           `json:"queueUrl"`
		Depth    sqs.QueueDepth   `json:"depth"`
		Messages []sqs.DeadLetter `json:"messages"`
	}
	require.NoError(t, json.Unmarshal([]byte(run("--dlq-url", q.DLQURL, "--peek", "1", "--json")), &got))
	assert.Equal(t, q.DLQURL, got.QueueURL)
	assert.Len(t, got.Messages, 1)
	assert.Equal(t, 2, got.Depth.Visible, "peeking took nothing")

	require.NoError(t, json.Unmarshal([]byte(run("--sfn-queue-url", q.URL, "--peek", "0", "--json")), &got))
	assert.Empty(t, got.Messages)
	assert.Equal(t, 2, got.Depth.Visible+got.Depth.InFlight)
}
