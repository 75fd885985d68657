package dynamodb

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/projections"
)

// Module provides every store port of the AWS backend from a supplied Config: the
// journal, the registered read models of the current generation, alerts, checkpoints
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
		fx.Annotate(func(s *ReadModelStore) app.GenerationStore { return s }),
		fx.Annotate(func(s *ReadModelStore) app.SessionRecorder { return s }),
		fx.Annotate(func(s *ReadModelStore) app.ProjectionStore { return s }),
		fx.Annotate(func(s *ReadModelStore) app.ReadModelStore { return s }),
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

// newCurrentReadModelStore follows the current generation (refreshed every
// Config.GenerationRefresh): after a rebuild switches generations, the live projector
// writes the new one, and the rebuild's final catch-up covers a commit that raced the
// switch.
func newCurrentReadModelStore(client *dynamodb.Client, cfg Config, reg *projections.Registry, logger *slog.Logger) (*ReadModelStore, error) {
	s, err := NewReadModelStore(client, cfg, reg, 0, logger)
	if err != nil {
		return nil, fmt.Errorf("dynamodb read models: %w", err)
	}
	return s, nil
}
