package sqs_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/adapters/faultinject"
	"github.com/agentwatch/agentwatch/adapters/sqs"
	"github.com/agentwatch/agentwatch/adapters/sqs/mototest"
	"github.com/agentwatch/agentwatch/app"
)

func TestConfigDefaultsAndValidate(t *testing.T) {
	c := sqs.Config{QueueURL: "https://sqs.us-east-1.amazonaws.com/123456789012/status-changes"}
	c.SetDefaults()
	require.NoError(t, c.Validate())
	assert.Equal(t, 10, c.BatchSize)
	assert.Equal(t, 20*time.Second, c.WaitTime)
	assert.Equal(t, 4, c.Concurrency)
	assert.Equal(t, 10*time.Second, c.VisibilityTimeout, "short: extended while a message is handled")
	assert.Equal(t, 15*time.Minute, c.MaxExtension)
	assert.Equal(t, time.Minute, c.RetryDelay, "a failing message waits as long as the queue's own timeout made it")

	tests := []struct {
		name string
		cfg  sqs.Config
		want []string
	}{
		{"no queue", sqs.Config{}, []string{"QueueURL is required"}},
		{"a name, not a URL", sqs.Config{QueueURL: "status-changes"}, []string{"not a queue URL"}},
		{"an ARN, not a URL", sqs.Config{QueueURL: "arn:aws:sqs:us-east-1:123456789012:q"}, []string{"not a queue URL"}},
		{"everything wrong at once", sqs.Config{QueueURL: "x", DLQURL: "y", BatchSize: 11, WaitTime: 21 * time.Second,
			VisibilityTimeout: 500 * time.Millisecond, MaxExtension: 13 * time.Hour, RetryDelay: 1500 * time.Millisecond, Concurrency: -1},
			[]string{"QueueURL", "DLQURL", "BatchSize", "WaitTime", "VisibilityTimeout", "MaxExtension", "RetryDelay", "Concurrency"}},
		{"visibility in whole seconds", sqs.Config{QueueURL: "https://sqs.us-east-1.amazonaws.com/1/q", VisibilityTimeout: 1500 * time.Millisecond},
			[]string{"VisibilityTimeout is whole seconds"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.SetDefaults()
			err := tt.cfg.Validate()
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

// feedOn makes a queue with a dead-letter queue and a subscriber to it, closed at the end.
func feedOn(t *testing.T, cfg sqs.Config, maxReceiveCount int, visibility time.Duration) (*sqs.Subscriber, *awssqs.Client, mototest.Queue, *sqs.Metrics) {
	t.Helper()
	ac := mototest.AWSConfig(t)
	client := awssqs.NewFromConfig(ac)
	q := mototest.CreateQueueWithDLQ(t, client, mototest.Name(t, "q"), maxReceiveCount, visibility)
	cfg.QueueURL, cfg.AWSConfig = q.URL, ac
	if cfg.WaitTime == 0 {
		cfg.WaitTime = time.Second
	}
	if cfg.VisibilityTimeout == 0 {
		cfg.VisibilityTimeout = visibility
	}
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = visibility
	}
	m, err := sqs.NewMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	sub, err := sqs.New(cfg, m, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, sub.Close()) })
	return sub, client, q, m
}

func send(t *testing.T, client *awssqs.Client, url string, bodies ...string) {
	t.Helper()
	for len(bodies) > 0 {
		n := min(len(bodies), 10)
		var entries []sqstypes.SendMessageBatchRequestEntry
		for i, b := range bodies[:n] {
			entries = append(entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), MessageBody: aws.String(b)})
		}
		out, err := client.SendMessageBatch(t.Context(), &awssqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries})
		require.NoError(t, err)
		require.Empty(t, out.Failed)
		bodies = bodies[n:]
	}
}

func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}

func waitQueue(t *testing.T, client *awssqs.Client, url string, visible, inFlight int) {
	t.Helper()
	require.Eventually(t, func() bool {
		v, f := mototest.QueueCounts(t, client, url)
		return v == visible && f == inFlight
	}, 20*time.Second, 50*time.Millisecond, "queue %s: want %d visible, %d in flight", url, visible, inFlight)
}

