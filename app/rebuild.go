package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
)

// Generations tells which read-model generations exist: a rebuild writes a new one
// while the current one keeps serving, then switches atomically.
type Generations interface {
	// CurrentGeneration returns the generation that serves reads, and the signature of
	// the read models it was built for (projections.Registry.Signature).
	CurrentGeneration(ctx context.Context) (gen int, signature string, err error)
	// Generations lists every generation that exists, in order.
	Generations(ctx context.Context) ([]int, error)
}

// GenerationAdmin creates, switches and drops generations.
type GenerationAdmin interface {
	// CreateGeneration creates gen's empty tables for the registered read models and
	// records it with their signature; creating an existing one does nothing.
	CreateGeneration(ctx context.Context, gen int, signature string) error
	// SwitchGeneration makes gen serve reads, atomically.
	SwitchGeneration(ctx context.Context, gen int) error
	// DropGeneration drops a generation that does not serve reads, with its tables.
	DropGeneration(ctx context.Context, gen int) error
}

// BulkLoader writes a folded state into a generation.
type BulkLoader interface {
	// BulkLoad writes data into gen in large coalesced batches.
	BulkLoad(ctx context.Context, gen int, data GenerationData) error
}

// GenerationStores opens the projection store of one generation.
type GenerationStores interface {
	// ProjectionStoreOf is the projection store of generation gen.
	ProjectionStoreOf(gen int) ProjectionStore
}

// GenerationStore is every generation port of a backend.
type GenerationStore interface {
	Generations
	GenerationAdmin
	BulkLoader
	GenerationStores
}

// GenerationData is a folded state for BulkLoader.BulkLoad. The sessions are there from
// the start; the rows that read models derive from them may still be being computed
// when the load begins: a store asks for each table's rows (Rows waits until they are
// ready) when it gets to them, and writes what it has meanwhile.
type GenerationData struct {
	// Sessions are sorted by id, without repeats.
	Sessions []*domain.Session
	// Rows returns a table's rows: documents sorted by key without repeats, or counter
	// rows sorted by partition and sort key. nil: every table is empty.
	Rows func(table string) TableRows
}

// TableRows are the rows of one table of a generation.
type TableRows struct {
	Documents []projections.Row
	Counters  []projections.CounterRow
}

// RowsOf waits for a table's rows (none if Rows is nil).
func (d GenerationData) RowsOf(table string) TableRows {
	if d.Rows == nil {
		return TableRows{}
	}
	return d.Rows(table)
}

// GenerationOf is the GenerationData of sessions and a state at hand.
func GenerationOf(sessions []domain.Session, st *projections.State) GenerationData {
	ptrs := make([]*domain.Session, len(sessions))
	for i := range sessions {
		ptrs[i] = &sessions[i]
	}
	return GenerationData{Sessions: ptrs, Rows: func(table string) TableRows {
		if st == nil {
			return TableRows{}
		}
		return TableRows{Documents: st.Documents(table), Counters: st.CounterRows(table)}
	}}
}

// deriveInBackground derives every read model from sessions, each on a goroutine of its
// own, and returns what waits for a table's rows.
func deriveInBackground(reg *projections.Registry, sessions []*domain.Session, env projections.Env) func(string) TableRows {
	byModel := map[string]func() *projections.State{}
	for _, m := range reg.Models() {
		byModel[m.Name()] = inBackground(func() *projections.State {
			ch := projections.DeriveModel(m, sessions, env)
			st := projections.NewState(reg)
			st.Apply(&ch)
			return st
		})
	}
	return func(table string) TableRows {
		get, ok := byModel[reg.Owner(table)]
		if !ok {
			return TableRows{}
		}
		st := get()
		return TableRows{Documents: st.Documents(table), Counters: st.CounterRows(table)}
	}
}

// inBackground starts f on a goroutine of its own and returns what waits for its result.
func inBackground[T any](f func() T) func() T {
	done := make(chan struct{})
	var v T
	go func() {
		defer close(done)
		v = f()
	}()
	return func() T {
		<-done
		return v
	}
}

// SessionRecorder stands in for a JournalTail where the journal has no single sequence
// (DynamoDB): while a rebuild loads generation gen, every live commit records the
// sessions it changes, in the same transaction, and the rebuild folds each recorded
// session again from the journal into the new generation.
type SessionRecorder interface {
	// StartRecording makes every live commit from now on record the sessions it changes
	// for gen.
	StartRecording(ctx context.Context, gen int) error
	// RecordedSessions returns the recorded sessions with how many commits changed each.
	RecordedSessions(ctx context.Context, gen int) (map[string]int64, error)
	// StopRecording stops recording for gen (switching to gen stops it too) and
	// deletes the records.
	StopRecording(ctx context.Context, gen int) error
}

