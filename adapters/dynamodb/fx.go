package dynamodb

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/projections/executionindex"
)

// Module provides every store port of the AWS backend from a supplied Config: the
// journal, the read models of the generation current at start, alerts, checkpoints
// and the quarantine — the ports adapters/sqlite.Module provides, but for the journal
// tail (in AWS mode the journal feed is the DynamoDB Streams subscriber). It also
// provides the *dynamodb.Client (NewClient: the SDK's standard configuration) and the
// *RequestCounter installed on it. The tables must exist: `agentwatch migrate`.
var Module = fx.Module("dynamodb",
	fx.Provide(
		NewRequestCounter,
		newFxClient,
		NewJournalStore,
		fx.Annotate(func(s *JournalStore) app.JournalAppender { return s }),
		fx.Annotate(func(s *JournalStore) app.JournalReader { return s }),
		fx.Annotate(func(s *JournalStore) app.JournalScanner { return s }),
		newCurrentReadModelStore,
		fx.Annotate(func(s *ReadModelStore) app.ProjectionStore { return s }),
		fx.Annotate(func(s *ReadModelStore) executionindex.Reader { return s }),
		fx.Annotate(func(s *ReadModelStore) app.StatsReader { return s }),
		fx.Annotate(func(s *ReadModelStore) app.StuckStore { return s }),
		NewAlertStore,
		fx.Annotate(func(s *AlertStore) app.AlertStore { return s }),
		NewCheckpointStore,
		fx.Annotate(func(s *CheckpointStore) app.CheckpointStore { return s }),
		NewQuarantineStore,
		fx.Annotate(func(s *QuarantineStore) app.Quarantine { return s }),
	),
)

func newFxClient(counter *RequestCounter) (*dynamodb.Client, error) {
	return NewClient(context.Background(), WithRequestCounter(counter))
}

// newCurrentReadModelStore pins the generation that is current at start: the
// projector's writes must not move to another generation halfway.
func newCurrentReadModelStore(client *dynamodb.Client, cfg Config, logger *slog.Logger) (*ReadModelStore, error) {
	follow, err := NewReadModelStore(client, cfg, 0, logger)
	if err != nil {
		return nil, err
	}
	gen, err := follow.CurrentGeneration(context.Background())
	if err != nil {
		return nil, fmt.Errorf("dynamodb read models: %w", err)
	}
	return NewReadModelStore(client, cfg, gen, logger)
}