func TestSubscriberAckDeletesNackRedeliversUntilTheDLQ(t *testing.T) {
	sub, client, q, m := feedOn(t, sqs.Config{Concurrency: 2}, 3, time.Second)
	send(t, client, q.URL, "good", "bad")
	msgs, err := sub.Subscribe(t.Context(), app.TopicStatusChanges)
	require.NoError(t, err)

	var badCounts []string
	timeout := time.After(30 * time.Second)
	for len(badCounts) < 3 {
		select {
		case msg := <-msgs:
			assert.Equal(t, sqs.Source, msg.Metadata.Get(app.MetaSource))
			assert.NotEmpty(t, msg.Metadata.Get(app.MetaPosition), "the SQS message id")
			for k := range msg.Metadata {
				assert.NotContains(t, strings.ToLower(k), "receipt", "the receipt handle stays inside")
			}
			if string(msg.Payload) == "bad" {
				badCounts = append(badCounts, msg.Metadata.Get(sqs.MetaReceiveCount))
				msg.Nack()
				continue
			}
			assert.Equal(t, "1", msg.Metadata.Get(sqs.MetaReceiveCount), "an acked message is not received again")
			msg.Ack()
		case <-timeout:
			t.Fatalf("bad message received %d times, want 3", len(badCounts))
		}
	}
	assert.Equal(t, []string{"1", "2", "3"}, badCounts)
	// After its third receive, the redrive policy moves it on the fourth attempt.
	waitQueue(t, client, q.DLQURL, 1, 0)
	waitQueue(t, client, q.URL, 0, 0)
	assert.Equal(t, 1.0, counter(t, m.Messages.WithLabelValues("deleted")))
	assert.Equal(t, 3.0, counter(t, m.Messages.WithLabelValues("released")))
	assert.Equal(t, 1.0, counter(t, m.LastReceives), "the last allowed receive is counted")
}

// With watermill-aws alone, a nack abandons the rest of the received batch: those
// messages come back only after the visibility timeout, one receive closer to the DLQ,
// and behind a message that keeps failing they reach the DLQ with it (seen here: all
// nine). Subscriber goes on with the batch, and only the failing message is
// dead-lettered.
func TestSubscriberNackDoesNotHoldBackTheRestOfTheBatch(t *testing.T) {
	const visibility = 3 * time.Second
	sub, client, q, _ := feedOn(t, sqs.Config{Concurrency: 1, BatchSize: 10}, 3, visibility)
	bodies := []string{"bad"}
	for i := range 9 {
		bodies = append(bodies, fmt.Sprintf("good-%d", i))
	}
	send(t, client, q.URL, bodies...)
	msgs, err := sub.Subscribe(t.Context(), app.TopicStatusChanges)
	require.NoError(t, err)

	start := time.Now()
	good := map[string]string{}
	var tookGood time.Duration
	for bad := 0; bad < 3 || len(good) < 9; {
		select {
		case msg := <-msgs:
			if string(msg.Payload) == "bad" {
				bad++
				msg.Nack()
				continue
			}
			good[string(msg.Payload)] = msg.Metadata.Get(sqs.MetaReceiveCount)
			msg.Ack()
			if len(good) == 9 {
				tookGood = time.Since(start)
			}
		case <-time.After(5 * visibility):
			t.Fatalf("stuck: %d good messages, bad one not on its last receive", len(good))
		}
	}
	require.Len(t, good, 9)
	assert.Less(t, tookGood, visibility, "the good messages did not wait for the bad one's visibility timeout")
	for body, count := range good {
		assert.Equal(t, "1", count, "%s received once", body)
	}
	waitQueue(t, client, q.DLQURL, 1, 0) // the bad one only
	waitQueue(t, client, q.URL, 0, 0)
}