// WithSessionRecorder makes a rebuild without a journal tail catch up by refolding the
// sessions rec records, reading their events from journal.
func (r *Rebuilder) WithSessionRecorder(rec SessionRecorder, journal JournalReader) *Rebuilder {
	r.recorder, r.sessionJournal = rec, journal
	return r
}

// RebuildOptions configure a rebuild.
type RebuildOptions struct {
	// Projection names the read model asked for (a registered read model's name) or
	// all. Every read model derives from the same session aggregates, whose versions
	// make live commits exactly-once, so a rebuild writes a whole new generation of them
	// all; the name is checked and reported.
	Projection string
	// Parallel is how many parts of the journal the scan reads at once (ScanOptions);
	// 0 is the journal store's default.
	Parallel int
	// Grace is how long the old generation is kept after the switch (queries that
	// started on it finish), then dropped.
	Grace time.Duration
	// Progress, if set, is told how many events were folded (of about total).
	Progress func(done, total int64)
	// Now is the clock for detector deadlines (default time.Now).
	Now func() time.Time
}

// RebuildReport says what a rebuild did.
type RebuildReport struct {
	FromGeneration int   `json:"fromGeneration"`
	ToGeneration   int   `json:"toGeneration"`
	Events         int64 `json:"events"`
	Sessions       int   `json:"sessions"`
	// Rows counts the rows written per table.
	Rows     map[string]int `json:"rows"`
	CaughtUp int            `json:"caughtUpEvents"`
	// ScanFold is the time to read the journal and fold it into sessions.
	ScanFold time.Duration `json:"scanFoldNs"`
	// Load is the time to write the new generation, computing the read models from the
	// sessions meanwhile.
	Load  time.Duration `json:"loadNs"`
	Total time.Duration `json:"totalNs"`
}

// Rebuilder rebuilds the read models from the journal with zero downtime.
type Rebuilder struct {
	reg         *projections.Registry
	journal     JournalScanner
	tail        JournalTail
	gens        GenerationStore
	checkpoints CheckpointStore
	logger      *slog.Logger
	metrics     *Metrics
	// recorder and sessionJournal catch up a generation when tail is nil.
	recorder       SessionRecorder
	sessionJournal JournalReader
}

// NewRebuilder returns a rebuilder. tail may be nil for journals without a
// single-sequence feed; give those a SessionRecorder (WithSessionRecorder), or events
// that live projection commits during the rebuild never reach the new generation.
func NewRebuilder(reg *projections.Registry, journal JournalScanner, tail JournalTail, gens GenerationStore, checkpoints CheckpointStore,
	logger *slog.Logger, metrics *Metrics) *Rebuilder {
	return &Rebuilder{reg: reg, journal: journal, tail: tail, gens: gens, checkpoints: checkpoints, logger: logger, metrics: metrics}
}

// ApproximateCounter estimates how many items a journal holds (DynamoDB's item count,
// refreshed about every six hours), for progress and ETA where no end position is known.
type ApproximateCounter interface {
	ApproximateCount(ctx context.Context) (int64, error)
}

// EndPositioner tells where a single-sequence journal feed ends now.
type EndPositioner interface {
	EndPosition(ctx context.Context) (string, error)
}

