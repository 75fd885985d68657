package alerts_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssns "github.com/aws/aws-sdk-go-v2/service/sns"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/adapters/alerts"
	"github.com/agentwatch/agentwatch/adapters/sqs/mototest"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

func alert() app.Alert {
	return app.Alert{SessionID: "abc-123-def", Kind: stuck.KindMissingCompletion, AgentName: "my-agent",
		ExecutionArn: "arn:aws:states:us-east-1:123456789012:execution:my-agent:abc123", Stage: domain.StageBackgroundTask,
		LastStatus: domain.StatusBackgroundTaskStarted, LastEventAt: time.Date(2024, 11, 4, 10, 30, 4, 12e6, time.UTC),
		OverdueBy: "2m0s", Diagnosis: domain.Diagnosis{Outcome: domain.OutcomeMissingCompletion, Scenario: 4, Summary: "scenario 4"},
		Link: "http://agentwatch/?session=abc-123-def", RaisedAt: time.Date(2024, 11, 4, 10, 45, 0, 0, time.UTC), State: app.AlertPending}
}

func TestWebhookRetriesSignsAndCarriesThePayload(t *testing.T) {
	var calls atomic.Int32
	var got app.Alert
	var sig, key string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, []byte("s3cret"))
		mac.Write(body)
		sig = r.Header.Get(alerts.SignatureHeader)
		assert.Equal(t, "sha256="+hex.EncodeToString(mac.Sum(nil)), sig)
		key = r.Header.Get("Idempotency-Key")
		assert.NoError(t, json.Unmarshal(body, &got))
	}))
	defer srv.Close()
	sink, err := alerts.NewWebhookSink(alerts.WebhookConfig{URL: srv.URL, Secret: "s3cret", Attempts: 5, Backoff: time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, sink.Send(t.Context(), alert()))
	assert.EqualValues(t, 3, calls.Load(), "two 503s retried")
	assert.Equal(t, "abc-123-def/missing_completion", key)
	want := alert()
	assert.Equal(t, want.SessionID, got.SessionID)
	assert.Equal(t, want.Kind, got.Kind)
	assert.Equal(t, want.ExecutionArn, got.ExecutionArn)
	assert.Equal(t, want.Stage, got.Stage)
	assert.Equal(t, want.LastStatus, got.LastStatus)
	assert.Equal(t, want.OverdueBy, got.OverdueBy)
	assert.Equal(t, want.Diagnosis.Summary, got.Diagnosis.Summary)
	assert.Equal(t, want.Link, got.Link)
}

func TestWebhookDoesNotRetryClientErrors(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusBadRequest)
	}))
	defer srv.Close()
	sink, err := alerts.NewWebhookSink(alerts.WebhookConfig{URL: srv.URL, Attempts: 5, Backoff: time.Millisecond})
	require.NoError(t, err)
	require.Error(t, sink.Send(t.Context(), alert()))
	assert.EqualValues(t, 1, calls.Load())
}

// TestSNSSinkOnMoto publishes an alert through watermill-aws to a real (emulated) SNS
// topic subscribed by an SQS queue, and reads it back.
func TestSNSSinkOnMoto(t *testing.T) {
	cfg := mototest.AWSConfig(t)
	ctx := context.Background()
	snsc, sqsc := awssns.NewFromConfig(cfg), awssqs.NewFromConfig(cfg)
	topic, err := snsc.CreateTopic(ctx, &awssns.CreateTopicInput{Name: aws.String(mototest.Name(t, "alerts"))})
	require.NoError(t, err)
	url, arn := mototest.CreateQueue(t, sqsc, mototest.Name(t, "alerts-q"), nil)
	_, err = snsc.Subscribe(ctx, &awssns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(arn),
		Attributes: map[string]string{"RawMessageDelivery": "true"}})
	require.NoError(t, err)

	sink, err := alerts.NewSNSSink(ctx, alerts.SNSConfig{TopicArn: *topic.TopicArn, AWSConfig: &cfg}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	require.NoError(t, sink.Send(ctx, alert()))

	var body string
	require.Eventually(t, func() bool {
		out, err := sqsc.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 1})
		if err != nil || len(out.Messages) == 0 {
			return false
		}
		body = *out.Messages[0].Body
		return true
	}, 20*time.Second, 10*time.Millisecond)
	var got app.Alert
	require.NoError(t, json.Unmarshal([]byte(body), &got))
	assert.Equal(t, "abc-123-def", got.SessionID)
	assert.Equal(t, stuck.KindMissingCompletion, got.Kind)
}