func TestSubscriberPayloadIsTheBodyAsSent(t *testing.T) {
	sub, client, q, _ := feedOn(t, sqs.Config{}, 3, 2*time.Second)
	snsClient := sns.NewFromConfig(mototest.AWSConfig(t))
	topic, err := snsClient.CreateTopic(t.Context(), &sns.CreateTopicInput{Name: aws.String(mototest.Name(t, "topic"))})
	require.NoError(t, err)
	_, err = snsClient.Subscribe(t.Context(), &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(q.Arn)})
	require.NoError(t, err)

	direct := `{"version":"0","detail-type":"Step Functions Execution Status Change","detail":{"k":"v"}}`
	send(t, client, q.URL, direct)
	_, err = snsClient.Publish(t.Context(), &sns.PublishInput{TopicArn: topic.TopicArn, Message: aws.String(`{"via":"sns"}`)})
	require.NoError(t, err)

	msgs, err := sub.Subscribe(t.Context(), app.TopicStatusChanges)
	require.NoError(t, err)
	got := map[string]bool{}
	for len(got) < 2 {
		select {
		case msg := <-msgs:
			switch p := string(msg.Payload); {
			case p == direct:
				got["direct"] = true
			case strings.Contains(p, `"Type": "Notification"`) && strings.Contains(p, `"Message": "{\"via\":\"sns\"}"`):
				got["sns"] = true // the SNS notification, Message a JSON string
			default:
				t.Errorf("unexpected payload %s", p)
			}
			msg.Ack()
		case <-time.After(20 * time.Second):
			t.Fatalf("got %v", got)
		}
	}
}

func TestSubscriberFailsFastOnAMissingQueue(t *testing.T) {
	ac := mototest.AWSConfig(t)
	sub, err := sqs.New(sqs.Config{QueueURL: "http://127.0.0.1:1/123456789012/nope", AWSConfig: ac, WaitTime: time.Second}, nil, nil)
	require.NoError(t, err)
	defer sub.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err = sub.Subscribe(ctx, app.TopicStatusChanges)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "describe queue")
}

func TestSubscriberCloseIsIdempotentAndClosesTheChannel(t *testing.T) {
	sub, _, _, _ := feedOn(t, sqs.Config{Concurrency: 3}, 3, time.Second)
	msgs, err := sub.Subscribe(t.Context(), app.TopicStatusChanges)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { assert.NoError(t, sub.Close()) })
	}
	wg.Wait()
	select {
	case _, open := <-msgs:
		assert.False(t, open)
	case <-time.After(5 * time.Second):
		t.Fatal("output channel not closed")
	}
	_, err = sub.Subscribe(t.Context(), app.TopicStatusChanges)
	require.Error(t, err)
}

func TestDeadLetterQueuePeekLeavesMessagesAndSaysWhy(t *testing.T) {
	ac := mototest.AWSConfig(t)
	client := awssqs.NewFromConfig(ac)
	q := mototest.CreateQueueWithDLQ(t, client, mototest.Name(t, "q"), 3, time.Second)
	valid := statusChangeBody("arn:aws:states:us-east-1:123456789012:stateMachine:flow", "run-1", "FAILED", 1_700_000_000_000, 1_700_000_060_000, 0)
	send(t, client, q.DLQURL, valid, `{"detail-type": 1}`, "not json")

	dlq, err := sqs.OpenDeadLetterQueue(t.Context(), sqs.Config{QueueURL: q.URL, AWSConfig: ac})
	require.NoError(t, err)
	assert.Equal(t, q.DLQURL, dlq.URL(), "found through the redrive policy")
	items, err := dlq.Peek(t.Context(), 10)
	require.NoError(t, err)
	require.Len(t, items, 3)
	byBody := map[string]sqs.DeadLetter{}
	for _, it := range items {
		byBody[it.Body] = it
		assert.NotEmpty(t, it.MessageID)
		assert.False(t, it.SentAt.IsZero())
	}
	assert.Empty(t, byBody[valid].Reason, "parses: it failed for a passing reason")
	assert.Equal(t, "FAILED", byBody[valid].Status)
	assert.Equal(t, "arn:aws:states:us-east-1:123456789012:execution:flow:run-1", byBody[valid].ExecutionArn)
	assert.Contains(t, byBody[`{"detail-type": 1}`].Reason, "detail-type")
	assert.Contains(t, byBody["not json"].Reason, "malformed JSON")

	d, err := dlq.Depth(t.Context())
	require.NoError(t, err)
	assert.Equal(t, sqs.QueueDepth{Visible: 3}, d, "peeking takes nothing and hides nothing")
	again, err := dlq.Peek(t.Context(), 2)
	require.NoError(t, err)
	assert.Len(t, again, 2, "still there, and n caps the answer")

	t.Run("no redrive policy", func(t *testing.T) {
		url, _ := mototest.CreateQueue(t, client, mototest.Name(t, "plain"), nil)
		_, err := sqs.OpenDeadLetterQueue(t.Context(), sqs.Config{QueueURL: url, AWSConfig: ac})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "no redrive policy")
	})
}