// Rebuild folds the whole journal into a new generation, catches it up with what was
// written meanwhile, switches reads to it atomically, catches up once more (a commit
// of the live worker may have raced the switch into the old generation), and drops the
// old generation after the grace period. On error or cancellation the new generation
// is dropped and the current one is untouched.
//
// The live worker must project into the current generation as of each commit (not a
// generation pinned at start) for the second catch-up to be the last word.
//
// Detector entries of the new generation are scheduled only for deadlines still ahead:
// a rebuild replays history and raises no alert for it. Alerts live outside the
// generations and survive.
func (r *Rebuilder) Rebuild(ctx context.Context, opts RebuildOptions) (rep RebuildReport, err error) {
	if opts.Projection == "" {
		opts.Projection = "all"
	}
	if _, ok := r.reg.Model(opts.Projection); !ok && opts.Projection != "all" {
		return rep, &domain.FieldError{Field: "projection", Reason: "must be one of " + strings.Join(r.reg.Names(), ", ") + " or all"}
	}
	scanOpts := ScanOptions{Parallel: opts.Parallel}
	if err := scanOpts.Check(); err != nil {
		return rep, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	began := time.Now()
	cur, _, err := r.gens.CurrentGeneration(ctx)
	if err != nil {
		return rep, fmt.Errorf("current generation: %w", err)
	}
	gens, err := r.gens.Generations(ctx)
	if err != nil {
		return rep, fmt.Errorf("list generations: %w", err)
	}
	next := cur + 1
	for _, g := range gens {
		if g != cur {
			// A partial generation of an interrupted rebuild, or an old one past its
			// grace period.
			if err := r.dropGeneration(ctx, g); err != nil {
				return rep, fmt.Errorf("drop stale generation %d: %w", g, err)
			}
		}
		next = max(next, g+1)
	}
	rep.FromGeneration, rep.ToGeneration = cur, next
	if err := r.gens.CreateGeneration(ctx, next, r.reg.Signature()); err != nil {
		return rep, fmt.Errorf("create generation %d: %w", next, err)
	}
	switched := false
	recording := r.tail == nil && r.recorder != nil
	defer func() {
		if err == nil {
			return
		}
		// The caller's ctx may be what failed: clean up with a fresh one.
		dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if recording {
			if serr := r.recorder.StopRecording(dctx, next); serr != nil {
				err = errors.Join(err, serr)
			}
		}
		if !switched {
			// Leave the live generation untouched and the partial one gone.
			if derr := r.dropGeneration(dctx, next); derr != nil {
				err = errors.Join(err, fmt.Errorf("drop partial generation %d: %w", next, derr))
			}
		}
	}()
	if recording {
		// Before the scan: whatever live projection commits from here on, the scan
		// may or may not see, and the catch-up folds again.
		if err = r.recorder.StartRecording(ctx, next); err != nil {
			return rep, fmt.Errorf("record live changes for generation %d: %w", next, err)
		}
	}

	// Where live projection into the new generation starts: before the scan, so that
	// anything appended during the scan is applied again (harmlessly) by the catch-up.
	var startPos string
	var total int64
	if ep, ok := r.tail.(EndPositioner); ok && r.tail != nil {
		if startPos, err = ep.EndPosition(ctx); err != nil {
			return rep, fmt.Errorf("journal end position: %w", err)
		}
		if n, perr := parsePos(startPos); perr == nil {
			total = n
		}
	} else if c, ok := r.journal.(ApproximateCounter); ok {
		// For the progress bar's ETA only: a failure costs the estimate, not the rebuild.
		if n, cerr := c.ApproximateCount(ctx); cerr == nil {
			total = n
		} else {
			r.logger.Warn("rebuild: no estimate of the journal's size for progress", "error", cerr)
		}
	}
	model := projections.NewModel()
	err = r.journal.Scan(ctx, scanOpts, func(batch []domain.Event) error {
		for i := range batch {
			model.Apply(&batch[i])
		}
		if opts.Progress != nil {
			opts.Progress(model.Events, total)
		}
		return ctx.Err()
	})
	if err != nil {
		return rep, fmt.Errorf("scan journal: %w", err)
	}
	rep.Events = model.Events
	// The store writes the sessions while the read models derived from them are
	// computed on other goroutines: the fold is done, and the model's readers may run
	// at once. The derivation replays history: nothing overdue is due now.
	sessions := model.Sessions()
	data := GenerationData{Sessions: sessions,
		Rows: deriveInBackground(r.reg, sessions, projections.Env{NowMs: opts.Now().UnixMilli(), Replay: true})}
	rep.ScanFold = time.Since(began)

	loadStart := time.Now()
	if err = r.gens.BulkLoad(ctx, next, data); err != nil {
		return rep, fmt.Errorf("load generation %d: %w", next, err)
	}
	rep.Load = time.Since(loadStart)
	rep.Sessions = len(data.Sessions)
	rep.Rows = map[string]int{}
	for _, t := range r.reg.Tables() {
		rows := data.RowsOf(t.Name)
		rep.Rows[t.Name] = len(rows.Documents) + len(rows.Counters)
	}

	cpName := GenerationCheckpoint(next)
	proj := NewProjector(r.gens.ProjectionStoreOf(next), r.reg, r.logger, r.metrics)
	if r.tail != nil {
		if err = r.checkpoints.SetCheckpoint(ctx, cpName, startPos); err != nil {
			return rep, fmt.Errorf("start checkpoint of generation %d: %w", next, err)
		}
	}
	// catchUp projects into the new generation what live projection committed since the
	// scan began: from the journal's tail, or the sessions the live commits recorded.
	refolded := map[string]int64{}
	catchUp := func() (int, error) {
		switch {
		case r.tail != nil:
			return proj.CatchUp(ctx, r.tail, r.checkpoints, cpName, 1000)
		case recording:
			return r.refoldRecorded(ctx, proj, next, refolded)
		}
		return 0, nil
	}
	n, err := catchUp()
	if err != nil {
		return rep, fmt.Errorf("catch up generation %d: %w", next, err)
	}
	rep.CaughtUp += n
	if err = r.gens.SwitchGeneration(ctx, next); err != nil {
		return rep, fmt.Errorf("switch to generation %d: %w", next, err)
	}
	switched = true
	r.logger.Info("read models switched", "from", cur, "to", next, "events", rep.Events, "sessions", rep.Sessions)
	// A live commit may have raced the switch into the old generation; with recording,
	// the switch stopped it, and what was committed to the old generation meanwhile is
	// recorded.
	if n, err = catchUp(); err != nil {
		return rep, fmt.Errorf("final catch-up of generation %d: %w", next, err)
	}
	rep.CaughtUp += n
	if recording {
		recording = false
		if serr := r.recorder.StopRecording(ctx, next); serr != nil {
			r.logger.Warn("rebuild: delete the records of live changes", "generation", next, "error", serr)
		}
	}
	if r.tail != nil {
		// The live projector's checkpoint carries on; the catch-up's is done with.
		if derr := r.checkpoints.DeleteCheckpoint(ctx, cpName); derr != nil {
			r.logger.Warn("rebuild: drop the catch-up checkpoint", "checkpoint", cpName, "error", derr)
		}
	}
	rep.Total = time.Since(began)
	if opts.Grace > 0 {
		select {
		case <-time.After(opts.Grace):
		case <-ctx.Done():
			r.logger.Warn("old generation kept: interrupted during the grace period; the next rebuild drops it", "generation", cur)
			return rep, nil
		}
	}
	if derr := r.dropGeneration(ctx, cur); derr != nil {
		r.logger.Warn("drop old generation", "generation", cur, "error", derr)
	}
	return rep, nil
}

// refoldBatch is how many recorded sessions one projection commit refolds.
const refoldBatch = 25

// refoldRecorded projects into gen every journal event of the sessions recorded for it
// that changed since done says (done is updated), and returns how many events it
// projected. Events the new generation has already are harmless: sessions drop them.
func (r *Rebuilder) refoldRecorded(ctx context.Context, proj *Projector, gen int, done map[string]int64) (int, error) {
	recorded, err := r.recorder.RecordedSessions(ctx, gen)
	if err != nil {
		return 0, err
	}
	var ids []string
	for id, n := range recorded {
		if done[id] != n {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	total := 0
	for lo := 0; lo < len(ids); lo += refoldBatch {
		var events []domain.Event
		for _, id := range ids[lo:min(lo+refoldBatch, len(ids))] {
			evs, err := r.sessionJournal.SessionEvents(ctx, id, SessionEventsQuery{})
			if err != nil {
				return total, fmt.Errorf("read the events of session %s: %w", id, err)
			}
			events = append(events, evs...)
		}
		if len(events) > 0 {
			if err := proj.Project(ctx, events, nil); err != nil {
				return total, err
			}
		}
		for _, id := range ids[lo:min(lo+refoldBatch, len(ids))] {
			done[id] = recorded[id]
		}
		total += len(events)
	}
	return total, nil
}

// dropGeneration drops gen and the catch-up checkpoint a rebuild of it left.
func (r *Rebuilder) dropGeneration(ctx context.Context, gen int) error {
	if err := r.gens.DropGeneration(ctx, gen); err != nil {
		return err
	}
	if err := r.checkpoints.DeleteCheckpoint(ctx, GenerationCheckpoint(gen)); err != nil {
		return fmt.Errorf("drop the checkpoint of generation %d: %w", gen, err)
	}
	return nil
}

// GenerationCheckpoint names the journal checkpoint of a generation being rebuilt.
func GenerationCheckpoint(gen int) string { return fmt.Sprintf("%s@g%d", HandlerProject, gen) }

func parsePos(p string) (int64, error) {
	var n int64
	_, err := fmt.Sscan(p, &n)
	return n, err
}
