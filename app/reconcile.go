package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/executionindex"
)

// This file holds the Reconciler: a periodic sweep of the Step Functions API that
// journals the status changes EventBridge dropped (its delivery is best-effort), with
// the events the EventBridge feed would have journaled (see backfill.go).

// ReconcileConfig configures the Reconciler.
type ReconcileConfig struct {
	// StateMachineArns are the state machines swept; required.
	StateMachineArns []string
	// Interval is the time between two sweeps. Default 15 minutes.
	Interval time.Duration
	// Window is how far back a sweep looks: executions that started within it are
	// listed. Default 24 hours.
	Window time.Duration
	// Grace leaves to EventBridge the executions whose status changed within it: their
	// events are most likely on their way. The next sweep looks at them. Default 2
	// minutes.
	Grace time.Duration
	// OpenLookback is how far back beyond Window a sweep looks for executions that the
	// index still shows RUNNING, and describes each: a long execution's dropped end is
	// otherwise never caught (and would raise a false stuck alert). Default 7 days; a
	// negative value turns it off.
	OpenLookback time.Duration
}

// SetDefaults fills the fields left zero.
func (c *ReconcileConfig) SetDefaults() {
	if c.Interval == 0 {
		c.Interval = 15 * time.Minute
	}
	if c.Window == 0 {
		c.Window = 24 * time.Hour
	}
	if c.Grace == 0 {
		c.Grace = 2 * time.Minute
	}
	if c.OpenLookback == 0 {
		c.OpenLookback = 7 * 24 * time.Hour
	}
}

// Validate reports every invalid field.
func (c *ReconcileConfig) Validate() error {
	var errs []error
	if len(c.StateMachineArns) == 0 {
		errs = append(errs, errors.New("reconcile: StateMachineArns is empty"))
	}
	for i, arn := range c.StateMachineArns {
		if strings.TrimSpace(arn) == "" {
			errs = append(errs, fmt.Errorf("reconcile: StateMachineArns[%d] is blank", i))
		}
	}
	if c.Interval <= 0 {
		errs = append(errs, fmt.Errorf("reconcile: Interval must be positive, is %s", c.Interval))
	}
	if c.Window <= 0 {
		errs = append(errs, fmt.Errorf("reconcile: Window must be positive, is %s", c.Window))
	}
	if c.Grace < 0 {
		errs = append(errs, fmt.Errorf("reconcile: Grace must not be negative, is %s", c.Grace))
	}
	return errors.Join(errs...)
}

// ReconcileCheckpointName is the checkpoint that holds when the state machine was last
// swept, so that several workers running the sweep share the work.
func ReconcileCheckpointName(stateMachineArn string) string {
	return "reconcile/" + stateMachineArn
}

// ReconcileReport counts what one sweep did.
type ReconcileReport struct {
	// Executions counts the executions listed.
	Executions int `json:"executions"`
	// InIndex counts those the index already shows in their current status and
	// attempt: not described.
	InIndex int `json:"inIndex"`
	// Settling counts those whose status changed within Grace: left to EventBridge.
	Settling int `json:"settling"`
	// Open counts the executions started before Window, within OpenLookback, that the
	// index shows RUNNING: each is described.
	Open int `json:"open"`
	// Described counts DescribeExecution calls.
	Described int `json:"described"`
	// Appended counts the status changes the journal lacked; Duplicates those it had.
	Appended   int `json:"appended"`
	Duplicates int `json:"duplicates"`
	Rejected   int `json:"rejected"`
	// Skipped counts the state machines another worker swept within half an Interval.
	Skipped int `json:"skipped"`
}

func (r *ReconcileReport) add(o ReconcileReport) {
	r.Executions += o.Executions
	r.InIndex += o.InIndex
	r.Settling += o.Settling
	r.Open += o.Open
	r.Described += o.Described
	r.Appended += o.Appended
	r.Duplicates += o.Duplicates
	r.Rejected += o.Rejected
	r.Skipped += o.Skipped
}

