package sfn

import (
	"context"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/domain"
)

// Module provides the TagResolver as the domain.AgentNameResolver of AWS mode, with a
// Step Functions client from the SDK's standard configuration and its metrics
// registered in the graph's prometheus.Registerer. A supplied Config is optional
// (defaults otherwise).
var Module = fx.Module("sfn",
	fx.Provide(
		newFxClient,
		NewMetrics,
		fx.Annotate(newFxTagResolver, fx.As(new(domain.AgentNameResolver))),
	),
)

// TagResolverParams are the TagResolver's dependencies in the fx graph.
type TagResolverParams struct {
	fx.In
	Config  Config `optional:"true"`
	Client  *sfn.Client
	Metrics *Metrics
	Logger  *slog.Logger
}

func newFxTagResolver(p TagResolverParams) (*TagResolver, error) {
	return NewTagResolver(p.Config, p.Client, p.Metrics, p.Logger)
}

func newFxClient() (*sfn.Client, error) { return NewClient(context.Background()) }
