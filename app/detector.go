package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
	"github.com/agentwatch/agentwatch/projections/agentstats"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// AlertSink delivers alerts somewhere people look. Send must be safe for concurrent use
// and should be idempotent for a given (SessionID, Kind): after a crash between sending
// and recording the send, the same alert is sent again, and receivers can deduplicate
// on that pair.
type AlertSink interface {
	Name() string
	Send(ctx context.Context, a Alert) error
}

// DetectorConfig configures the stuck-session detector.
type DetectorConfig struct {
	// Interval between evaluations.
	Interval time.Duration
	// Stuck holds the stage deadlines and the completion grace period.
	Stuck stuck.Config
	// BatchLimit caps the entries evaluated per tick.
	BatchLimit int
	// BaseURL, if set, makes alerts carry a link to the session's page.
	BaseURL string
	// MaxDeliveryAttempts before an alert is left pending and only logged.
	MaxDeliveryAttempts int
	// AdaptiveRefresh is how often adaptive deadlines are recomputed from the stats.
	AdaptiveRefresh time.Duration
	// AdaptiveWindow is how far back the stats that adaptive deadlines read go.
	AdaptiveWindow time.Duration
}

// SetDefaults fills zero fields.
func (c *DetectorConfig) SetDefaults() {
	if c.Interval == 0 {
		c.Interval = 5 * time.Second
	}
	if c.Stuck.Timeouts == nil {
		c.Stuck = stuck.DefaultConfig()
	}
	if c.BatchLimit == 0 {
		c.BatchLimit = 1000
	}
	if c.MaxDeliveryAttempts == 0 {
		c.MaxDeliveryAttempts = 10
	}
	if c.AdaptiveRefresh == 0 {
		c.AdaptiveRefresh = 5 * time.Minute
	}
	if c.AdaptiveWindow == 0 {
		c.AdaptiveWindow = 7 * 24 * time.Hour
	}
	c.Stuck.Adaptive.SetDefaults()
}