func TestDepthCollectorReportsBothQueues(t *testing.T) {
	ac := mototest.AWSConfig(t)
	client := awssqs.NewFromConfig(ac)
	q := mototest.CreateQueueWithDLQ(t, client, mototest.Name(t, "q"), 3, time.Second)
	send(t, client, q.URL, "a", "b")
	send(t, client, q.DLQURL, "c")
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(sqs.NewDepthCollector(client, sqs.Config{QueueURL: q.URL}, nil)))
	families, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			got[key] = m.GetGauge().GetValue()
		}
	}
	assert.Equal(t, map[string]float64{
		"agentwatch_sqs_queue_messages,queue=main,state=visible":   2,
		"agentwatch_sqs_queue_messages,queue=main,state=in_flight": 0,
		"agentwatch_sqs_queue_messages,queue=dlq,state=visible":    1,
		"agentwatch_sqs_queue_messages,queue=dlq,state=in_flight":  0,
	}, got)
}

var _ message.Subscriber = (*sqs.Subscriber)(nil)

// receiveNone polls the queue as another worker would, for d, and fails on any message:
// nothing the subscriber holds may become visible.
func receiveNone(t *testing.T, client *awssqs.Client, url string, d time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); {
		out, err := client.ReceiveMessage(t.Context(), &awssqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 1,
			MaxNumberOfMessages: 10, VisibilityTimeout: 1})
		require.NoError(t, err)
		require.Empty(t, out.Messages, "a message held by the subscriber became visible")
	}
}

// A message handled for three times its visibility timeout, and the messages waiting
// behind it in its batch, stay invisible: the heartbeat extends them. Without it they
// would come back after one timeout and be received again.
func TestSubscriberKeepsMessagesBeingHandledInvisible(t *testing.T) {
	const visibility = 2 * time.Second
	sub, client, q, m := feedOn(t, sqs.Config{Concurrency: 1, BatchSize: 10}, 3, visibility)
	send(t, client, q.URL, "slow", "next-1", "next-2")
	msgs, err := sub.Subscribe(t.Context(), app.TopicStatusChanges)
	require.NoError(t, err)
	var slow *message.Message
	select {
	case slow = <-msgs:
	case <-time.After(20 * time.Second):
		t.Fatal("no message")
	}
	waitQueue(t, client, q.URL, 0, 3)
	receiveNone(t, client, q.URL, 3*visibility)
	slow.Ack()
	got := map[string]string{string(slow.Payload): slow.Metadata.Get(sqs.MetaReceiveCount)}
	for len(got) < 3 {
		select {
		case msg := <-msgs:
			got[string(msg.Payload)] = msg.Metadata.Get(sqs.MetaReceiveCount)
			msg.Ack()
		case <-time.After(20 * time.Second):
			t.Fatalf("received %v", got)
		}
	}
	assert.Equal(t, map[string]string{"slow": "1", "next-1": "1", "next-2": "1"}, got, "each received once")
	waitQueue(t, client, q.URL, 0, 0)
	assert.Positive(t, counter(t, m.VisibilityChanges.WithLabelValues("extended")))
}

