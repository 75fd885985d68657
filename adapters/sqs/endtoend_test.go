package sqs_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awsdynamodbstreams "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	awssfn "github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	awdynamodb "github.com/agentwatch/agentwatch/adapters/dynamodb"
	"github.com/agentwatch/agentwatch/adapters/dynamodb/dynamotest"
	"github.com/agentwatch/agentwatch/adapters/dynamodbstreams"
	"github.com/agentwatch/agentwatch/adapters/sfn"
	"github.com/agentwatch/agentwatch/adapters/sqlite"
	"github.com/agentwatch/agentwatch/adapters/sqlite/sqlitetest"
	"github.com/agentwatch/agentwatch/adapters/sqs"
	"github.com/agentwatch/agentwatch/adapters/sqs/mototest"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
	"github.com/agentwatch/agentwatch/projections/executionindex"
)

// journalStores is what the pipeline needs of a journal backend.
type journalStores struct {
	journal interface {
		app.JournalAppender
		app.JournalScanner
	}
	projection app.ReadModelStore
	registry   *projections.Registry
	quarantine app.Quarantine
	// feed delivers appended journal items to the projector: the SQLite tail, or the
	// journal table's DynamoDB Stream.
	feed app.JournalFeed
}

// journalBackend opens fresh, empty stores of one backend for a test.
type journalBackend struct {
	name string
	open func(t *testing.T, logger *slog.Logger) journalStores
}

// journalBackends are the backends the pipeline is proven on: the embedded SQLite one,
// and DynamoDB (on DynamoDB Local, with its stream as the journal feed).
var journalBackends = []journalBackend{
	{name: "sqlite", open: openSQLite},
	{name: "dynamodb", open: openDynamoDB},
}

func openSQLite(t *testing.T, logger *slog.Logger) journalStores {
	t.Helper()
	ctx := t.Context()
	db, err := sqlite.Open(ctx, t.TempDir(), logger)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	emb := sqlitetest.On(t, db)
	const checkpoint = app.HandlerProject
	tail, err := sqlite.NewTailSubscriber(db, sqlite.TailSubscriberConfig{CheckpointName: checkpoint}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tail.Close() })
	return journalStores{
		journal:    sqlite.NewJournalStore(db),
		projection: emb.Models,
		registry:   emb.Registry,
		quarantine: sqlite.NewQuarantineStore(db),
		feed:       app.JournalFeed{Subscriber: tail, CheckpointName: checkpoint},
	}
}

func openDynamoDB(t *testing.T, logger *slog.Logger) journalStores {
	t.Helper()
	ctx := t.Context()
	client := dynamotest.NewClient(t)
	cfg := dynamotest.Migrated(t, client)
	journal, err := awdynamodb.NewJournalStore(client, cfg, logger)
	require.NoError(t, err)
	gen, _, err := mustReadModel(t, client, cfg, 0, logger).CurrentGeneration(ctx)
	require.NoError(t, err)
	quarantine, err := awdynamodb.NewQuarantineStore(client, cfg)
	require.NoError(t, err)
	ac, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(dynamotest.Region),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(dynamotest.AccessKey, dynamotest.AccessKey, "")))
	require.NoError(t, err)
	streams := awsdynamodbstreams.NewFromConfig(ac, func(o *awsdynamodbstreams.Options) {
		o.BaseEndpoint = aws.String(dynamotest.Endpoint(t))
	})
	feed, err := dynamodbstreams.NewSubscriber(dynamodbstreams.Config{TableName: cfg.JournalTable, LeaseTable: cfg.TablesOf(1).Control},
		streams, client, quarantine, nil, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = feed.Close() })
	return journalStores{journal: journal, projection: mustReadModel(t, client, cfg, gen, logger), registry: dynamotest.Registry(t),
		quarantine: quarantine, feed: app.JournalFeed{Subscriber: feed}}
}

func mustReadModel(t *testing.T, client *awsdynamodb.Client, cfg awdynamodb.Config, gen int, logger *slog.Logger) *awdynamodb.ReadModelStore {
	t.Helper()
	s, err := awdynamodb.NewReadModelStore(client, cfg, dynamotest.Registry(t), gen, logger)
	require.NoError(t, err)
	return s
}

// failingJournal fails every append of one execution's events, as a journal that keeps
// timing out would (fault injection over the real store).
type failingJournal struct {
	app.JournalAppender
	executionArn string
	attempts     atomic.Int32
}

