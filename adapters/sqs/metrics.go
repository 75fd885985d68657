package sqs

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentwatch/agentwatch/app"
)

// Results of a handled message, the label values of Metrics.Messages.
const (
	resultDeleted  = "deleted"
	resultReleased = "released"
)

// Results of a visibility change, the label values of Metrics.VisibilityChanges.
const (
	resultExtended = "extended"
	resultDelayed  = "retry_delayed"
	resultReturned = "returned"
	resultFailed   = "failed"
)

// Metrics are the queue feed's Prometheus metrics. A nil *Metrics is valid and records
// nothing. Malformed messages are counted where they end up, in
// agentwatch_quarantined_total{source="sqs"}.
type Metrics struct {
	// Messages counts handled messages by result: deleted (acked: appended, or found
	// already appended, or quarantined) and released (nacked: received again later).
	Messages *prometheus.CounterVec
	// LastReceives counts messages released on their last receive that the redrive
	// policy allows: the queue moves each to the dead-letter queue.
	LastReceives prometheus.Counter
	// VisibilityChanges counts messages whose visibility was changed, by result:
	// extended (the heartbeat of a message waiting or being handled), retry_delayed (a
	// nacked message, invisible for Config.RetryDelay), returned (made visible at once
	// when the subscriber closed), failed.
	VisibilityChanges *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg (when not nil).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "agentwatch", Subsystem: "sqs", Name: "messages_total",
			Help: "Status-change messages handled, by result: deleted (done) or released (failed, received again after the visibility timeout).",
		}, []string{"result"}),
		LastReceives: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "agentwatch", Subsystem: "sqs", Name: "dead_lettered_total",
			Help: "Status-change messages that failed on their last allowed receive, which the queue's redrive policy moves to the dead-letter queue.",
		}),
	}
	m.VisibilityChanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "agentwatch", Subsystem: "sqs", Name: "visibility_changes_total",
		Help: "Status-change messages whose visibility timeout was changed, by result: extended (kept invisible while waiting or being handled), retry_delayed (nacked: received again after the retry delay), returned (made visible at once on shutdown), failed.",
	}, []string{"result"})
	m.Messages.WithLabelValues(resultDeleted)
	m.Messages.WithLabelValues(resultReleased)
	for _, r := range []string{resultExtended, resultDelayed, resultReturned, resultFailed} {
		m.VisibilityChanges.WithLabelValues(r)
	}
	if err := app.RegisterCollectors(reg, m.Messages, m.LastReceives, m.VisibilityChanges); err != nil {
		return nil, fmt.Errorf("register sqs metrics: %w", err)
	}
	return m, nil
}

func (m *Metrics) settled(result string) {
	if m != nil {
		m.Messages.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) visibilityChange(result string, n int) {
	if m != nil && n > 0 {
		m.VisibilityChanges.WithLabelValues(result).Add(float64(n))
	}
}

func (m *Metrics) lastReceive() {
	if m != nil {
		m.LastReceives.Inc()
	}
}

// DepthCollector is a Prometheus collector of the approximate message counts of the
// status-change queue and its dead-letter queue:
// agentwatch_sqs_queue_messages{queue="main"|"dlq", state="visible"|"in_flight"}. It
// reads them with GetQueueAttributes on each scrape (one call per queue, bounded by a
// timeout); a queue it cannot read is left out of that scrape, and logged.
type DepthCollector struct {
	client  *sqs.Client
	cfg     Config
	logger  *slog.Logger
	timeout time.Duration
	desc    *prometheus.Desc

	mu     sync.Mutex
	dlqURL string // resolved once from the redrive policy
}

var _ prometheus.Collector = (*DepthCollector)(nil)

// NewDepthCollector returns a collector of the depths of cfg.QueueURL and its
// dead-letter queue (cfg.DLQURL, or the redrive policy's).
func NewDepthCollector(client *sqs.Client, cfg Config, logger *slog.Logger) *DepthCollector {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &DepthCollector{
		client: client, cfg: cfg, logger: logger.With("component", "sqs-depth"), timeout: 2 * time.Second, dlqURL: cfg.DLQURL,
		desc: prometheus.NewDesc("agentwatch_sqs_queue_messages",
			"Approximate messages in the status-change queue (queue=main) and its dead-letter queue (queue=dlq), by state.",
			[]string{"queue", "state"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *DepthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *DepthCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	c.collect(ctx, ch, "main", c.cfg.QueueURL)
	if url := c.deadLetterURL(ctx); url != "" {
		c.collect(ctx, ch, "dlq", url)
	}
}

func (c *DepthCollector) collect(ctx context.Context, ch chan<- prometheus.Metric, queue, url string) {
	d, err := Depth(ctx, c.client, url)
	if err != nil {
		c.logger.DebugContext(ctx, "cannot read queue depth", "queue", url, "error", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(d.Visible), queue, "visible")
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(d.InFlight), queue, "in_flight")
}

func (c *DepthCollector) deadLetterURL(ctx context.Context) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dlqURL == "" {
		url, err := resolveDLQURL(ctx, c.client, &c.cfg)
		if err != nil {
			c.logger.DebugContext(ctx, "cannot find the dead-letter queue", "error", err)
			return ""
		}
		c.dlqURL = url
	}
	return c.dlqURL
}
