package sqs

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/app"
)

// Module provides the queue as the worker's app.StatusChangeFeed (Redelivers: a failing
// status change is left to the queue's visibility timeout and redrive policy) from a
// supplied Config, registers its metrics and the queue-depth gauge with the graph's
// prometheus.Registerer, and closes the subscriber when the app stops.
var Module = fx.Module("sqs",
	fx.Provide(
		NewMetrics,
		newFxFeed,
	),
)

// FeedParams are the feed's dependencies in the fx graph.
type FeedParams struct {
	fx.In
	Lifecycle  fx.Lifecycle
	Config     Config
	Metrics    *Metrics
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

func newFxFeed(p FeedParams) (app.StatusChangeFeed, error) {
	sub, err := New(p.Config, p.Metrics, p.Logger)
	if err != nil {
		return app.StatusChangeFeed{}, err
	}
	p.Lifecycle.Append(fx.StopHook(sub.Close))
	if err := p.Registerer.Register(NewDepthCollector(sub.client, sub.cfg, p.Logger)); err != nil {
		return app.StatusChangeFeed{}, fmt.Errorf("register queue depth gauge: %w", err)
	}
	return app.StatusChangeFeed{Subscriber: sub, Redelivers: true}, nil
}