// A worker dies (here: every SQS call of it is dropped from then on, so its heartbeat
// stops as a killed process's would) while it holds a batch. Another worker receives
// the whole batch within the default visibility timeout (10 s) — not after the queue's
// own (60 s in deployments/), which is what a dead worker's messages waited out before.
func TestSubscriberDeadWorkersMessagesComeBackWithinTheTimeout(t *testing.T) {
	ac := mototest.AWSConfig(t)
	client := awssqs.NewFromConfig(ac)
	q := mototest.CreateQueueWithDLQ(t, client, mototest.Name(t, "q"), 5, 60*time.Second)
	proxy, err := faultinject.New(faultinject.Config{Upstream: mototest.Endpoint(t)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = proxy.Close() })
	m, err := sqs.NewMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	workerAC := ac.Copy()
	workerAC.RetryMaxAttempts = 1 // a dead worker does not retry; its Close is quick
	cfg := sqs.Config{QueueURL: q.URL, AWSConfig: workerAC, WaitTime: time.Second, Concurrency: 1,
		OptFns: []func(*awssqs.Options){func(o *awssqs.Options) { o.BaseEndpoint = aws.String(proxy.URL()) }}}
	sub, err := sqs.New(cfg, m, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	var bodies []string
	for i := range 10 {
		bodies = append(bodies, fmt.Sprintf("m-%d", i))
	}
	send(t, client, q.URL, bodies...)
	msgs, err := sub.Subscribe(t.Context(), app.TopicStatusChanges)
	require.NoError(t, err)
	select {
	case <-msgs: // handled forever: never acked
	case <-time.After(20 * time.Second):
		t.Fatal("no message")
	}
	waitQueue(t, client, q.URL, 0, 10)
	require.Eventually(t, func() bool { return counter(t, m.VisibilityChanges.WithLabelValues("extended")) >= 10 },
		20*time.Second, 50*time.Millisecond, "a heartbeat")

	require.NoError(t, proxy.SetRules([]faultinject.Rule{{Service: faultinject.ServiceSQS, Kind: faultinject.DropRequest, Rate: 1}}))
	died := time.Now()
	back := map[string]bool{}
	for len(back) < 10 {
		out, err := client.ReceiveMessage(t.Context(), &awssqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), WaitTimeSeconds: 1, MaxNumberOfMessages: 10})
		require.NoError(t, err)
		for _, msg := range out.Messages {
			back[aws.ToString(msg.Body)] = true
		}
		require.Less(t, time.Since(died), time.Minute, "the dead worker's messages did not come back: %d of 10", len(back))
	}
	took := time.Since(died)
	t.Logf("the dead worker's 10 messages came back %s after it died (visibility timeout %s)", took.Round(100*time.Millisecond), sqs.DefaultVisibilityTimeout)
	assert.LessOrEqual(t, took, sqs.DefaultVisibilityTimeout+5*time.Second, "within the visibility timeout (and a receive)")
}

// Closing makes the messages received but not handed out visible again at once.
func TestSubscriberCloseReturnsWhatItHeld(t *testing.T) {
	sub, client, q, m := feedOn(t, sqs.Config{Concurrency: 1, BatchSize: 10}, 3, 30*time.Second)
	send(t, client, q.URL, "a", "b", "c")
	msgs, err := sub.Subscribe(t.Context(), app.TopicStatusChanges)
	require.NoError(t, err)
	select {
	case msg := <-msgs:
		msg.Ack()
	case <-time.After(20 * time.Second):
		t.Fatal("no message")
	}
	waitQueue(t, client, q.URL, 0, 2)
	require.NoError(t, sub.Close())
	waitQueue(t, client, q.URL, 2, 0)
	assert.Equal(t, 2.0, counter(t, m.VisibilityChanges.WithLabelValues("returned")))
}

// A nacked message stays invisible for RetryDelay — longer than the short visibility
// timeout — and is then received again: retries of a failing message are spaced as
// they were when the queue's own timeout governed them.
func TestSubscriberNackedMessageComesBackAfterTheRetryDelay(t *testing.T) {
	const retryDelay = 4 * time.Second
	sub, client, q, m := feedOn(t, sqs.Config{Concurrency: 1, RetryDelay: retryDelay}, 3, time.Second)
	send(t, client, q.URL, "failing")
	msgs, err := sub.Subscribe(t.Context(), app.TopicStatusChanges)
	require.NoError(t, err)
	var nacked time.Time
	select {
	case msg := <-msgs:
		msg.Nack()
		nacked = time.Now()
	case <-time.After(20 * time.Second):
		t.Fatal("no message")
	}
	receiveNone(t, client, q.URL, retryDelay-time.Second)
	select {
	case msg := <-msgs:
		assert.GreaterOrEqual(t, time.Since(nacked), retryDelay-500*time.Millisecond, "not before the retry delay")
		assert.Equal(t, "2", msg.Metadata.Get(sqs.MetaReceiveCount))
		msg.Ack()
	case <-time.After(20 * time.Second):
		t.Fatal("the nacked message did not come back")
	}
	assert.Equal(t, 1.0, counter(t, m.VisibilityChanges.WithLabelValues("retry_delayed")))
}
