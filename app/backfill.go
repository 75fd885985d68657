package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/executionindex"
)

// This file holds the two pulls from the Step Functions API that complement the
// EventBridge feed: Backfiller, which journals the status changes of historical
// executions (seed 000's "Optional: Backfill historical data"), and Reconciler, a
// periodic sweep that journals the status changes EventBridge dropped (its delivery is
// best-effort). Both journal exactly the events that the EventBridge feed would have
// (ReconstructStatusChanges, then domain.MapStatusChange), so that whichever of the
// three delivers a status change first, the others only find duplicates.

// ExecutionSummary is one execution as ListExecutions lists it: no input, output or
// error.
type ExecutionSummary struct {
	ExecutionArn    string
	StateMachineArn string
	Name            string
	Status          domain.ExecStatus
	StartDate       time.Time
	// StopDate is zero while the execution runs.
	StopDate time.Time
	// RedriveDate is zero unless the execution was redriven.
	RedriveDate  time.Time
	RedriveCount int
}

// LastChange is when the execution's status last changed, as far as the summary tells:
// its stop date, else its redrive date, else its start date.
func (s *ExecutionSummary) LastChange() time.Time {
	for _, t := range [...]time.Time{s.StopDate, s.RedriveDate} {
		if !t.IsZero() {
			return t
		}
	}
	return s.StartDate
}

// ExecutionListQuery selects the executions of one state machine.
type ExecutionListQuery struct {
	// StateMachineArn is the state machine whose executions are listed; required.
	StateMachineArn string
	// Since, if set, leaves out executions that started before it.
	Since time.Time
	// Status, if set, lists only executions in this status (ListExecutions'
	// statusFilter).
	Status domain.ExecStatus
}

// ExecutionSource reads executions from the Step Functions API. Implementations are
// safe for concurrent use, pace their calls to the API themselves, and translate its
// errors: domain.ErrNotFound (wrapped) for a state machine or execution that does not
// exist.
type ExecutionSource interface {
	// ListExecutions calls fn with the state machine's executions page by page, newest
	// first by start date, as the API returns them, and stops at the first execution
	// that started before q.Since. It returns when the listing is exhausted, fn fails
	// (its error, wrapped) or ctx is done. Executions that start while it lists may or
	// may not be listed.
	ListExecutions(ctx context.Context, q ExecutionListQuery, fn func(page []ExecutionSummary) error) error
	// DescribeExecution returns an execution's current state as the status change that
	// set it, with the fields a "Step Functions Execution Status Change" event carries
	// (no envelope id: the change was not delivered by EventBridge).
	DescribeExecution(ctx context.Context, executionArn string) (domain.StatusChange, error)
}

// ReconstructStatusChanges returns the status changes EventBridge sent for an execution,
// oldest first, from its current state cur (DescribeExecution's answer), each carrying
// what its event carried, so that domain.MapStatusChange journals each under the same
// session and sort key as the event would have been:
//
//   - RUNNING at startDate, redrive count 0;
//   - for a redriven execution (redriveCount > 0) other than one pending a redrive, the
//     latest redrive's RUNNING at redriveDate with its redrive count;
//   - the current status, unless it is RUNNING (then the RUNNING above is it).
//
// Only the first start and the latest attempt can be reconstructed: the API keeps no
// record of the stop of an attempt that was redriven, nor of the redrives before the
// latest, so those events are not recovered (the execution's history has them; the
// index needs only the latest attempt).
func ReconstructStatusChanges(cur domain.StatusChange) []domain.StatusChange {
	running := func(redriveCount int, redriveDate time.Time) domain.StatusChange {
		sc := cur
		sc.Status = domain.ExecRunning
		sc.StopDate = time.Time{}
		sc.Output, sc.OutputIncluded = nil, nil
		sc.Error, sc.Cause = "", ""
		sc.RedriveCount, sc.RedriveDate = redriveCount, redriveDate
		// What Step Functions says of every running execution.
		sc.RedriveStatus = "NOT_REDRIVABLE"
		sc.RedriveStatusReason = "Execution is RUNNING and cannot be redriven"
		return sc
	}
	out := []domain.StatusChange{running(0, time.Time{})}
	if cur.RedriveCount > 0 && cur.Status != domain.ExecPendingRedrive {
		out = append(out, running(cur.RedriveCount, cur.RedriveDate))
	}
	if cur.Status != domain.ExecRunning {
		out = append(out, cur)
	}
	return out
}

