package app

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are agentwatch's own Prometheus metrics. A nil *Metrics is valid and records
// nothing, so use cases stay usable without a registry.
type Metrics struct {
	Ingested          *prometheus.CounterVec
	ProjectedEvents   prometheus.Counter
	ProjectedSessions prometheus.Counter
	Conflicts         prometheus.Counter
	UnknownStatuses   *prometheus.CounterVec
	Quarantined       *prometheus.CounterVec
	AlertsRaised      *prometheus.CounterVec
	AlertsDelivered   *prometheus.CounterVec
	AlertFailures     *prometheus.CounterVec
	OpenSessions      prometheus.Gauge
	LiveLag           prometheus.Histogram
	WatermarkLag      prometheus.Gauge
}

// NewMetrics creates the metrics and registers them with reg (when not nil).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Ingested: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "agentwatch", Name: "ingested_total",
			Help: "Inputs ingested, by source and result (accepted, duplicate, rejected).",
		}, []string{"source", "result"}),
		ProjectedEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "agentwatch", Name: "projected_events_total", Help: "Journal events projected.",
		}),
		ProjectedSessions: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "agentwatch", Name: "projected_session_writes_total", Help: "Session aggregates written by the projector.",
		}),
		Conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "agentwatch", Name: "projection_conflicts_total", Help: "Projection commits retried after a version conflict.",
		}),
		UnknownStatuses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "agentwatch", Name: "unknown_status_events_total", Help: "Journal events with a Status agentwatch does not know (kept).",
		}, []string{"status"}),
		Quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "agentwatch", Name: "quarantined_total", Help: "Poison inputs set aside, by source.",
		}, []string{"source"}),
		AlertsRaised: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "agentwatch", Name: "alerts_raised_total", Help: "Alerts decided, by kind.",
		}, []string{"kind"}),
		AlertsDelivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "agentwatch", Name: "alerts_delivered_total", Help: "Alerts delivered, by sink.",
		}, []string{"sink"}),
		AlertFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "agentwatch", Name: "alert_delivery_failures_total", Help: "Failed alert deliveries, by sink.",
		}, []string{"sink"}),
		OpenSessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "agentwatch", Name: "detector_due_entries", Help: "Entries the stuck detector evaluated in its last tick.",
		}),
		WatermarkLag: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "agentwatch", Name: "detector_watermark_lag_seconds",
			Help: "How far the projection watermark that the stuck detector judges deadlines at is behind the clock.",
		}),
		LiveLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "agentwatch", Name: "projection_lag_seconds",
			Help:    "Time from a journal event's append to its projection commit.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
	}
	if err := RegisterCollectors(reg, m.Ingested, m.ProjectedEvents, m.ProjectedSessions, m.Conflicts,
		m.UnknownStatuses, m.Quarantined, m.AlertsRaised, m.AlertsDelivered, m.AlertFailures, m.OpenSessions, m.LiveLag, m.WatermarkLag); err != nil {
		return nil, err
	}
	return m, nil
}

// RegisterCollectors registers cs with reg, stopping at the first that fails; a nil
// reg registers nothing (metrics that are kept but not exported).
func RegisterCollectors(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (m *Metrics) projected(events, sessions int) {
	if m == nil {
		return
	}
	m.ProjectedEvents.Add(float64(events))
	m.ProjectedSessions.Add(float64(sessions))
}

func (m *Metrics) conflict() {
	if m != nil {
		m.Conflicts.Inc()
	}
}

func (m *Metrics) ingested(source, result string) {
	if m != nil {
		m.Ingested.WithLabelValues(source, result).Inc()
	}
}

func (m *Metrics) quarantined(source string) {
	if m != nil {
		m.Quarantined.WithLabelValues(source).Inc()
	}
}

func (m *Metrics) unknownStatus(s string) {
	if m != nil {
		if len(s) > 64 {
			s = s[:64]
		}
		m.UnknownStatuses.WithLabelValues(s).Inc()
	}
}
