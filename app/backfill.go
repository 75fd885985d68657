package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/domain"
)

// This file holds Backfiller, which journals the status changes of historical
// executions from the Step Functions API (seed 000's "Optional: Backfill historical
// data"), and what it shares with the Reconciler (reconcile.go), the periodic sweep
// that journals the status changes EventBridge dropped: the ExecutionSource port and
// ReconstructStatusChanges. Both journal exactly the events that the EventBridge feed
// would have (ReconstructStatusChanges, then domain.MapStatusChange), so that whichever
// of the three delivers a status change first, the others only find duplicates.

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
