package app

import (
	"github.com/agentwatch/agentwatch/domain"
)

// Config is the use cases' configuration, assembled by cmd from flags and environment.
type Config struct {
	// Mapping says where session ids and agent names come from in execution input.
	Mapping domain.MappingConfig
	// Router configures retries and the poison queue.
	Router RouterConfig
	// Detector configures the stuck-session detector.
	Detector DetectorConfig
	// CheckpointName names the journal feed's checkpoint (single-sequence feeds).
	CheckpointName string
	// Backpressure says when ingest pushes back on a projector that is behind.
	Backpressure BackpressureConfig
}

// SetDefaults fills zero fields.
func (c *Config) SetDefaults() {
	c.Mapping.SetDefaults()
	c.Router.SetDefaults()
	c.Detector.SetDefaults()
	c.Backpressure.SetDefaults()
	if c.CheckpointName == "" {
		c.CheckpointName = HandlerProject
	}
}