// Detector evaluates due detector entries against the clock, records alerts in the
// outbox exactly once per session and kind, and delivers pending alerts to the sinks.
type Detector struct {
	cfg      DetectorConfig
	entries  StuckStore
	alerts   AlertStore
	sessions SessionLoader
	sinks    []AlertSink
	stats    StatsReader
	wm       ProjectionWatermark
	adapted  time.Time
	logger   *slog.Logger
	metrics  *Metrics
	now      func() time.Time

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// NewDetector returns a detector. sessions is used to attach a diagnosis to alerts.
func NewDetector(cfg DetectorConfig, entries StuckStore, alerts AlertStore, sessions SessionLoader,
	sinks []AlertSink, logger *slog.Logger, metrics *Metrics) *Detector {
	cfg.SetDefaults()
	return &Detector{cfg: cfg, entries: entries, alerts: alerts, sessions: sessions, sinks: sinks,
		logger: logger, metrics: metrics, now: time.Now, stop: make(chan struct{}), done: make(chan struct{})}
}

// UseStats lets the detector derive adaptive deadlines from the agents' stage
// durations (when DetectorConfig.Stuck.Adaptive.Enabled).
func (d *Detector) UseStats(stats StatsReader) { d.stats = stats }

// UseWatermark makes the detector judge deadlines against the projection watermark as
// well as the clock: a deadline counts as passed only once it is before both, so a
// projector that is behind delays alerts instead of inventing them (an event that would
// have kept the session alive may be waiting in the backlog). nil: the clock alone.
func (d *Detector) UseWatermark(wm ProjectionWatermark) { d.wm = wm }

// judgedAt is the instant deadlines are judged at: the earlier of now and the
// projection watermark. ok is false when the watermark is unknown (nothing projected
// yet, or it could not be read): then nothing may be judged.
func (d *Detector) judgedAt(ctx context.Context, now time.Time) (at time.Time, ok bool) {
	if d.wm == nil {
		return now, true
	}
	w, err := d.wm.Watermark(ctx)
	if err != nil {
		d.logger.Warn("stuck detector: projection watermark unknown; deadlines not judged this tick", "error", err)
		return time.Time{}, false
	}
	if w.IsZero() {
		return time.Time{}, false
	}
	if d.metrics != nil {
		d.metrics.WatermarkLag.Set(max(0, now.Sub(w).Seconds()))
	}
	if w.Before(now) {
		return w, true
	}
	return now, true
}

// refreshAdaptive recomputes the adaptive deadlines when they are due.
func (d *Detector) refreshAdaptive(ctx context.Context, now time.Time) error {
	if !d.cfg.Stuck.Adaptive.Enabled || d.stats == nil || now.Sub(d.adapted) < d.cfg.AdaptiveRefresh {
		return nil
	}
	buckets, err := d.stats.Stats(ctx, StatsQuery{Granularity: agentstats.DayPrefix, From: now.Add(-d.cfg.AdaptiveWindow)})
	if err != nil {
		return fmt.Errorf("stats for adaptive deadlines: %w", err)
	}
	totals := map[string]agentstats.Counters{}
	for _, b := range buckets {
		if totals[b.Agent] == nil {
			totals[b.Agent] = agentstats.Counters{}
		}
		agentstats.Merge(totals[b.Agent], b.Counters)
	}
	observed := map[string]map[domain.Stage]stuck.StageP99{}
	for agent, cs := range totals {
		st := agentstats.StatsOf(agent, "", cs)
		m := map[domain.Stage]stuck.StageP99{}
		for name, q := range st.Stages {
			m[domain.Stage(name)] = stuck.StageP99{Count: q.Count, P99: time.Duration(q.P99 * float64(time.Second))}
		}
		observed[agent] = m
	}
	d.cfg.Stuck.Adapted = d.cfg.Stuck.Adaptive.AdaptedTimeouts(observed)
	d.adapted = now
	return nil
}

// SetClock replaces the clock (tests drive the detector on a fake clock).
func (d *Detector) SetClock(now func() time.Time) { d.now = now }

// Start runs the detector loop in the background; it never blocks.
func (d *Detector) Start(context.Context) error {
	go d.loop()
	return nil
}

// Stop ends the loop and waits for the current tick to finish.
func (d *Detector) Stop(ctx context.Context) error {
	d.stopOnce.Do(func() { close(d.stop) })
	select {
	case <-d.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *Detector) loop() {
	defer close(d.done)
	t := time.NewTicker(d.cfg.Interval)
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-d.stop
		cancel()
	}()
	for {
		if err := d.Tick(ctx); err != nil && ctx.Err() == nil {
			d.logger.Error("stuck detector tick", "error", err)
		}
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
	}
}

// Tick evaluates every due entry once, then delivers pending alerts.
func (d *Detector) Tick(ctx context.Context) error {
	now := d.now()
	if err := d.refreshAdaptive(ctx, now); err != nil {
		d.logger.Warn("adaptive deadlines not refreshed", "error", err)
	}
	var errs []error
	if at, ok := d.judgedAt(ctx, now); ok {
		due, err := d.entries.DueEntries(ctx, at.UnixMilli(), d.cfg.BatchLimit)
		if err != nil {
			return fmt.Errorf("due entries: %w", err)
		}
		if d.metrics != nil {
			d.metrics.OpenSessions.Set(float64(len(due)))
		}
		moves := make([]projections.Move, 0, len(due))
		for _, de := range due {
			mv, err := d.evaluate(ctx, de, at, now)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			moves = append(moves, mv)
		}
		// One write for the whole tick; an entry a commit rewrote meanwhile is skipped
		// (it is due again, as the commit scheduled it).
		if len(moves) > 0 {
			if _, err := d.entries.Reschedule(ctx, moves); err != nil {
				errs = append(errs, fmt.Errorf("reschedule: %w", err))
			}
		}
	}
	if err := d.Deliver(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// evaluate judges one entry at at (deadlines), records what it finds at now, and
// returns where the entry is to be scheduled next.
func (d *Detector) evaluate(ctx context.Context, de DueEntry, at, now time.Time) (projections.Move, error) {
	e := &de.Entry
	mv := projections.Move{Key: e.SessionID, Prev: de.NextCheckMs}
	raised, open, err := d.alerts.SessionAlerts(ctx, e.SessionID)
	if err != nil {
		return mv, fmt.Errorf("alerts of %s: %w", e.SessionID, err)
	}
	findings, next := stuck.Evaluate(e, raised, open, at, &d.cfg.Stuck)
	var diag *domain.Diagnosis
	for _, f := range findings {
		if diag == nil {
			diag = d.diagnose(ctx, e.SessionID)
		}
		a := d.alertOf(f, *diag, now)
		if f.Kind == stuck.KindRecovered {
			if err := d.alerts.Resolve(ctx, e.SessionID, f.Resolves, now); err != nil {
				return mv, fmt.Errorf("resolve alerts of %s: %w", e.SessionID, err)
			}
		}
		switch err := d.alerts.InsertAlert(ctx, a); {
		case errors.Is(err, domain.ErrDuplicate):
		case err != nil:
			return mv, fmt.Errorf("record %s alert of %s: %w", f.Kind, e.SessionID, err)
		default:
			if d.metrics != nil {
				d.metrics.AlertsRaised.WithLabelValues(string(f.Kind)).Inc()
			}
			d.logger.Info("alert raised", "session", e.SessionID, "kind", f.Kind, "agent", e.Agent,
				"stage", e.Stage, "overdue", f.OverdueBy.Round(time.Second).String())
		}
	}
	if e.Closed && next == stuck.Never {
		mv.Delete = true
	} else {
		mv.Next = next
	}
	return mv, nil
}

func (d *Detector) diagnose(ctx context.Context, id string) *domain.Diagnosis {
	var diag domain.Diagnosis
	if d.sessions != nil {
		if m, err := d.sessions.LoadSessions(ctx, []string{id}); err == nil {
			if v, ok := m[id]; ok {
				diag = v.Session.Diagnose()
			}
		}
	}
	return &diag
}

func (d *Detector) alertOf(f stuck.Finding, diag domain.Diagnosis, now time.Time) Alert {
	a := Alert{SessionID: f.SessionID, Kind: f.Kind, AgentName: f.Agent, ExecutionArn: f.ExecutionArn,
		Stage: f.Stage, LastStatus: f.LastStatus, LastEventAt: f.LastEventAt, Diagnosis: diag,
		RaisedAt: now.UTC(), State: AlertPending}
	if f.OverdueBy > 0 {
		a.OverdueBy = f.OverdueBy.Round(time.Second).String()
	}
	if d.cfg.BaseURL != "" {
		a.Link = d.cfg.BaseURL + "/?session=" + url.QueryEscape(f.SessionID)
	}
	return a
}

// Deliver sends every pending alert to every sink and marks it sent once all took it.
// An alert a sink refused stays pending and is retried on the next tick.
func (d *Detector) Deliver(ctx context.Context) error {
	pending, err := d.alerts.PendingAlerts(ctx, d.cfg.BatchLimit)
	if err != nil {
		return fmt.Errorf("pending alerts: %w", err)
	}
	var errs []error
	for _, a := range pending {
		ok := true
		for _, s := range d.sinks {
			if err := s.Send(ctx, a); err != nil {
				ok = false
				if d.metrics != nil {
					d.metrics.AlertFailures.WithLabelValues(s.Name()).Inc()
				}
				errs = append(errs, fmt.Errorf("send %s alert of %s to %s: %w", a.Kind, a.SessionID, s.Name(), err))
				continue
			}
			if d.metrics != nil {
				d.metrics.AlertsDelivered.WithLabelValues(s.Name()).Inc()
			}
		}
		if !ok {
			continue
		}
		if err := d.alerts.MarkSent(ctx, a.SessionID, a.Kind); err != nil {
			errs = append(errs, fmt.Errorf("mark %s alert of %s sent: %w", a.Kind, a.SessionID, err))
		}
	}
	return errors.Join(errs...)
}