var errJournalDown = errors.New("injected: journal write timed out")

func (j *failingJournal) Append(ctx context.Context, events []domain.Event) ([]app.AppendResult, error) {
	for i := range events {
		if events[i].Exec.ExecutionArn == j.executionArn {
			j.attempts.Add(1)
			return nil, errJournalDown
		}
	}
	return j.JournalAppender.Append(ctx, events)
}

// awsClients talk to moto.
type awsClients struct {
	sqs    *awssqs.Client
	sfn    *awssfn.Client
	events *eventbridge.Client
	sns    *sns.Client
	cfg    aws.Config
}

func newAWSClients(t *testing.T) awsClients {
	cfg := mototest.AWSConfig(t)
	return awsClients{sqs: awssqs.NewFromConfig(cfg), sfn: awssfn.NewFromConfig(cfg), events: eventbridge.NewFromConfig(cfg),
		sns: sns.NewFromConfig(cfg), cfg: cfg}
}

func (c awsClients) stateMachine(t *testing.T, name string, tags map[string]string) string {
	t.Helper()
	in := &awssfn.CreateStateMachineInput{
		Name:       aws.String(mototest.Name(t, name)),
		Definition: aws.String(`{"StartAt":"InvokeAgent","States":{"InvokeAgent":{"Type":"Pass","End":true}}}`),
		RoleArn:    aws.String("arn:aws:iam::" + mototest.Account + ":role/agent-runner"),
	}
	for k, v := range tags {
		in.Tags = append(in.Tags, sfntypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	out, err := c.sfn.CreateStateMachine(t.Context(), in)
	require.NoError(t, err)
	return aws.ToString(out.StateMachineArn)
}

// putEvents puts status changes on bus, as Step Functions would. (On AWS, PutEvents
// refuses the reserved source aws.states: only Step Functions itself may send it. moto
// accepts it, which lets the test drive the real rule; it also never emits these
// events for its executions, which stay RUNNING.)
func (c awsClients) putEvents(t *testing.T, bus string, events ...statusChange) {
	t.Helper()
	for len(events) > 0 {
		n := min(len(events), 10)
		var entries []ebtypes.PutEventsRequestEntry
		for _, e := range events[:n] {
			entries = append(entries, ebtypes.PutEventsRequestEntry{
				EventBusName: aws.String(bus), Source: aws.String(domain.StatusChangeSource),
				DetailType: aws.String(domain.StatusChangeDetailType), Detail: aws.String(e.detailJSON()),
				Resources: []string{e.executionArn()},
			})
		}
		out, err := c.events.PutEvents(t.Context(), &eventbridge.PutEventsInput{Entries: entries})
		require.NoError(t, err)
		require.Zero(t, out.FailedEntryCount)
		events = events[n:]
	}
}

// expectedItem is what the index must say about one execution.
type expectedItem struct {
	agent, session, status string
	startMs, stopMs        int64
	redriveCount           int
	errorCode              string
}

// TestEndToEndStatusChangesThroughEventBridgeSQSToTheExecutionIndex drives the AWS-mode
// pipeline on moto: tagged state machines, status changes put on an EventBridge bus and
// routed by a rule to a queue with a dead-letter queue (and some through SNS, or sent to
// the queue directly), the SQS feed, the real router, ingester and projector, a journal
// backend, and the execution index.
//
// What moto cannot do, and how the test stands in for it: its executions never emit
// status-change events (they stay RUNNING), so the test puts the events on the bus itself
// with PutEvents, under the source aws.states that AWS reserves to Step Functions;
// malformed JSON cannot go through PutEvents (it validates the detail), so it is sent to
// the queue directly. moto's envelopes have no "account" and Python-formatted JSON: the
// test compares parsed results, never bytes.
func TestEndToEndStatusChangesThroughEventBridgeSQSToTheExecutionIndex(t *testing.T) {
	for _, b := range journalBackends {
		t.Run(b.name, func(t *testing.T) { runEndToEnd(t, b) })
	}
}

func runEndToEnd(t *testing.T, b journalBackend) {
	cl := newAWSClients(t)
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	stores := b.open(t, logger)
	ctx := t.Context()

	// --- AWS side: state machines with tags, queue + DLQ, bus + rule, SNS topic ---
	research := cl.stateMachine(t, "research", map[string]string{"agentName": "research-agent", "team": "ml"})
	support := cl.stateMachine(t, "support", map[string]string{"AgentName": "support-agent"})
	billing := cl.stateMachine(t, "billing", map[string]string{"agent": "billing-agent"})
	plain := cl.stateMachine(t, "plain", map[string]string{"team": "ops"})

	const maxReceiveCount = 3
	q := mototest.CreateQueueWithDLQ(t, cl.sqs, mototest.Name(t, "status"), maxReceiveCount, 2*time.Second)
	bus := mototest.Name(t, "bus")
	_, err := cl.events.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String(bus)})
	require.NoError(t, err)
	rule := mototest.Name(t, "rule")
	_, err = cl.events.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(rule), EventBusName: aws.String(bus),
		EventPattern: aws.String(`{"source":["aws.states"],"detail-type":["Step Functions Execution Status Change"]}`)})
	require.NoError(t, err)
	_, err = cl.events.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(rule), EventBusName: aws.String(bus),
		Targets: []ebtypes.Target{{Id: aws.String("status-queue"), Arn: aws.String(q.Arn)}}})
	require.NoError(t, err)
	topic, err := cl.sns.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(mototest.Name(t, "topic"))})
	require.NoError(t, err)
	_, err = cl.sns.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(q.Arn)})
	require.NoError(t, err)

	// --- the worker: SQS feed -> router -> ingester (tags) -> journal -> projector ---
	reg := prometheus.NewRegistry()
	metrics, err := app.NewMetrics(reg)
	require.NoError(t, err)
	resolver, err := sfn.NewTagResolver(sfn.Config{}, cl.sfn, nil, logger)
	require.NoError(t, err)
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC).UnixMilli()
	poisoned := statusChange{StateMachineArn: research, Name: "run-journal-down", Status: "RUNNING", StartMs: t0,
		Input: `{"session_id":"s-journal-down"}`}
	journal := &failingJournal{JournalAppender: stores.journal, executionArn: poisoned.executionArn()}
	ingester := app.NewIngester(journal, stores.quarantine, resolver, domain.MappingConfig{}, logger, metrics)
	projector := app.NewProjector(stores.projection, stores.registry, logger, metrics)
	sqsMetrics, err := sqs.NewMetrics(reg)
	require.NoError(t, err)
	sub, err := sqs.New(sqs.Config{QueueURL: q.URL, WaitTime: time.Second, Concurrency: 4, VisibilityTimeout: 2 * time.Second, RetryDelay: 2 * time.Second,
		AWSConfig: cl.cfg},
		sqsMetrics, logger)
	require.NoError(t, err)
	router, err := app.NewRouter(app.RouterConfig{MaxRetries: 1, RetryInitialInterval: 10 * time.Millisecond, RetryMaxInterval: 10 * time.Millisecond},
		stores.feed, app.StatusChangeFeed{Subscriber: sub, Redelivers: true}, app.NewQuarantinePublisher(stores.quarantine, metrics),
		projector, ingester, reg, logger)
	require.NoError(t, err)
	runRouter(t, router)

	// --- the traffic ---
	sec := func(s int64) int64 { return t0 + s*1000 }
	// E1: tags win over the input's agentName; SUCCEEDED arrives before RUNNING, RUNNING twice.
	e1 := statusChange{StateMachineArn: research, Name: "run-1", StartMs: sec(0), Input: `{"session_id":"s-1","agentName":"not-this"}`}
	e1Run, e1Done := e1.with("RUNNING", 0, 0), e1.with("SUCCEEDED", sec(45), 0)
	// E2: fails, is redriven, succeeds; the redrive's SUCCEEDED arrives before its RUNNING.
	e2 := statusChange{StateMachineArn: support, Name: "run-2", StartMs: sec(10), Input: `{"sessionId":"s-2"}`}
	e2Run, e2Fail := e2.with("RUNNING", 0, 0), e2.with("FAILED", sec(15), 0)
	e2Fail.Error, e2Fail.Cause = "States.TaskFailed", "AgentCore invocation failed: Timeout"
	e2Redrive, e2Done := e2.with("RUNNING", 0, 1), e2.with("SUCCEEDED", sec(130), 1)
	e2Redrive.RedriveMs, e2Done.RedriveMs = sec(100), sec(100)
	// E3: through SNS: RUNNING hand-wrapped sent to the queue, TIMED_OUT published to the
	// topic (SNS wraps it) and also put on the bus raw (a duplicate in another form).
	e3 := statusChange{StateMachineArn: billing, Name: "run-3", StartMs: sec(20), Input: `{"session_id":"s-3"}`}
	e3Run, e3Timeout := e3.with("RUNNING", 0, 0), e3.with("TIMED_OUT", sec(320), 0)
	e3Timeout.Error, e3Timeout.Cause = "States.Timeout", "Execution timed out"
	// E4: started through version 1 of the billing state machine: its tags still count.
	e4 := statusChange{StateMachineArn: billing + ":1", Name: "run-4", StartMs: sec(30), Input: `{"session_id":"s-4"}`}
	e4Run, e4Abort := e4.with("RUNNING", 0, 0), e4.with("ABORTED", sec(33), 0)
	// E5: untagged state machine, name from the input; failed, then a redrive requested.
	e5 := statusChange{StateMachineArn: plain, Name: "run-5", StartMs: sec(40), Input: `{"session_id":"s-5","agent_name":"input-agent"}`}
	e5Run, e5Fail, e5Pending := e5.with("RUNNING", 0, 0), e5.with("FAILED", sec(41), 0), e5.with("PENDING_REDRIVE", sec(41), 1)
	e5Pending.RedriveMs = sec(200)
	// E6: untagged, no name in the input: the state machine's name; session from the execution name.
	e6 := statusChange{StateMachineArn: plain, Name: "s-6", StartMs: sec(50)}
	e6Run, e6Done := e6.with("RUNNING", 0, 0), e6.with("SUCCEEDED", sec(52), 0)

	cl.putEvents(t, bus, e1Done, e2Run, e2Fail, e4Abort, e5Run, e6Done, e1Run, e1Run, e2Done, e2Redrive, poisoned)
	cl.putEvents(t, bus, e3Timeout, e4Run, e5Fail, e5Pending, e6Run, e2Fail)
	// A status change the rule does not match never reaches the queue.
	_, err = cl.events.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{
		EventBusName: aws.String(bus), Source: aws.String("custom.agents"), DetailType: aws.String("Agent Heartbeat"), Detail: aws.String(`{"x":1}`)}}})
	require.NoError(t, err)
	// Valid JSON that the bus takes, but not a status change agentwatch can record.
	badDate := e6.with("RUNNING", 0, 0)
	badDetail := badDate.detail()
	badDetail["startDate"] = "yesterday"
	_, err = cl.events.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{
		EventBusName: aws.String(bus), Source: aws.String(domain.StatusChangeSource), DetailType: aws.String(domain.StatusChangeDetailType),
		Detail: aws.String(mustJSON(badDetail))}}})
	require.NoError(t, err)
	// Through SNS: a real publication, and a notification wrapped by hand.
	_, err = cl.sns.Publish(ctx, &sns.PublishInput{TopicArn: topic.TopicArn, Message: aws.String(e3Timeout.envelope("sns-1"))})
	require.NoError(t, err)
	_, err = cl.sns.Publish(ctx, &sns.PublishInput{TopicArn: topic.TopicArn, Message: aws.String(`{"hello":"not an event"}`)})
	require.NoError(t, err)
	malformed := []string{
		"{not json",
		`{"version":"0","detail-type":"Step Functions Execution Status Change","source":"aws.states","detail":{"status":"RUNNING"}}`,
		`{"version":"0","detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","detail":{"state":"running"}}`,
		snsNotification(aws.ToString(topic.TopicArn), "{truncated"),
	}
	send(t, cl.sqs, q.URL, append([]string{snsNotification(aws.ToString(topic.TopicArn), e3Run.envelope("hand-1"))}, malformed...)...)
	const wantQuarantined = 4 + 1 + 1 // sent directly, bad date via the bus, bad SNS publication
	const wantJournal = 2 + 4 + 2 + 2 + 3 + 2

	// --- wait until every message is accounted for ---
	want := map[string]expectedItem{
		e1.executionArn(): {agent: "research-agent", session: "s-1", status: "SUCCEEDED", startMs: sec(0), stopMs: sec(45)},
		e2.executionArn(): {agent: "support-agent", session: "s-2", status: "SUCCEEDED", startMs: sec(10), stopMs: sec(130), redriveCount: 1},
		e3.executionArn(): {agent: "billing-agent", session: "s-3", status: "TIMED_OUT", startMs: sec(20), stopMs: sec(320), errorCode: "States.Timeout"},
		e4.executionArn(): {agent: "billing-agent", session: "s-4", status: "ABORTED", startMs: sec(30), stopMs: sec(33)},
		e5.executionArn(): {agent: "input-agent", session: "s-5", status: "PENDING_REDRIVE", startMs: sec(40), redriveCount: 1},
		e6.executionArn(): {agent: domain.StateMachineName(plain), session: "s-6", status: "SUCCEEDED", startMs: sec(50), stopMs: sec(52)},
	}
	var (
		journalCount int
		quarantined  map[string]app.Quarantined
		dlq, main    sqs.QueueDepth
		indexed      map[string]executionindex.Item
	)
	deadline := time.Now().Add(90 * time.Second)
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for {
		journalCount = countJournal(t, stores.journal)
		quarantined = quarantinedByKey(t, stores.quarantine)
		dlq, main = depth(t, cl.sqs, q.DLQURL), depth(t, cl.sqs, q.URL)
		indexed = indexItems(t, executionindex.NewStore(stores.projection), want)
		done := journalCount == wantJournal && len(quarantined) == wantQuarantined && dlq.Visible == 1 &&
			main == (sqs.QueueDepth{}) && indexMatches(indexed, want)
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled: journal %d/%d, quarantined %d/%d, dlq %+v, queue %+v, index %d/%d items",
				journalCount, wantJournal, len(quarantined), wantQuarantined, dlq, main, len(indexed), len(want))
		}
		<-poll.C
	}

	// --- the journal: each distinct status change once, and nothing of the failing one ---
	var journaled []string
	require.NoError(t, stores.journal.Scan(ctx, app.ScanOptions{}, func(batch []domain.Event) error {
		for _, ev := range batch {
			journaled = append(journaled, fmt.Sprintf("%s %s r%d", ev.Exec.ExecutionName, ev.Status, ev.Exec.RedriveCount))
		}
		return nil
	}))
	assert.ElementsMatch(t, []string{
		"run-1 EXECUTION_RUNNING r0", "run-1 EXECUTION_SUCCEEDED r0",
		"run-2 EXECUTION_RUNNING r0", "run-2 EXECUTION_FAILED r0", "run-2 EXECUTION_RUNNING r1", "run-2 EXECUTION_SUCCEEDED r1",
		"run-3 EXECUTION_RUNNING r0", "run-3 EXECUTION_TIMED_OUT r0",
		"run-4 EXECUTION_RUNNING r0", "run-4 EXECUTION_ABORTED r0",
		"run-5 EXECUTION_RUNNING r0", "run-5 EXECUTION_FAILED r0", "run-5 EXECUTION_PENDING_REDRIVE r1",
		"s-6 EXECUTION_RUNNING r0", "s-6 EXECUTION_SUCCEEDED r0",
	}, journaled)

	// --- the execution index ---
	for arn, w := range want {
		it := indexed[arn]
		t.Run("index "+w.session, func(t *testing.T) {
			assert.Equal(t, w.agent, it.AgentName, "agent name")
			assert.Equal(t, w.session, it.SessionID)
			assert.Equal(t, w.status, it.Status)
			assert.Equal(t, domain.FormatTime(time.UnixMilli(w.startMs)), it.StartDate)
			assert.Equal(t, w.redriveCount, it.RedriveCount)
			assert.Equal(t, w.errorCode, it.Error)
			if w.stopMs == 0 {
				assert.Empty(t, it.StopDate)
				assert.Nil(t, it.DurationSeconds)
				return
			}
			assert.Equal(t, domain.FormatTime(time.UnixMilli(w.stopMs)), it.StopDate)
			if assert.NotNil(t, it.DurationSeconds) {
				assert.InDelta(t, float64(w.stopMs-w.startMs)/1000, *it.DurationSeconds, 1e-9)
			}
		})
	}
	assert.NotEqual(t, domain.StateMachineName(research), want[e1.executionArn()].agent, "the tag, not the ARN's name")

	// --- the quarantine: every malformed message, with its reason, keyed by message id ---
	reasons := map[string]bool{}
	for key, q := range quarantined {
		assert.Equal(t, sqs.Source, q.Source, key)
		assert.NotEmpty(t, q.Reason, key)
		reasons[q.Reason] = true
	}
	assertReason(t, reasons, "malformed JSON")
	assertReason(t, reasons, "detail.executionArn")
	assertReason(t, reasons, "detail-type")
	assertReason(t, reasons, "detail.startDate")
	assertReason(t, reasons, "Message")

	// --- the DLQ: the status change whose append kept failing, and nothing else ---
	dead, err := sqsDLQ(t, cl.cfg, q.URL).Peek(ctx, 10)
	require.NoError(t, err)
	require.Len(t, dead, 1)
	assert.Equal(t, poisoned.executionArn(), dead[0].ExecutionArn)
	assert.Empty(t, dead[0].Reason, "it parses: it failed for a passing reason")
	// Each receive: the first try and the router's one retry. SQS delivers at least once:
	// a receive can repeat (one CI run here counted 7 tries instead of 6).
	assert.GreaterOrEqual(t, int(journal.attempts.Load()), maxReceiveCount*2, "each receive: the first try and the router's one retry")
	assert.Equal(t, 1.0, counter(t, sqsMetrics.LastReceives))
	assert.Equal(t, float64(wantQuarantined), counter(t, metrics.Quarantined.WithLabelValues(sqs.Source)))
	assert.Equal(t, float64(wantJournal), counter(t, metrics.Ingested.WithLabelValues("queue", "accepted")))
	assert.GreaterOrEqual(t, counter(t, metrics.Ingested.WithLabelValues("queue", "duplicate")), 3.0,
		"E1 RUNNING twice, E2 FAILED twice, E3 TIMED_OUT by bus and by SNS")
}

