package app

import (
	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/projections"
	"github.com/agentwatch/agentwatch/projections/agentstats"
	"github.com/agentwatch/agentwatch/projections/executionindex"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// builtinReadModels are agentwatch's read models. Adding one is a package under
// projections/ and a line here; everything else — stores, rebuild, generations, the
// listings — iterates over what is registered.
func builtinReadModels(cfg Config) []projections.ReadModel {
	cfg.SetDefaults()
	return []projections.ReadModel{
		executionindex.New(),
		agentstats.New(),
		stuck.New(cfg.Detector.Stuck),
	}
}

// ReadModelsModule registers the built-in read models in the "read_models" value group
// and provides the Registry of every read model in it (other modules may add theirs).
var ReadModelsModule = fx.Module("read-models",
	fx.Provide(
		fx.Annotate(builtinReadModels, fx.ResultTags(`group:"read_models,flatten"`)),
		fx.Annotate(registryOf, fx.ParamTags(`group:"read_models"`)),
	),
)

func registryOf(models []projections.ReadModel) (*projections.Registry, error) {
	return projections.NewRegistry(models...)
}

// NewRegistry registers the built-in read models, for use without fx.
func NewRegistry(cfg Config) (*projections.Registry, error) {
	return projections.NewRegistry(builtinReadModels(cfg)...)
}
