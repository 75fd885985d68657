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
		fx.Annotate(NewGenerationStore, fx.As(new(app.GenerationStore)), fx.As(new(app.SessionRecorder))),
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

// newCurrentReadModelStore follows the current generation (refreshed every
// Config.GenerationRefresh): after a rebuild switches generations, the live projector
// writes the new one, and the rebuild's final catch-up covers a commit that raced the
// switch.
func newCurrentReadModelStore(client *dynamodb.Client, cfg Config, logger *slog.Logger) (*ReadModelStore, error) {
	if _, err := NewReadModelStore(client, cfg, 0, logger); err != nil {
		return nil, fmt.Errorf("dynamodb read models: %w", err)
	}
	return NewReadModelStore(client, cfg, 0, logger)
}

// GenerationStore is the app.GenerationStore of the AWS backend.
type GenerationStore struct {
	*ReadModelStore
	client *dynamodb.Client
	cfg    Config
	logger *slog.Logger
}

var _ app.GenerationStore = GenerationStore{}

// NewGenerationStore returns the generation store of the configured tables.
func NewGenerationStore(client *dynamodb.Client, cfg Config, logger *slog.Logger) (GenerationStore, error) {
	s, err := NewReadModelStore(client, cfg, 0, logger)
	if err != nil {
		return GenerationStore{}, err
	}
	return GenerationStore{ReadModelStore: s, client: client, cfg: cfg, logger: logger}, nil
}

// ProjectionStoreOf is the projection store of generation gen.
func (g GenerationStore) ProjectionStoreOf(gen int) app.ProjectionStore {
	s, err := NewReadModelStore(g.client, g.cfg, gen, g.logger)
	if err != nil {
		return failingProjectionStore{err}
	}
	return s
}

// failingProjectionStore answers every call with the error that prevented building a
// store (an invalid configuration, which NewGenerationStore already checked).
type failingProjectionStore struct{ err error }

func (f failingProjectionStore) LoadSessions(context.Context, []string) (map[string]app.VersionedSession, error) {
	return nil, f.err
}
func (f failingProjectionStore) Commit(context.Context, app.Batch) error { return f.err }