// BackfillConfig is one backfill run.
type BackfillConfig struct {
	// StateMachineArn is the state machine whose executions are backfilled; required.
	StateMachineArn string
	// Since, if set, leaves out executions that started before it.
	Since time.Time
	// Status, if set, backfills only executions currently in this status.
	Status domain.ExecStatus
	// DryRun lists, describes and maps, but appends nothing and stores no position.
	DryRun bool
	// Restart ignores a stored position and starts from the newest execution.
	Restart bool
	// CheckpointEvery is how many executions are processed between two stores of the
	// position; the position is also stored at the end of each page and when the run
	// stops. Default 25.
	CheckpointEvery int
}

// SetDefaults fills the fields left zero.
func (c *BackfillConfig) SetDefaults() {
	if c.CheckpointEvery == 0 {
		c.CheckpointEvery = 25
	}
}

// Validate reports every invalid field.
func (c *BackfillConfig) Validate() error {
	var errs []error
	if c.StateMachineArn == "" {
		errs = append(errs, errors.New("backfill: StateMachineArn is required"))
	}
	if c.Status != "" && !c.Status.Known() {
		errs = append(errs, fmt.Errorf("backfill: Status %q is not a Step Functions execution status", c.Status))
	}
	if c.CheckpointEvery < 1 {
		errs = append(errs, fmt.Errorf("backfill: CheckpointEvery must be positive, is %d", c.CheckpointEvery))
	}
	return errors.Join(errs...)
}

// BackfillCheckpointName is the checkpoint under which a backfill of the state machine
// keeps its position.
func BackfillCheckpointName(stateMachineArn string) string {
	return "backfill/" + stateMachineArn
}

// BackfillReport counts what a backfill run did.
type BackfillReport struct {
	// Executions counts the executions listed, those skipped included.
	Executions int `json:"executions"`
	// Skipped counts the executions at or before the stored position: a previous,
	// interrupted run processed them.
	Skipped int `json:"skipped"`
	// Described counts DescribeExecution calls.
	Described int `json:"described"`
	// Gone counts executions that no longer existed when described.
	Gone int `json:"gone"`
	// Events counts the status changes reconstructed and mapped.
	Events int `json:"events"`
	// Appended and Duplicates split Events by what the journal did; both stay 0 in a
	// dry run.
	Appended   int `json:"appended"`
	Duplicates int `json:"duplicates"`
	// Rejected counts status changes that cannot be journaled (domain.ErrInvalid).
	Rejected int `json:"rejected"`
	// Resumed says that the run continued from a stored position.
	Resumed bool `json:"resumed"`
	// Complete says that the run reached the end of the listing.
	Complete bool `json:"complete"`
}

// backfillPosition is the JSON stored under BackfillCheckpointName: the last fully
// processed execution, as its start date and the ARNs processed with exactly that start
// date (several executions may share a millisecond, and the API's order among them is
// unspecified). Since and Status are the run's filters: a run with other filters does
// not resume from it. Done marks a run that reached the end; the next run starts over.
type backfillPosition struct {
	StartDate string   `json:"startDate,omitempty"`
	Arns      []string `json:"arns,omitempty"`
	Since     string   `json:"since,omitempty"`
	Status    string   `json:"status,omitempty"`
	Done      bool     `json:"done"`
	// Processed counts the executions processed by the runs that built the position.
	Processed int    `json:"processed"`
	UpdatedAt string `json:"updatedAt"`
}

// covers reports whether the execution is at or before the position in listing order
// (newest first): processed already.
func (p *backfillPosition) covers(s *ExecutionSummary) bool {
	if p.StartDate == "" {
		return false
	}
	start := domain.FormatTime(s.StartDate.Truncate(time.Millisecond))
	return start > p.StartDate || (start == p.StartDate && slices.Contains(p.Arns, s.ExecutionArn))
}

// advance moves the position past an execution.
func (p *backfillPosition) advance(s *ExecutionSummary) {
	start := domain.FormatTime(s.StartDate.Truncate(time.Millisecond))
	if start != p.StartDate {
		p.StartDate, p.Arns = start, nil
	}
	p.Arns = append(p.Arns, s.ExecutionArn)
	p.Processed++
}

