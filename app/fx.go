package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
	"github.com/agentwatch/agentwatch/projections/agentstats"
	"github.com/agentwatch/agentwatch/projections/executionindex"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// CoreModule provides the use cases every subcommand needs: metrics, the ingester, the
// projector and the queries. Adapters provide the ports; cmd supplies Config and the
// *slog.Logger.
var CoreModule = fx.Module("app",
	ReadModelsModule,
	fx.Provide(
		newRegistry,
		newMetrics,
		newBackpressure,
		newIngester,
		NewProjector,
		newQueries,
		newStuckStore,
		newStatsReader,
		newIndexReader,
		newRebuilder,
		newFxLocalProjection,
	),
	fx.Invoke(ensureReadModels),
)

// newStatsReader reads the agent statistics read model in the backend's store.
func newStatsReader(m ReadModelStore) StatsReader { return agentstats.NewStore(m) }

// newIndexReader reads the execution index in the backend's store.
func newIndexReader(m ReadModelStore) executionindex.Reader { return executionindex.NewStore(m) }

// WorkerModule adds the long-running parts: the Watermill router with its two
// handlers and the stuck detector, started and stopped with the fx app.
var WorkerModule = fx.Module("worker",
	fx.Provide(
		newRouter,
		newDetector,
		fx.Annotate(NewQuarantinePublisher, fx.ResultTags(`name:"poison"`), fx.As(new(message.Publisher))),
	),
	fx.Invoke(registerRouter, registerDetector, watchBackpressure),
)

// watchBackpressure keeps the backlog gauge current while the worker runs.
func watchBackpressure(lc fx.Lifecycle, p struct {
	fx.In
	Gate *Backpressure `optional:"true"`
}) {
	if p.Gate == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			go func() { defer close(done); p.Gate.Watch(ctx, 250*time.Millisecond) }()
			return nil
		},
		OnStop: func(context.Context) error { cancel(); <-done; return nil },
	})
}

func newRegistry() (*prometheus.Registry, prometheus.Registerer, prometheus.Gatherer) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg, reg, reg
}

// newMetrics is NewMetrics with the app's logger for the samples it logs.
func newMetrics(reg prometheus.Registerer, logger *slog.Logger) (*Metrics, error) {
	m, err := NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	m.SetLogger(logger)
	return m, nil
}

// IngesterParams are the Ingester's dependencies in the fx graph.
type IngesterParams struct {
	fx.In
	Config     Config
	Journal    JournalAppender
	Quarantine Quarantine
	Resolver   domain.AgentNameResolver `optional:"true"`
	Logger     *slog.Logger
	Metrics    *Metrics
	// Backpressure is nil where the backend cannot tell its projection backlog.
	Backpressure *Backpressure `optional:"true"`
}

func newIngester(p IngesterParams) *Ingester {
	in := NewIngester(p.Journal, p.Quarantine, p.Resolver, p.Config.Mapping, p.Logger, p.Metrics)
	in.PushBackWith(p.Backpressure)
	return in
}

// BackpressureParams are the ingest gate's dependencies in the fx graph.
type BackpressureParams struct {
	fx.In
	Config     Config
	Backlog    ProjectionBacklog `optional:"true"`
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// newBackpressure is nil (admit everything) where the backend provides no backlog.
func newBackpressure(p BackpressureParams) (*Backpressure, error) {
	if p.Backlog == nil {
		return nil, nil
	}
	return NewBackpressure(p.Config.Backpressure, p.Backlog, p.Registerer, p.Logger)
}

// QueriesParams are the Queries' dependencies in the fx graph.
type QueriesParams struct {
	fx.In
	Registry   *projections.Registry
	Models     ReadModelStore
	Journal    JournalReader
	Alerts     AlertStore
	Quarantine Quarantine
}

func newQueries(p QueriesParams) *Queries {
	return NewQueries(p.Registry, p.Models, p.Journal, p.Alerts, p.Quarantine)
}

// newStuckStore is the detector's view of the stuck read model in the backend's store.
func newStuckStore(m ReadModelStore) StuckStore { return stuck.NewStore(m, m) }

// RebuilderParams are the rebuilder's dependencies in the fx graph.
type RebuilderParams struct {
	fx.In
	Registry    *projections.Registry
	Journal     JournalScanner
	Tail        JournalTail `optional:"true"`
	Gens        GenerationStore
	Checkpoints CheckpointStore
	// Recorder and SessionJournal catch a rebuild up where the journal has no tail.
	Recorder SessionRecorder `optional:"true"`
	Journals JournalReader
	Logger   *slog.Logger
	Metrics  *Metrics
}

func newRebuilder(p RebuilderParams) *Rebuilder {
	rb := NewRebuilder(p.Registry, p.Journal, p.Tail, p.Gens, p.Checkpoints, p.Logger, p.Metrics)
	if p.Tail == nil && p.Recorder != nil {
		rb.WithSessionRecorder(p.Recorder, p.Journals)
	}
	return rb
}

// RouterParams are the router's dependencies in the fx graph.
type RouterParams struct {
	fx.In
	Config        Config
	Journal       JournalFeed
	StatusChanges StatusChangeFeed  `optional:"true"`
	Poison        message.Publisher `name:"poison"`
	Projector     *Projector
	Ingester      *Ingester
	Registerer    prometheus.Registerer
	Logger        *slog.Logger
}

func newRouter(p RouterParams) (*message.Router, error) {
	return NewRouter(p.Config.Router, p.Journal, p.StatusChanges, p.Poison, p.Projector, p.Ingester, p.Registerer, p.Logger)
}

// registerRouter runs the router with the app: OnStart starts it and waits until it
// runs; OnStop closes it, which finishes in-flight messages first.
func registerRouter(lc fx.Lifecycle, r *message.Router, logger *slog.Logger) {
	runErr := make(chan error, 1)
	lc.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			go func() { runErr <- r.Run(context.Background()) }()
			select {
			case <-r.Running():
				return nil
			case err := <-runErr:
				return fmt.Errorf("router stopped while starting: %w", err)
			case <-ctx.Done():
				return ctx.Err()
			}
		},
		OnStop: func(ctx context.Context) error {
			if err := r.Close(); err != nil {
				return fmt.Errorf("close router: %w", err)
			}
			select {
			case err := <-runErr:
				if err != nil {
					logger.Error("router stopped with error", "error", err)
				}
			case <-ctx.Done():
			}
			return nil
		},
	})
}

// DetectorParams are the detector's dependencies in the fx graph.
type DetectorParams struct {
	fx.In
	Config   Config
	Stuck    StuckStore
	Alerts   AlertStore
	Sessions ProjectionStore
	Sinks    []AlertSink `group:"alert_sinks"`
	Stats    StatsReader
	Logger   *slog.Logger
	Metrics  *Metrics
	// Watermark, when the journal feed provides one, holds alerts back while the
	// projector is behind.
	Watermark ProjectionWatermark `optional:"true"`
}

func newDetector(p DetectorParams) *Detector {
	for _, s := range p.Sinks {
		p.Metrics.InitSinks(s.Name())
	}
	d := NewDetector(p.Config.Detector, p.Stuck, p.Alerts, p.Sessions, p.Sinks, p.Logger, p.Metrics)
	d.UseStats(p.Stats)
	d.UseWatermark(p.Watermark)
	return d
}

func registerDetector(lc fx.Lifecycle, d *Detector) {
	lc.Append(fx.StartStopHook(d.Start, d.Stop))
}