func (s statusChange) with(status string, stopMs int64, redriveCount int) statusChange {
	s.Status, s.StopMs, s.RedriveCount = status, stopMs, redriveCount
	return s
}

func runRouter(t *testing.T, r *message.Router) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	select {
	case <-r.Running():
	case err := <-done:
		t.Fatalf("router stopped while starting: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("router did not start")
	}
	t.Cleanup(func() {
		require.NoError(t, r.Close())
		<-done
	})
}

func countJournal(t *testing.T, j app.JournalScanner) int {
	t.Helper()
	n := 0
	require.NoError(t, j.Scan(t.Context(), app.ScanOptions{}, func(b []domain.Event) error { n += len(b); return nil }))
	return n
}

func quarantinedByKey(t *testing.T, q app.Quarantine) map[string]app.Quarantined {
	t.Helper()
	items, err := q.ListQuarantined(t.Context(), 1000)
	require.NoError(t, err)
	out := map[string]app.Quarantined{}
	for _, it := range items {
		out[it.Key] = it // a redelivered poison message is quarantined under the same key
	}
	return out
}

func depth(t *testing.T, client *awssqs.Client, url string) sqs.QueueDepth {
	t.Helper()
	d, err := sqs.Depth(t.Context(), client, url)
	require.NoError(t, err)
	return d
}

