package app

import (
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// OtherLabel is the label value that stands for every value outside a label's known
// set. Label values that come from input (a Status an agent wrote) are never used as
// they are: each distinct value would be a new series, and a value that is not valid
// UTF-8 makes the Prometheus client panic.
const OtherLabel = "other"

// SourceProjection is the source UnknownStatus counts for statuses seen while
// projecting the journal (items agents wrote straight to the journal included).
const SourceProjection = "projection"

// Sources of ingested objects (the source label of ingested_total, quarantined_total
// and unknown_status_events_total). A source is chosen by code, never by input.
const (
	SourceHTTP  = "http"
	SourceCLI   = "cli"
	SourceQueue = "queue"
)

// ingestSources are the sources whose counters start at zero. Other sources that code
// passes still count, under their own name.
var ingestSources = [...]string{SourceHTTP, SourceCLI, SourceQueue}

// quarantineSources are the quarantine sources known in advance: the ingest sources,
// the feeds (their subscribers' app.MetaSource) and the router's handlers.
var quarantineSources = [...]string{SourceHTTP, SourceCLI, SourceQueue, "sqs", "dynamodb-stream", "demo",
	HandlerIngest, HandlerProject}

// unknownStatusLogEvery is how often, per source, one unknown status is logged as a
// sample of what the counter counts.
const unknownStatusLogEvery = time.Minute

// Metrics are agentwatch's own Prometheus metrics. A nil *Metrics is valid and records
// nothing, so use cases stay usable without a registry. Every labelled counter starts
// at zero for each label value known in advance, so that rate() and increase() see the
// first event.
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

	// logger receives the samples of unknown statuses; see SetLogger.
	logger *slog.Logger
	now    func() time.Time

	mu         sync.Mutex
	sampled    map[string]time.Time // source -> when a sample was last logged
	suppressed map[string]int       // source -> unknown statuses since that sample
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
			Namespace: "agentwatch", Name: "unknown_status_events_total",
			Help: "Journal events with a Status agentwatch does not know (kept), by the path that saw them; " +
				"status is always \"other\" (the values themselves are sampled in the log).",
		}, []string{"source", "status"}),
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
		logger:     slog.Default(),
		now:        time.Now,
		sampled:    map[string]time.Time{},
		suppressed: map[string]int{},
	}
	for _, src := range ingestSources {
		for _, res := range [...]IngestStatus{IngestAccepted, IngestDuplicate, IngestRejected} {
			m.Ingested.WithLabelValues(src, string(res))
		}
		m.UnknownStatuses.WithLabelValues(src, OtherLabel)
	}
	m.UnknownStatuses.WithLabelValues(SourceProjection, OtherLabel)
	for _, src := range quarantineSources {
		m.Quarantined.WithLabelValues(src)
	}
	for _, k := range stuck.Kinds {
		m.AlertsRaised.WithLabelValues(string(k))
	}
	if err := RegisterCollectors(reg, m.Ingested, m.ProjectedEvents, m.ProjectedSessions, m.Conflicts,
		m.UnknownStatuses, m.Quarantined, m.AlertsRaised, m.AlertsDelivered, m.AlertFailures, m.OpenSessions, m.LiveLag, m.WatermarkLag); err != nil {
		return nil, err
	}
	return m, nil
}

// SetLogger sets where samples of unknown statuses are logged (default slog.Default()).
func (m *Metrics) SetLogger(l *slog.Logger) {
	if m != nil && l != nil {
		m.logger = l
	}
}

// InitSinks starts the delivery counters of the named alert sinks at zero.
func (m *Metrics) InitSinks(names ...string) {
	if m == nil {
		return
	}
	for _, n := range names {
		n = codeLabel(n)
		m.AlertsDelivered.WithLabelValues(n)
		m.AlertFailures.WithLabelValues(n)
	}
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
		m.Ingested.WithLabelValues(codeLabel(source), result).Inc()
	}
}

func (m *Metrics) quarantined(source string) {
	if m != nil {
		m.Quarantined.WithLabelValues(codeLabel(source)).Inc()
	}
}

// UnknownStatus counts one journal event whose Status agentwatch does not know, seen on
// the path source (SourceHTTP, SourceCLI, SourceQueue on ingest; SourceProjection while
// projecting, which also sees what agents wrote straight to the journal). The status is
// counted under the single label value "other", so that any number of distinct unknown
// statuses adds no series; one of them per source and minute is logged as a sample,
// with how many went unlogged since the previous sample. Known statuses are ignored.
func (m *Metrics) UnknownStatus(source string, st domain.Status) {
	if m == nil || st.Known() {
		return
	}
	source = codeLabel(source)
	m.UnknownStatuses.WithLabelValues(source, OtherLabel).Inc()

	m.mu.Lock()
	now := m.now()
	last, seen := m.sampled[source]
	if seen && now.Sub(last) < unknownStatusLogEvery {
		m.suppressed[source]++
		m.mu.Unlock()
		return
	}
	m.sampled[source] = now
	skipped := m.suppressed[source]
	m.suppressed[source] = 0
	m.mu.Unlock()
	m.logger.Warn("journal event with an unknown status (kept; counted as unknown_status_events_total{status=\"other\"})",
		"source", source, "status", SampleValue(string(st)), "statusBytes", len(st), "unloggedSincePreviousSample", skipped)
}

// maxLabelBytes bounds a label value that code chose (a source, a sink name).
const maxLabelBytes = 64

// codeLabel returns v when it can be a label value as it is: a short name of letters,
// digits, '-', '_' and '.', as code chooses them. Anything else becomes OtherLabel, so
// that a value that slipped in from input can neither panic the client nor grow the
// series.
func codeLabel(v string) string {
	if v == "" || len(v) > maxLabelBytes {
		return OtherLabel
	}
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return OtherLabel
		}
	}
	return v
}

// sampleBytes bounds a value quoted in a log line.
const sampleBytes = 64

// SampleValue renders an input value for a log line: valid UTF-8 (invalid bytes become
// U+FFFD) and at most 64 bytes, cut on a character boundary, with "..." when cut.
func SampleValue(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= sampleBytes {
		return s
	}
	cut := sampleBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