// Backfiller journals the status changes of historical executions of a state machine:
// ListExecutions, then DescribeExecution of each, ReconstructStatusChanges, and
// domain.MapStatusChange with the same resolver and mapping as the EventBridge feed.
// Appends are idempotent, so a re-run, and EventBridge's later deliveries, find
// duplicates only.
//
// A run is resumable: it stores its position (the last fully processed execution) in
// the checkpoint BackfillCheckpointName after every BackfillConfig.CheckpointEvery
// executions, at the end of each page, and when it stops, even on a cancelled ctx. A
// later run with the same filters lists again from the newest execution (ListExecutions
// page tokens do not last) and skips, without describing them, the executions at or
// before the position. A run that reaches the end marks the position done, and the next
// run starts over.
type Backfiller struct {
	source      ExecutionSource
	journal     JournalAppender
	checkpoints CheckpointStore
	resolver    domain.AgentNameResolver
	mapping     domain.MappingConfig
	logger      *slog.Logger
	now         func() time.Time
}

// NewBackfiller returns a backfiller. resolver may be nil (agent names from the input
// or the state machine name).
func NewBackfiller(source ExecutionSource, journal JournalAppender, checkpoints CheckpointStore,
	resolver domain.AgentNameResolver, mapping domain.MappingConfig, logger *slog.Logger) (*Backfiller, error) {
	if source == nil || journal == nil || checkpoints == nil {
		return nil, errors.New("backfill: needs an execution source, a journal and a checkpoint store")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	mapping.SetDefaults()
	return &Backfiller{source: source, journal: journal, checkpoints: checkpoints, resolver: resolver,
		mapping: mapping, logger: logger.With("component", "backfill"), now: time.Now}, nil
}

// Run backfills one state machine. The report counts what it did up to where it
// stopped; on an error or a cancelled ctx the position stored is that of the last
// execution whose events were all appended.
func (b *Backfiller) Run(ctx context.Context, cfg BackfillConfig) (BackfillReport, error) {
	cfg.SetDefaults()
	var rep BackfillReport
	if err := cfg.Validate(); err != nil {
		return rep, err
	}
	name := BackfillCheckpointName(cfg.StateMachineArn)
	pos, err := b.loadPosition(ctx, name, cfg)
	if err != nil {
		return rep, err
	}
	rep.Resumed = pos.StartDate != ""
	if rep.Resumed {
		b.logger.InfoContext(ctx, "resuming backfill", "stateMachineArn", cfg.StateMachineArn,
			"after", pos.StartDate, "processed", pos.Processed)
	}
	// dirty: the position moved since it was last stored.
	dirty, sinceSave := false, 0
	save := func(ctx context.Context) error {
		if cfg.DryRun || !dirty {
			return nil
		}
		pos.UpdatedAt = domain.FormatTime(b.now())
		raw, err := json.Marshal(pos)
		if err != nil {
			return fmt.Errorf("encode backfill position: %w", err)
		}
		if err := b.checkpoints.SetCheckpoint(ctx, name, string(raw)); err != nil {
			return fmt.Errorf("store backfill position: %w", err)
		}
		dirty, sinceSave = false, 0
		return nil
	}

	q := ExecutionListQuery{StateMachineArn: cfg.StateMachineArn, Since: cfg.Since, Status: cfg.Status}
	err = b.source.ListExecutions(ctx, q, func(page []ExecutionSummary) error {
		for i := range page {
			s := &page[i]
			rep.Executions++
			if pos.covers(s) {
				rep.Skipped++
				continue
			}
			if err := b.backfillOne(ctx, s, cfg.DryRun, &rep); err != nil {
				return err
			}
			pos.advance(s)
			dirty = true
			if sinceSave++; sinceSave >= cfg.CheckpointEvery {
				if err := save(ctx); err != nil {
					return err
				}
			}
		}
		b.logger.InfoContext(ctx, "backfill page done", "stateMachineArn", cfg.StateMachineArn,
			"executions", rep.Executions, "appended", rep.Appended, "duplicates", rep.Duplicates)
		return save(ctx)
	})
	if err == nil {
		rep.Complete = true
		pos.Done, dirty = true, true
	}
	// Store the position even when ctx is cancelled: an interrupted run must leave it.
	saveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if serr := save(saveCtx); serr != nil {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return rep, fmt.Errorf("backfill %s: %w", cfg.StateMachineArn, err)
	}
	return rep, nil
}

// loadPosition reads the stored position; a missing, finished, unreadable or
// differently filtered one gives a fresh position with the run's filters.
func (b *Backfiller) loadPosition(ctx context.Context, name string, cfg BackfillConfig) (backfillPosition, error) {
	fresh := backfillPosition{Since: domain.FormatTime(cfg.Since), Status: string(cfg.Status)}
	if cfg.Restart {
		return fresh, nil
	}
	raw, err := b.checkpoints.GetCheckpoint(ctx, name)
	if err != nil {
		return fresh, fmt.Errorf("read backfill position: %w", err)
	}
	if raw == "" {
		return fresh, nil
	}
	var p backfillPosition
	switch err := json.Unmarshal([]byte(raw), &p); {
	case err != nil:
		b.logger.WarnContext(ctx, "unreadable backfill position; starting over", "checkpoint", name, "error", err)
		return fresh, nil
	case p.Done:
		return fresh, nil
	case p.Since != fresh.Since || p.Status != fresh.Status:
		b.logger.WarnContext(ctx, "stored backfill position is of other filters; starting over", "checkpoint", name,
			"storedSince", p.Since, "storedStatus", p.Status)
		return fresh, nil
	}
	return p, nil
}

// backfillOne describes one execution and journals its status changes.
func (b *Backfiller) backfillOne(ctx context.Context, s *ExecutionSummary, dryRun bool, rep *BackfillReport) error {
	cur, err := b.source.DescribeExecution(ctx, s.ExecutionArn)
	rep.Described++
	switch {
	case errors.Is(err, domain.ErrNotFound):
		// Its history expired between the listing and now: nothing left to journal.
		rep.Gone++
		b.logger.InfoContext(ctx, "execution gone before it was described", "executionArn", s.ExecutionArn)
		return nil
	case err != nil:
		return err
	}
	events, rejected, err := mapStatusChanges(ctx, ReconstructStatusChanges(cur), b.resolver, b.mapping, b.logger)
	if err != nil {
		return err
	}
	rep.Rejected += rejected
	rep.Events += len(events)
	if dryRun || len(events) == 0 {
		return nil
	}
	appended, dups, err := appendEvents(ctx, b.journal, events)
	rep.Appended += appended
	rep.Duplicates += dups
	return err
}

// mapStatusChanges maps status changes to journal events. Changes that cannot be
// journaled are logged and counted; a resolver error on a cancelled ctx is returned.
func mapStatusChanges(ctx context.Context, changes []domain.StatusChange, resolver domain.AgentNameResolver,
	mapping domain.MappingConfig, logger *slog.Logger) (events []domain.Event, rejected int, err error) {
	events = make([]domain.Event, 0, len(changes))
	for _, sc := range changes {
		ev, err := domain.MapStatusChange(ctx, sc, resolver, mapping)
		if errors.Is(err, domain.ErrInvalid) {
			rejected++
			logger.WarnContext(ctx, "status change cannot be journaled", "executionArn", sc.ExecutionArn,
				"status", sc.Status, "error", err)
			continue
		}
		if err != nil {
			return nil, rejected, err
		}
		events = append(events, ev)
	}
	return events, rejected, nil
}

// appendEvents appends events and counts the new ones and the duplicates.
func appendEvents(ctx context.Context, journal JournalAppender, events []domain.Event) (appended, duplicates int, err error) {
	results, err := journal.Append(ctx, events)
	if err != nil {
		return 0, 0, fmt.Errorf("append %d events of execution %s: %w", len(events), events[0].Exec.ExecutionArn, err)
	}
	for _, r := range results {
		if r == Duplicate {
			duplicates++
		} else {
			appended++
		}
	}
	return appended, duplicates, nil
}

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

// BackfillModule provides the Backfiller, for `agentwatch backfill`. It needs an
// ExecutionSource (adapters/sfn.ExecutionSourceModule) beside the backend's stores; a
// domain.AgentNameResolver is optional.
var BackfillModule = fx.Module("backfill", fx.Provide(newFxBackfiller))

// BackfillerParams are the Backfiller's dependencies in the fx graph.
type BackfillerParams struct {
	fx.In
	Config      Config
	Source      ExecutionSource
	Journal     JournalAppender
	Checkpoints CheckpointStore
	Resolver    domain.AgentNameResolver `optional:"true"`
	Logger      *slog.Logger
}

func newFxBackfiller(p BackfillerParams) (*Backfiller, error) {
	return NewBackfiller(p.Source, p.Journal, p.Checkpoints, p.Resolver, p.Config.Mapping, p.Logger)
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
