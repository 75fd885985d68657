package sqlite

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/projections"
)

// Config configures the embedded backend.
type Config struct {
	// DataDir holds the database file.
	DataDir string
}

// Module provides every port of the embedded backend from one SQLite file: the
// journal, the read models of the current generation, alerts, checkpoints and the
// quarantine. WorkerFeedModule adds the journal tail.
var Module = fx.Module("sqlite",
	fx.Provide(
		openDB,
		NewJournalStore,
		fx.Annotate(func(s *JournalStore) app.JournalAppender { return s }),
		fx.Annotate(func(s *JournalStore) app.JournalReader { return s }),
		fx.Annotate(func(s *JournalStore) app.JournalScanner { return s }),
		fx.Annotate(func(s *JournalStore) app.JournalTail { return NewJournalTail(s) }),
		newCurrentReadModelStore,
		fx.Annotate(func(s *ReadModelStore) app.GenerationStore { return s }),
		fx.Annotate(func(s *ReadModelStore) app.ProjectionStore { return s }),
		fx.Annotate(func(s *ReadModelStore) app.ReadModelStore { return s }),
		NewAlertStore,
		fx.Annotate(func(s *AlertStore) app.AlertStore { return s }),
		NewCheckpointStore,
		fx.Annotate(func(s *CheckpointStore) app.CheckpointStore { return s }),
		NewQuarantineStore,
		fx.Annotate(func(s *QuarantineStore) app.Quarantine { return s }),
		newProjectionProgress,
		fx.Annotate(func(p *ProjectionProgress) app.ProjectionWatermark { return p }),
		fx.Annotate(func(p *ProjectionProgress) app.ProjectionBacklog { return p }),
	),
)

// newProjectionProgress follows the live projector's checkpoint.
func newProjectionProgress(db *DB, cfg app.Config) *ProjectionProgress {
	cfg.SetDefaults()
	return NewProjectionProgress(db, cfg.CheckpointName)
}

// WorkerFeedModule provides the journal tail as the worker's journal feed.
var WorkerFeedModule = fx.Module("sqlite-feed",
	fx.Provide(newJournalFeed),
)

// DBParams are what opening the database needs in the fx graph.
type DBParams struct {
	fx.In
	Lifecycle fx.Lifecycle
	Config    Config
	Logger    *slog.Logger
	// Registerer, when present, gets agentwatch_sqlite_wal_bytes.
	Registerer prometheus.Registerer `optional:"true"`
}

func openDB(p DBParams) (*DB, error) {
	db, err := Open(context.Background(), p.Config.DataDir, p.Logger)
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.StopHook(db.Close))
	wal := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "agentwatch", Name: "sqlite_wal_bytes",
		Help: "Size of the embedded database's write-ahead log (bounded near 64 MiB under sustained writes)."},
		func() float64 { return float64(db.WALSize()) })
	if err := app.RegisterCollectors(p.Registerer, wal); err != nil {
		return nil, fmt.Errorf("sqlite metrics: %w", err)
	}
	return db, nil
}

// newCurrentReadModelStore follows the current generation at each call: after a
// rebuild switches generations, the live projector writes the new one (the rebuild's
// final catch-up covers a commit that raced the switch).
func newCurrentReadModelStore(db *DB, reg *projections.Registry) *ReadModelStore {
	return NewReadModelStore(db, reg, 0)
}

func newJournalFeed(lc fx.Lifecycle, db *DB, cfg app.Config, logger *slog.Logger) (app.JournalFeed, error) {
	sub, err := NewTailSubscriber(db, TailSubscriberConfig{CheckpointName: cfg.CheckpointName, Pages: true}, watermill.NewSlogLogger(logger))
	if err != nil {
		return app.JournalFeed{}, err
	}
	lc.Append(fx.StopHook(sub.Close))
	return app.JournalFeed{Subscriber: sub, CheckpointName: cfg.CheckpointName}, nil
}

// JournalTail is the journal as an app.JournalTail: positions are sequence numbers.
type JournalTail struct{ s *JournalStore }

var _ app.JournalTail = JournalTail{}

// NewJournalTail returns the journal of s as a single-sequence feed.
func NewJournalTail(s *JournalStore) JournalTail { return JournalTail{s} }

// EndPosition is the position of the journal's last item.
func (t JournalTail) EndPosition(ctx context.Context) (string, error) {
	seq, err := t.s.MaxSeq(ctx)
	if err != nil {
		return "", err
	}
	return strconv.FormatInt(seq, 10), nil
}

// ReadAfter returns up to limit events after position ("" = from the start).
func (t JournalTail) ReadAfter(ctx context.Context, position string, limit int) ([]app.PositionedEvent, error) {
	var seq int64
	if position != "" {
		var err error
		if seq, err = strconv.ParseInt(position, 10, 64); err != nil {
			return nil, fmt.Errorf("journal position %q: %w", position, err)
		}
	}
	rows, err := t.s.ReadAfter(ctx, seq, limit)
	if err != nil {
		return nil, err
	}
	out := make([]app.PositionedEvent, len(rows))
	for i, r := range rows {
		out[i] = app.PositionedEvent{Position: strconv.FormatInt(r.Seq, 10), Event: r.Event}
	}
	return out, nil
}