func indexItems(t *testing.T, r executionindex.Reader, want map[string]expectedItem) map[string]executionindex.Item {
	t.Helper()
	out := map[string]executionindex.Item{}
	for arn := range want {
		it, err := r.Get(t.Context(), arn)
		if errors.Is(err, domain.ErrNotFound) {
			continue
		}
		require.NoError(t, err)
		out[arn] = it
	}
	return out
}

func indexMatches(got map[string]executionindex.Item, want map[string]expectedItem) bool {
	if len(got) != len(want) {
		return false
	}
	for arn, w := range want {
		it := got[arn]
		if it.Status != w.status || it.RedriveCount != w.redriveCount || it.StartDate != domain.FormatTime(time.UnixMilli(w.startMs)) {
			return false
		}
	}
	return true
}

func assertReason(t *testing.T, reasons map[string]bool, part string) {
	t.Helper()
	for r := range reasons {
		if strings.Contains(r, part) {
			return
		}
	}
	t.Errorf("no quarantine reason mentions %q; reasons: %v", part, reasons)
}

func sqsDLQ(t *testing.T, cfg aws.Config, queueURL string) *sqs.DeadLetterQueue {
	t.Helper()
	d, err := sqs.OpenDeadLetterQueue(t.Context(), sqs.Config{QueueURL: queueURL, AWSConfig: cfg})
	require.NoError(t, err)
	return d
}
