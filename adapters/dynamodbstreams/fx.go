package dynamodbstreams

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	awdynamodb "github.com/agentwatch/agentwatch/adapters/dynamodb"
	"github.com/agentwatch/agentwatch/adapters/httpapi"
	"github.com/agentwatch/agentwatch/app"
)

// Module provides the worker's journal feed in AWS mode: an app.JournalFeed whose
// Subscriber reads the stream of adapters/dynamodb's journal table, with its leases in
// that backend's control table (CheckpointName is empty: the feed checkpoints itself on
// Ack). It also provides the same subscriber as the app.ProjectionWatermark (the
// stream's watermark, from the leases) and its CheckStalled as an httpapi.ReadyCheck
// in the httpapi.ReadinessGroup (a stalled shard makes /readyz answer 503). It needs
// adapters/dynamodb.Module (the *dynamodb.Client and the app.Quarantine) and its
// Config; a Config of this package may be supplied to tune the feed (its TableName and
// LeaseTable are replaced by the backend's). It provides the *dynamodbstreams.Client
// too, from the SDK's standard configuration (AWS_ENDPOINT_URL_DYNAMODB_STREAMS or
// AWS_ENDPOINT_URL for a local server), retrying throttled and failed calls with the
// standard retryer but without its client-side retry quota (the reader backs off and
// retries on its own; a quota would fail every call for a while after a burst of
// faults). The subscriber is closed when the app stops (after the router, which
// closes it first).
var Module = fx.Module("dynamodbstreams",
	fx.Provide(
		newStreamsClient,
		newFxSubscriber,
		func(s *Subscriber) app.JournalFeed { return app.JournalFeed{Subscriber: s} },
		func(s *Subscriber) app.ProjectionWatermark { return s },
		fx.Annotate(func(s *Subscriber) httpapi.ReadyCheck { return s.CheckStalled },
			fx.ResultTags(`group:"`+httpapi.ReadinessGroup+`"`)),
	),
)

// FeedParams are the journal feed's dependencies in the fx graph.
type FeedParams struct {
	fx.In
	Lifecycle  fx.Lifecycle
	Backend    awdynamodb.Config
	Config     Config `optional:"true"`
	Streams    *dynamodbstreams.Client
	DynamoDB   *dynamodb.Client
	Quarantine app.Quarantine
	Registerer prometheus.Registerer `optional:"true"`
	Logger     *slog.Logger
}

func newStreamsClient() (*dynamodbstreams.Client, error) {
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRetryer(func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) { o.RateLimiter = ratelimit.None })
	}))
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	return dynamodbstreams.NewFromConfig(cfg), nil
}

func newFxSubscriber(p FeedParams) (*Subscriber, error) {
	backend := p.Backend
	backend.SetDefaults()
	cfg := p.Config
	cfg.TableName = backend.JournalTable
	cfg.LeaseTable = backend.TablesOf(1).Control
	sub, err := NewSubscriber(cfg, p.Streams, p.DynamoDB, p.Quarantine, watermill.NewSlogLogger(p.Logger), p.Registerer)
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.StopHook(sub.Close))
	return sub, nil
}