// ReconcileMetrics are the Reconciler's Prometheus metrics. A nil *ReconcileMetrics is
// valid and records nothing.
type ReconcileMetrics struct {
	// Sweeps counts state-machine sweeps by result: ok, failed, skipped.
	Sweeps *prometheus.CounterVec
	// Appended counts the status changes a sweep found missing from the journal: events
	// EventBridge dropped (or had not delivered within Grace).
	Appended prometheus.Counter
	// Described counts the executions a sweep described.
	Described prometheus.Counter
	// LastSuccess is when a sweep of every state machine last succeeded (Unix seconds).
	LastSuccess prometheus.Gauge
}

// NewReconcileMetrics creates the metrics and registers them with reg (when not nil).
func NewReconcileMetrics(reg prometheus.Registerer) (*ReconcileMetrics, error) {
	m := &ReconcileMetrics{
		Sweeps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "agentwatch", Subsystem: "reconcile", Name: "sweeps_total",
			Help: "State-machine sweeps of the reconciler, by result: ok, failed, skipped (swept by another worker).",
		}, []string{"result"}),
		Appended: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "agentwatch", Subsystem: "reconcile", Name: "appended_total",
			Help: "Status changes the reconciler found missing from the journal and appended (dropped by EventBridge).",
		}),
		Described: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "agentwatch", Subsystem: "reconcile", Name: "described_total",
			Help: "Executions the reconciler described because the index did not show their current status.",
		}),
		LastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "agentwatch", Subsystem: "reconcile", Name: "last_success_timestamp_seconds",
			Help: "When a sweep of every state machine last succeeded.",
		}),
	}
	for _, r := range []string{"ok", "failed", "skipped"} {
		m.Sweeps.WithLabelValues(r)
	}
	if err := RegisterCollectors(reg, m.Sweeps, m.Appended, m.Described, m.LastSuccess); err != nil {
		return nil, fmt.Errorf("register reconcile metrics: %w", err)
	}
	return m, nil
}

func (m *ReconcileMetrics) swept(result string, rep ReconcileReport) {
	if m == nil {
		return
	}
	m.Sweeps.WithLabelValues(result).Inc()
	m.Appended.Add(float64(rep.Appended))
	m.Described.Add(float64(rep.Described))
}

