package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/app"
)

// Module provides the *Server and runs it with the fx app: OnStart listens (a bind
// error fails the start) and serves in the background; OnStop shuts down gracefully.
// It needs *app.Queries and *slog.Logger; Config, *app.Ingester, prometheus.Gatherer,
// ReadyCheck and the checks of the ReadinessGroup are optional (see HTTPParams).
var Module = fx.Module("httpapi",
	fx.Provide(newFromParams),
	fx.Invoke(registerLifecycle),
)

// ReadyCheck reports whether the process is ready to serve (the stores answer, the
// projector caught up...): nil when ready, else the reason. It is what /readyz calls.
type ReadyCheck func(ctx context.Context) error

// ReadinessGroup is the fx value group of further ReadyChecks: modules add their own
// (the stream feed: a stalled shard) with fx.ResultTags(`group:"readiness"`), and
// /readyz fails with the reasons of every check that fails.
const ReadinessGroup = "readiness"

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
	// Checks are further readiness checks, run after Ready.
	Checks []ReadyCheck `group:"readiness"`
	// Registerer is optional: with it, the server's own metrics are registered.
	Registerer prometheus.Registerer `optional:"true"`
	Logger     *slog.Logger
}

// newFromParams is New for fx.
func newFromParams(p HTTPParams) (*Server, error) {
	s, err := New(p.Config, p.Queries, p.Ingester, p.Gatherer, allReady(p.Ready, p.Checks), p.Logger)
	if err != nil {
		return nil, err
	}
	if err := app.RegisterCollectors(p.Registerer, s.Collectors()...); err != nil {
		return nil, fmt.Errorf("register http metrics: %w", err)
	}
	return s, nil
}

// allReady is one check of ready and the group's checks: nil when all pass, else every
// failure joined. nil when there is no check at all.
func allReady(ready ReadyCheck, group []ReadyCheck) ReadyCheck {
	var checks []ReadyCheck
	if ready != nil {
		checks = append(checks, ready)
	}
	for _, c := range group {
		if c != nil {
			checks = append(checks, c)
		}
	}
	switch len(checks) {
	case 0:
		return nil
	case 1:
		return checks[0]
	}
	return func(ctx context.Context) error {
		var errs []error
		for _, c := range checks {
			if err := c(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
}

func registerLifecycle(lc fx.Lifecycle, s *Server) {
	lc.Append(fx.StartStopHook(s.Start, s.Stop))
}
