package sfn

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentwatch/agentwatch/app"
)

// SourceMetrics are the ExecutionSource's Prometheus metrics. A nil *SourceMetrics is
// valid and records nothing.
type SourceMetrics struct {
	// Calls counts Step Functions calls by operation (ListExecutions,
	// DescribeExecution) and result (ok, failed), retries included in one call.
	Calls *prometheus.CounterVec
	// RateLimitWait is the time calls waited for the rate limiter.
	RateLimitWait prometheus.Counter
}

// NewSourceMetrics creates the metrics and registers them with reg (when not nil).
func NewSourceMetrics(reg prometheus.Registerer) (*SourceMetrics, error) {
	m := &SourceMetrics{
		Calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "agentwatch", Subsystem: "sfn", Name: "execution_calls_total",
			Help: "Step Functions calls of backfill and reconcile, by operation and result (ok, failed).",
		}, []string{"operation", "result"}),
		RateLimitWait: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "agentwatch", Subsystem: "sfn", Name: "rate_limit_wait_seconds_total",
			Help: "Time Step Functions calls of backfill and reconcile waited for the client-side rate limit.",
		}),
	}
	for _, op := range []string{opListExecutions, opDescribeExecution} {
		for _, r := range []string{"ok", "failed"} {
			m.Calls.WithLabelValues(op, r)
		}
	}
	if err := app.RegisterCollectors(reg, m.Calls, m.RateLimitWait); err != nil {
		return nil, fmt.Errorf("register sfn execution metrics: %w", err)
	}
	return m, nil
}

func (m *SourceMetrics) call(op string, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "failed"
	}
	m.Calls.WithLabelValues(op, result).Inc()
}

func (m *SourceMetrics) waited(d time.Duration) {
	if m != nil && d > 0 {
		m.RateLimitWait.Add(d.Seconds())
	}
}