// Reconciler periodically journals the status changes that EventBridge dropped. Every
// Interval, for each state machine, it lists the executions that started within
// Window; those the index already shows in their current status and attempt (status
// and redrive count) are skipped without a DescribeExecution call; the others are
// described and their status changes appended like the Backfiller's. The journal keeps
// what it has (duplicates), so the sweep needs no state of its own beyond when it last
// ran.
//
// Executions that started before Window but within OpenLookback and that the index
// still shows RUNNING are described too: their end may have been dropped.
//
// What it cannot catch: a change of an execution that started before Window that the
// index does not show RUNNING (run `agentwatch backfill --since`), and a lost RUNNING of
// an execution whose terminal status arrived (the index shows it complete; backfill
// recovers it).
//
// With several workers, each sweeps, but a state machine swept by any of them within
// half an Interval is skipped (ReconcileCheckpointName); a race costs duplicate API
// calls, never a wrong journal.
type Reconciler struct {
	cfg         ReconcileConfig
	source      ExecutionSource
	journal     JournalAppender
	index       executionindex.Reader
	checkpoints CheckpointStore
	resolver    domain.AgentNameResolver
	mapping     domain.MappingConfig
	logger      *slog.Logger
	metrics     *ReconcileMetrics
	now         func() time.Time

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// NewReconciler returns a reconciler. resolver and metrics may be nil.
func NewReconciler(cfg ReconcileConfig, source ExecutionSource, journal JournalAppender, index executionindex.Reader,
	checkpoints CheckpointStore, resolver domain.AgentNameResolver, mapping domain.MappingConfig,
	logger *slog.Logger, metrics *ReconcileMetrics) (*Reconciler, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if source == nil || journal == nil || index == nil || checkpoints == nil {
		return nil, errors.New("reconcile: needs an execution source, a journal, the execution index and a checkpoint store")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	mapping.SetDefaults()
	return &Reconciler{cfg: cfg, source: source, journal: journal, index: index, checkpoints: checkpoints,
		resolver: resolver, mapping: mapping, logger: logger.With("component", "reconcile"), metrics: metrics,
		now: time.Now, stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// SetClock replaces the clock (tests).
func (r *Reconciler) SetClock(now func() time.Time) { r.now = now }

// Start runs a sweep every Interval, the first one Interval after Start, until Stop.
// It does not block.
func (r *Reconciler) Start(context.Context) error {
	go r.loop()
	return nil
}

// Stop ends the loop, cancelling a sweep in progress (appends are idempotent: the next
// sweep redoes its part), and waits for it until ctx is done. It is idempotent.
func (r *Reconciler) Stop(ctx context.Context) error {
	r.stopOnce.Do(func() { close(r.stop) })
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop reconciler: %w", ctx.Err())
	}
}

func (r *Reconciler) loop() {
	defer close(r.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-r.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rep, err := r.Sweep(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			r.logger.ErrorContext(ctx, "reconcile sweep failed; the next one retries", "error", err)
		case rep.Appended > 0:
			r.logger.WarnContext(ctx, "reconcile sweep appended status changes missing from the journal",
				"appended", rep.Appended, "described", rep.Described, "executions", rep.Executions)
		default:
			r.logger.InfoContext(ctx, "reconcile sweep found the journal complete",
				"executions", rep.Executions, "described", rep.Described)
		}
	}
}

// Sweep sweeps every state machine once. A state machine that fails does not keep the
// others from being swept; the errors are joined.
func (r *Reconciler) Sweep(ctx context.Context) (ReconcileReport, error) {
	var total ReconcileReport
	var errs []error
	for _, arn := range r.cfg.StateMachineArns {
		rep, err := r.sweepOne(ctx, arn)
		total.add(rep)
		switch {
		case err != nil:
			r.metrics.swept("failed", rep)
			errs = append(errs, err)
			if ctx.Err() != nil {
				return total, errors.Join(errs...)
			}
		case rep.Skipped > 0:
			r.metrics.swept("skipped", rep)
		default:
			r.metrics.swept("ok", rep)
		}
	}
	if len(errs) == 0 && r.metrics != nil {
		r.metrics.LastSuccess.Set(float64(r.now().Unix()))
	}
	return total, errors.Join(errs...)
}

// sweepOne sweeps one state machine.
func (r *Reconciler) sweepOne(ctx context.Context, smArn string) (ReconcileReport, error) {
	var rep ReconcileReport
	now := r.now()
	name := ReconcileCheckpointName(smArn)
	last, err := r.checkpoints.GetCheckpoint(ctx, name)
	if err != nil {
		return rep, fmt.Errorf("reconcile %s: read last sweep: %w", smArn, err)
	}
	if t, perr := time.Parse(time.RFC3339Nano, last); perr == nil && now.Sub(t) < r.cfg.Interval/2 && !now.Before(t) {
		rep.Skipped = 1
		return rep, nil
	}
	settled := now.Add(-r.cfg.Grace)
	q := ExecutionListQuery{StateMachineArn: smArn, Since: now.Add(-r.cfg.Window)}
	err = r.source.ListExecutions(ctx, q, func(page []ExecutionSummary) error {
		for i := range page {
			s := &page[i]
			rep.Executions++
			if s.LastChange().After(settled) {
				rep.Settling++
				continue
			}
			indexed, err := r.indexed(ctx, s)
			if err != nil {
				return err
			}
			if indexed {
				rep.InIndex++
				continue
			}
			if err := r.reconcileOne(ctx, s, &rep); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && r.cfg.OpenLookback > 0 {
		err = r.sweepOpen(ctx, smArn, now, &rep)
	}
	if err != nil {
		return rep, fmt.Errorf("reconcile %s: %w", smArn, err)
	}
	if err := r.checkpoints.SetCheckpoint(ctx, name, now.UTC().Format(time.RFC3339Nano)); err != nil {
		return rep, fmt.Errorf("reconcile %s: store last sweep: %w", smArn, err)
	}
	return rep, nil
}

// sweepOpen describes the executions of the state machine that started before the
// window, within OpenLookback, and that the index shows RUNNING, and appends what the
// journal lacks of them.
func (r *Reconciler) sweepOpen(ctx context.Context, smArn string, now time.Time, rep *ReconcileReport) error {
	windowStart := now.Add(-r.cfg.Window)
	q := executionindex.Query{Status: string(domain.ExecRunning), From: windowStart.Add(-r.cfg.OpenLookback),
		To: windowStart.Add(-time.Millisecond), Limit: executionindex.MaxLimit}
	if err := q.Normalize(); err != nil {
		return fmt.Errorf("open executions query: %w", err)
	}
	for {
		page, err := r.index.Query(ctx, q)
		if err != nil {
			return fmt.Errorf("open executions of %s: %w", smArn, err)
		}
		for _, it := range page.Items {
			// The index keeps the ARN the event named: a version or alias ARN is the
			// state machine's ARN and a qualifier.
			if it.StateMachineArn != smArn && !strings.HasPrefix(it.StateMachineArn, smArn+":") {
				continue
			}
			rep.Open++
			if err := r.reconcileOne(ctx, &ExecutionSummary{ExecutionArn: it.ExecutionArn}, rep); err != nil {
				return err
			}
		}
		if page.NextCursor == "" {
			return nil
		}
		q.Cursor = page.NextCursor
	}
}

// indexed reports whether the index shows the execution in its listed status and
// attempt.
func (r *Reconciler) indexed(ctx context.Context, s *ExecutionSummary) (bool, error) {
	it, err := r.index.Get(ctx, s.ExecutionArn)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("index entry of %s: %w", s.ExecutionArn, err)
	}
	return it.Status == string(s.Status) && it.RedriveCount == s.RedriveCount, nil
}

// reconcileOne describes an execution and appends its status changes.
func (r *Reconciler) reconcileOne(ctx context.Context, s *ExecutionSummary, rep *ReconcileReport) error {
	cur, err := r.source.DescribeExecution(ctx, s.ExecutionArn)
	rep.Described++
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return nil
	case err != nil:
		return err
	}
	events, rejected, err := mapStatusChanges(ctx, ReconstructStatusChanges(cur), r.resolver, r.mapping, r.logger)
	if err != nil {
		return err
	}
	rep.Rejected += rejected
	if len(events) == 0 {
		return nil
	}
	appended, dups, err := appendEvents(ctx, r.journal, events)
	rep.Appended += appended
	rep.Duplicates += dups
	if appended > 0 {
		r.logger.InfoContext(ctx, "appended status changes missing from the journal", "executionArn", s.ExecutionArn,
			"status", cur.Status, "appended", appended)
	}
	return err
}

// ReconcileModule runs the Reconciler with the app (the worker), given a
// ReconcileConfig and an ExecutionSource (adapters/sfn.ExecutionSourceModule); a
// domain.AgentNameResolver is optional, as for the EventBridge feed.
var ReconcileModule = fx.Module("reconcile",
	fx.Provide(newFxReconciler, NewReconcileMetrics),
	fx.Invoke(func(lc fx.Lifecycle, r *Reconciler) { lc.Append(fx.StartStopHook(r.Start, r.Stop)) }),
)

// ReconcilerParams are the Reconciler's dependencies in the fx graph.
type ReconcilerParams struct {
	fx.In
	Config      Config
	Reconcile   ReconcileConfig
	Source      ExecutionSource
	Journal     JournalAppender
	Index       executionindex.Reader
	Checkpoints CheckpointStore
	Resolver    domain.AgentNameResolver `optional:"true"`
	Logger      *slog.Logger
	Metrics     *ReconcileMetrics
}

func newFxReconciler(p ReconcilerParams) (*Reconciler, error) {
	return NewReconciler(p.Reconcile, p.Source, p.Journal, p.Index, p.Checkpoints, p.Resolver, p.Config.Mapping,
		p.Logger, p.Metrics)
}
