package sfn

import (
	"context"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/app"
)

// ExecutionSourceModule provides the ExecutionSource as the app.ExecutionSource of
// backfill and reconcile, with its metrics registered in the graph's
// prometheus.Registerer. It uses the graph's *sfn.Client when there is one (Module's,
// in AWS mode) and builds one from the SDK's standard configuration otherwise, so that
// the embedded backend can backfill from Step Functions too. A supplied SourceConfig is
// optional (defaults otherwise).
var ExecutionSourceModule = fx.Module("sfn-executions",
	fx.Provide(
		NewSourceMetrics,
		fx.Annotate(newFxExecutionSource, fx.As(new(app.ExecutionSource))),
	),
)

// ExecutionSourceParams are the ExecutionSource's dependencies in the fx graph.
type ExecutionSourceParams struct {
	fx.In
	Config  SourceConfig `optional:"true"`
	Client  *sfn.Client  `optional:"true"`
	Metrics *SourceMetrics
	Logger  *slog.Logger
}

func newFxExecutionSource(p ExecutionSourceParams) (*ExecutionSource, error) {
	client := p.Client
	if client == nil {
		var err error
		if client, err = NewClient(context.Background()); err != nil {
			return nil, err
		}
	}
	return NewExecutionSource(p.Config, client, p.Metrics, p.Logger)
}
