package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ProjectionBacklog says how many journal events wait to be projected.
type ProjectionBacklog interface {
	// Backlog returns how many journal events were appended and not yet projected.
	Backlog(ctx context.Context) (int64, error)
}

// DefaultMaxBacklog is the projection backlog above which ingest pushes back: about five
// seconds of the embedded projector's throughput on a small machine.
const DefaultMaxBacklog = 100_000

// BackpressureConfig configures when ingest pushes back.
type BackpressureConfig struct {
	// MaxBacklog is the projection backlog (events) above which ingest refuses new
	// bodies — POST /v1/events answers 429 with Retry-After, `agentwatch ingest` waits —
	// until the projector is back under it. 0: DefaultMaxBacklog; negative: never.
	MaxBacklog int64
	// Fresh is how long one reading of the backlog is trusted. Default 100ms.
	Fresh time.Duration
	// RetryAfter is what a refusal tells the client to wait. Default 1s.
	RetryAfter time.Duration
}

// SetDefaults fills zero fields.
func (c *BackpressureConfig) SetDefaults() {
	if c.MaxBacklog == 0 {
		c.MaxBacklog = DefaultMaxBacklog
	}
	if c.Fresh == 0 {
		c.Fresh = 100 * time.Millisecond
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = time.Second
	}
}

// BackpressureError refuses input while the projection backlog is over its bound. It is
// not the input's fault: the same input is welcome after RetryAfter.
type BackpressureError struct {
	Backlog, Bound int64
	RetryAfter     time.Duration
}

func (e *BackpressureError) Error() string {
	return fmt.Sprintf("the projector is behind: %d events wait to be projected, over the bound of %d; retry in %s",
		e.Backlog, e.Bound, e.RetryAfter)
}

// Backpressure admits ingest while the projection backlog is within its bound. It is
// safe for concurrent use; a nil *Backpressure admits everything.
type Backpressure struct {
	cfg     BackpressureConfig
	backlog ProjectionBacklog
	logger  *slog.Logger
	gauge   prometheus.Gauge

	mu      sync.Mutex
	last    int64
	readAt  time.Time
	refused bool
}

// NewBackpressure returns a gate over backlog. reg, when set, gets the gauges
// agentwatch_projection_backlog_events and agentwatch_projection_backlog_bound_events.
func NewBackpressure(cfg BackpressureConfig, backlog ProjectionBacklog, reg prometheus.Registerer, logger *slog.Logger) (*Backpressure, error) {
	cfg.SetDefaults()
	if backlog == nil {
		return nil, errors.New("backpressure: nil backlog")
	}
	b := &Backpressure{cfg: cfg, backlog: backlog, logger: logger,
		gauge: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "agentwatch", Name: "projection_backlog_events",
			Help: "Journal events appended and not yet projected (as last read)."})}
	bound := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "agentwatch", Name: "projection_backlog_bound_events",
		Help: "The projection backlog above which ingest pushes back (negative: never)."})
	bound.Set(float64(cfg.MaxBacklog))
	if err := RegisterCollectors(reg, b.gauge, bound); err != nil {
		return nil, fmt.Errorf("backpressure metrics: %w", err)
	}
	return b, nil
}

// Admit returns nil when new input may be ingested now, a *BackpressureError when the
// backlog is over its bound, or the error of reading the backlog (then it admits: a
// gate that cannot read its gauge must not stop ingest).
func (b *Backpressure) Admit(ctx context.Context) error {
	if b == nil || b.cfg.MaxBacklog < 0 {
		return nil
	}
	n, err := b.Read(ctx)
	if err != nil {
		b.logger.Warn("projection backlog unknown: ingest admitted", "error", err)
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	over := n > b.cfg.MaxBacklog
	if over != b.refused {
		b.refused = over
		if over {
			b.logger.Warn("ingest pushes back: the projection backlog is over its bound", "backlog", n, "bound", b.cfg.MaxBacklog)
		} else {
			b.logger.Info("ingest admits again: the projection backlog is back under its bound", "backlog", n, "bound", b.cfg.MaxBacklog)
		}
	}
	if over {
		return &BackpressureError{Backlog: n, Bound: b.cfg.MaxBacklog, RetryAfter: b.cfg.RetryAfter}
	}
	return nil
}

// Read returns the backlog, read again when the last reading is older than
// BackpressureConfig.Fresh.
func (b *Backpressure) Read(ctx context.Context) (int64, error) {
	b.mu.Lock()
	if !b.readAt.IsZero() && time.Since(b.readAt) < b.cfg.Fresh {
		n := b.last
		b.mu.Unlock()
		return n, nil
	}
	b.mu.Unlock()
	n, err := b.backlog.Backlog(ctx)
	if err != nil {
		return 0, err
	}
	b.mu.Lock()
	b.last, b.readAt = n, time.Now()
	b.mu.Unlock()
	b.gauge.Set(float64(n))
	return n, nil
}

// Watch reads the backlog every interval until ctx is done, so that the backlog gauge
// stays current while nothing is ingested.
func (b *Backpressure) Watch(ctx context.Context, interval time.Duration) {
	if b == nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := b.Read(ctx); err != nil && ctx.Err() == nil {
				b.logger.Debug("projection backlog not read", "error", err)
			}
		}
	}
}
