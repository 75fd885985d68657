package sfn

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentwatch/agentwatch/app"
)

// Metrics are the TagResolver's Prometheus metrics. A nil *Metrics is valid and records
// nothing.
type Metrics struct {
	// Lookups counts ListTagsForResource calls by result: tagged, untagged, not_found
	// (the state machine is gone) and failed.
	Lookups *prometheus.CounterVec
	// CacheHits counts resolutions answered from the cache.
	CacheHits prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (when not nil).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "agentwatch", Subsystem: "sfn", Name: "tag_lookups_total",
			Help: "State-machine tag lookups (ListTagsForResource), by result: tagged, untagged, not_found, failed.",
		}, []string{"result"}),
		CacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "agentwatch", Subsystem: "sfn", Name: "tag_cache_hits_total",
			Help: "Agent-name resolutions answered from the tag cache.",
		}),
	}
	for _, r := range []string{resultTagged, resultUntagged, resultNotFound, resultFailed} {
		m.Lookups.WithLabelValues(r) // export zeros, so that alerts on failures see a series
	}
	if err := app.RegisterCollectors(reg, m.Lookups, m.CacheHits); err != nil {
		return nil, fmt.Errorf("register sfn metrics: %w", err)
	}
	return m, nil
}

func (m *Metrics) lookup(result string) {
	if m != nil {
		m.Lookups.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) cacheHit() {
	if m != nil {
		m.CacheHits.Inc()
	}
}
