package dynamodbstreams

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	awdynamodb "github.com/agentwatch/agentwatch/adapters/dynamodb"
	"github.com/agentwatch/agentwatch/app"
)

// Module provides the worker's journal feed in AWS mode: an app.JournalFeed whose
// Subscriber reads the stream of adapters/dynamodb's journal table, with its leases in
// that backend's control table (CheckpointName is empty: the feed checkpoints itself on
// Ack). It needs adapters/dynamodb.Module (the *dynamodb.Client and the app.Quarantine)
// and its Config; a Config of this package may be supplied to tune the feed (its
// TableName and LeaseTable are replaced by the backend's). It provides the
// *dynamodbstreams.Client too, from the SDK's standard configuration
// (AWS_ENDPOINT_URL_DYNAMODB_STREAMS or AWS_ENDPOINT_URL for a local server).
// The subscriber is closed when the app stops (after the router, which closes it
// first).
var Module = fx.Module("dynamodbstreams",
	fx.Provide(
		newStreamsClient,
		newJournalFeed,
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
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	return dynamodbstreams.NewFromConfig(cfg), nil
}

func newJournalFeed(p FeedParams) (app.JournalFeed, error) {
	backend := p.Backend
	backend.SetDefaults()
	cfg := p.Config
	cfg.TableName = backend.JournalTable
	cfg.LeaseTable = backend.TablesOf(1).Control
	sub, err := NewSubscriber(cfg, p.Streams, p.DynamoDB, p.Quarantine, watermill.NewSlogLogger(p.Logger), p.Registerer)
	if err != nil {
		return app.JournalFeed{}, err
	}
	p.Lifecycle.Append(fx.StopHook(sub.Close))
	return app.JournalFeed{Subscriber: sub}, nil
}
