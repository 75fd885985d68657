package httpapi

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/app"
)

// Module provides the *Server and runs it with the fx app: OnStart listens (a bind
// error fails the start) and serves in the background; OnStop shuts down gracefully.
// It needs *app.Queries and *slog.Logger; Config, *app.Ingester, prometheus.Gatherer
// and ReadyCheck are optional (see HTTPParams).
var Module = fx.Module("httpapi",
	fx.Provide(newFromParams),
	fx.Invoke(registerLifecycle),
)

// ReadyCheck reports whether the process is ready to serve (the stores answer, the
// projector caught up...): nil when ready, else the reason. It is what /readyz calls.
type ReadyCheck func(ctx context.Context) error

// HTTPParams are the server's dependencies in the fx graph.
type HTTPParams struct {
	fx.In
	// Config is optional: without it, the defaults.
	Config  Config `optional:"true"`
	Queries *app.Queries
	// Ingester is optional: without it, POST /v1/events answers 501.
	Ingester *app.Ingester `optional:"true"`
	// Gatherer is optional: without it, /metrics is empty.
	Gatherer prometheus.Gatherer `optional:"true"`
	// Ready is optional: without it, /readyz is 200 while the server serves.
	Ready ReadyCheck `optional:"true"`
	// Registerer is optional: with it, the server's own metrics are registered.
	Registerer prometheus.Registerer `optional:"true"`
	Logger     *slog.Logger
}

// newFromParams is New for fx.
func newFromParams(p HTTPParams) (*Server, error) {
	s, err := New(p.Config, p.Queries, p.Ingester, p.Gatherer, p.Ready, p.Logger)
	if err != nil {
		return nil, err
	}
	if err := app.RegisterCollectors(p.Registerer, s.Collectors()...); err != nil {
		return nil, fmt.Errorf("register http metrics: %w", err)
	}
	return s, nil
}

func registerLifecycle(lc fx.Lifecycle, s *Server) {
	lc.Append(fx.StartStopHook(s.Start, s.Stop))
}
