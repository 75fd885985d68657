package sfn_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	awssfn "github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/adapters/sfn"
	"github.com/agentwatch/agentwatch/adapters/sfn/sfntest"
	"github.com/agentwatch/agentwatch/adapters/sqlite"
	"github.com/agentwatch/agentwatch/adapters/sqlite/sqlitetest"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/executionindex"
)

// The tests of this file run the backfill and the reconcile sweep against the real SDK
// client, the real SQLite journal and an HTTP-level fake of the Step Functions API
// (sfntest): no local server produces executions in every status, redriven ones, or
// throttling on demand.

const smName = "research-flow"

var (
	smArn = sfntest.StateMachineArn(smName)
	t0    = time.Date(2026, 3, 1, 9, 0, 0, 123_000_000, time.UTC)
)

// fakeClock is the limiter's clock: sleeping advances it, and it counts the waits.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits int
	slept time.Duration
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.waits++
	c.slept += d
	return ctx.Err()
}

// rig is a backfill over the fake API into a SQLite journal.
type rig struct {
	fake        *sfntest.Server
	db          *sqlite.DB
	journal     *sqlite.JournalStore
	checkpoints *sqlite.CheckpointStore
	source      *sfn.ExecutionSource
	resolver    *sfn.TagResolver
	backfiller  *app.Backfiller
	clock       *fakeClock
}

func newRig(t *testing.T, cfg sfn.SourceConfig) *rig {
	t.Helper()
	r := &rig{fake: sfntest.New(t), clock: &fakeClock{now: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)}}
	r.fake.AddStateMachine(smArn, map[string]string{"agentName": "research-agent"})
	db, err := sqlite.Open(t.Context(), t.TempDir(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	r.db, r.journal, r.checkpoints = db, sqlite.NewJournalStore(db), sqlite.NewCheckpointStore(db)
	client := r.fake.Client()
	m, err := sfn.NewSourceMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	r.source, err = sfn.NewExecutionSource(cfg, client, m, nil)
	require.NoError(t, err)
	r.source.Limiter().SetClock(r.clock.Now, r.clock.Sleep)
	r.resolver, err = sfn.NewTagResolver(sfn.Config{}, client, nil, nil)
	require.NoError(t, err)
	r.backfiller, err = app.NewBackfiller(r.source, r.journal, r.checkpoints, r.resolver, domain.MappingConfig{}, nil)
	require.NoError(t, err)
	return r
}

// history is an execution and the status changes EventBridge sent for it, oldest first,
// as the envelopes it delivers; lost marks those no API call can reconstruct.
type history struct {
	exec    sfntest.Execution
	changes []change
}

type change struct {
	status       string
	redriveCount int
	stop         time.Time
	redrive      time.Time
	output       string
	err, cause   string
	redriveState string
	lost         bool
}

// envelope is the EventBridge event of one status change, written as EventBridge
// writes it (dates in epoch milliseconds, input and output as JSON strings).
func (h *history) envelope(c change) []byte {
	e := h.exec
	ms := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return t.UnixMilli()
	}
	str := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	var outputDetails any
	if c.output != "" {
		outputDetails = map[string]bool{"included": true}
	}
	env := map[string]any{
		"version": "0", "id": fmt.Sprintf("evt-%s-%s-%d", e.Name, c.status, c.redriveCount),
		"detail-type": domain.StatusChangeDetailType, "source": domain.StatusChangeSource,
		"account": sfntest.Account, "time": time.Now().UTC().Format(time.RFC3339), "region": sfntest.Region,
		"resources": []string{e.Arn},
		"detail": map[string]any{
			"executionArn": e.Arn, "stateMachineArn": e.StateMachineArn, "name": e.Name, "status": c.status,
			"startDate": ms(e.StartDate), "stopDate": ms(c.stop), "redriveDate": ms(c.redrive),
			"redriveCount": c.redriveCount, "redriveStatus": c.redriveState,
			"input": str(e.Input), "inputDetails": map[string]bool{"included": true},
			"output": str(c.output), "outputDetails": outputDetails,
			"error": str(c.err), "cause": str(c.cause),
		},
	}
	b, err := json.Marshal(env)
	if err != nil {
		panic(err)
	}
	return b
}

// histories are executions in every status: the fake holds their current state, and
// their changes are what EventBridge delivered over their lives.
func histories(n int) []history {
	var hs []history
	for i := range n {
		name := fmt.Sprintf("run-%03d", i)
		start := t0.Add(time.Duration(i) * time.Minute)
		stop := start.Add(time.Duration(5+i) * time.Second).Add(456 * time.Millisecond)
		e := sfntest.Execution{Arn: sfntest.ExecutionArn(smName, name), StateMachineArn: smArn, Name: name,
			StartDate: start, Input: fmt.Sprintf(`{"session_id":"sess-%03d","n":%d}`, i, i)}
		running := change{status: "RUNNING", redriveState: "NOT_REDRIVABLE"}
		var cs []change
		switch i % 7 {
		case 0:
			e.Status, e.StopDate, e.Output = "SUCCEEDED", stop, `{"ok":true}`
			e.RedriveStatus = "NOT_REDRIVABLE"
			cs = []change{running, {status: "SUCCEEDED", stop: stop, output: e.Output, redriveState: "NOT_REDRIVABLE"}}
		case 1:
			e.Status, e.StopDate, e.Error, e.Cause = "FAILED", stop, "States.TaskFailed", "agent crashed"
			e.RedriveStatus = "REDRIVABLE"
			e.Input = fmt.Sprintf(`{"sessionId":"sess-%03d"}`, i) // the other key
			cs = []change{running, {status: "FAILED", stop: stop, err: e.Error, cause: e.Cause, redriveState: "REDRIVABLE"}}
		case 2:
			e.Status = "RUNNING"
			e.Input = `{"prompt":"no session id: the execution name is"}`
			cs = []change{running}
		case 3:
			e.Status, e.StopDate, e.Error, e.Cause = "TIMED_OUT", stop, "States.Timeout", ""
			e.RedriveStatus = "REDRIVABLE"
			cs = []change{running, {status: "TIMED_OUT", stop: stop, err: e.Error, redriveState: "REDRIVABLE"}}
		case 4:
			e.Status, e.StopDate = "ABORTED", stop
			e.RedriveStatus = "REDRIVABLE"
			cs = []change{running, {status: "ABORTED", stop: stop, redriveState: "REDRIVABLE"}}
		case 5: // failed, redriven, then succeeded
			firstStop, redrive := start.Add(2*time.Second), start.Add(time.Hour)
			e.Status, e.StopDate, e.Output = "SUCCEEDED", redrive.Add(3*time.Second), `{"ok":"second time"}`
			e.RedriveCount, e.RedriveDate, e.RedriveStatus = 1, redrive, "NOT_REDRIVABLE"
			cs = []change{running,
				{status: "FAILED", stop: firstStop, err: "States.TaskFailed", redriveState: "REDRIVABLE", lost: true},
				{status: "RUNNING", redriveCount: 1, redrive: redrive, redriveState: "NOT_REDRIVABLE"},
				{status: "SUCCEEDED", redriveCount: 1, stop: e.StopDate, redrive: redrive, output: e.Output, redriveState: "NOT_REDRIVABLE"}}
		case 6: // failed twice, redriven twice, running again
			redrive := start.Add(2 * time.Hour)
			e.Status, e.RedriveCount, e.RedriveDate = "RUNNING", 2, redrive
			cs = []change{running,
				{status: "FAILED", stop: start.Add(time.Second), redriveState: "REDRIVABLE", lost: true},
				{status: "RUNNING", redriveCount: 1, redrive: start.Add(time.Hour), redriveState: "NOT_REDRIVABLE", lost: true},
				{status: "FAILED", redriveCount: 1, stop: start.Add(time.Hour + time.Second), redrive: start.Add(time.Hour), redriveState: "REDRIVABLE", lost: true},
				{status: "RUNNING", redriveCount: 2, redrive: redrive, redriveState: "NOT_REDRIVABLE"}}
		}
		hs = append(hs, history{exec: e, changes: cs})
	}
	return hs
}

func (r *rig) put(hs []history) {
	for _, h := range hs {
		r.fake.Put(h.exec)
	}
}

// delivered maps what EventBridge delivered through the ingest path's mapping, with the
// same resolver: the journal items the EventBridge feed writes. lost selects the
// changes no API call can reconstruct instead of the others.
func (r *rig) delivered(t *testing.T, hs []history, lost bool) []domain.Event {
	t.Helper()
	var out []domain.Event
	for _, h := range hs {
		for _, c := range h.changes {
			if c.lost != lost {
				continue
			}
			sc, err := domain.DecodeStatusChange(h.envelope(c))
			require.NoError(t, err)
			ev, err := domain.MapStatusChange(t.Context(), sc, r.resolver, domain.MappingConfig{})
			require.NoError(t, err)
			out = append(out, ev)
		}
	}
	return out
}

// items returns the journal items of the sessions of events, sorted by PK and SK, with
// the EventBridge event id (which identifies a delivery) cleared.
func (r *rig) items(t *testing.T, sessions []string) []domain.JournalItem {
	t.Helper()
	var out []domain.JournalItem
	for _, id := range slices.Compact(slices.Sorted(slices.Values(sessions))) {
		evs, err := r.journal.SessionEvents(t.Context(), id, app.SessionEventsQuery{})
		require.NoError(t, err)
		for i := range evs {
			it := evs[i].Item()
			it.SourceEventID = ""
			out = append(out, it)
		}
	}
	sortItems(out)
	return out
}

func itemsOf(events []domain.Event) []domain.JournalItem {
	out := make([]domain.JournalItem, len(events))
	for i := range events {
		out[i] = events[i].Item()
		out[i].SourceEventID = ""
	}
	sortItems(out)
	return out
}

func sortItems(items []domain.JournalItem) {
	sort.Slice(items, func(i, j int) bool {
		if items[i].PK != items[j].PK {
			return items[i].PK < items[j].PK
		}
		return items[i].SK < items[j].SK
	})
}

func sessionsOf(events []domain.Event) []string {
	var ids []string
	for _, e := range events {
		ids = append(ids, e.SessionID)
	}
	return ids
}

func TestBackfillFromFakeAPIJournalsWhatEventBridgeWould(t *testing.T) {
	r := newRig(t, sfn.SourceConfig{PageSize: 4})
	hs := histories(21)
	r.put(hs)
	want := r.delivered(t, hs, false)

	rep, err := r.backfiller.Run(t.Context(), app.BackfillConfig{StateMachineArn: smArn})
	require.NoError(t, err)
	assert.Equal(t, app.BackfillReport{Executions: 21, Described: 21, Events: len(want), Appended: len(want), Complete: true}, rep)
	assert.Equal(t, 6, r.fake.Calls(sfntest.OpListExecutions), "21 executions in pages of 4")
	assert.Equal(t, itemsOf(want), r.items(t, sessionsOf(want)),
		"the same items, under the same keys, as the EventBridge feed journals")

	// The execution name is the session when the input has none.
	assert.Contains(t, sessionsOf(want), "run-002")

	// EventBridge delivering the same status changes later finds them all there.
	results, err := r.journal.Append(t.Context(), want)
	require.NoError(t, err)
	for i, res := range results {
		assert.Equal(t, app.Duplicate, res, want[i].SK)
	}

	// What only the execution's history holds — the stops of redriven attempts and
	// redrives before the latest — is not reconstructed: EventBridge's copies are new.
	lost := r.delivered(t, hs, true)
	require.NotEmpty(t, lost)
	results, err = r.journal.Append(t.Context(), lost)
	require.NoError(t, err)
	for _, res := range results {
		assert.Equal(t, app.Appended, res)
	}
}

func TestBackfillFromFakeAPIRerunAppendsOnlyDuplicates(t *testing.T) {
	r := newRig(t, sfn.SourceConfig{PageSize: 5})
	hs := histories(14)
	r.put(hs)
	first, err := r.backfiller.Run(t.Context(), app.BackfillConfig{StateMachineArn: smArn})
	require.NoError(t, err)
	require.True(t, first.Complete)
	before := r.items(t, sessionsOf(r.delivered(t, hs, false)))

	second, err := r.backfiller.Run(t.Context(), app.BackfillConfig{StateMachineArn: smArn})
	require.NoError(t, err)
	assert.False(t, second.Resumed, "a finished run leaves nothing to resume: the next starts over")
	assert.Equal(t, first.Events, second.Events)
	assert.Zero(t, second.Appended)
	assert.Equal(t, first.Events, second.Duplicates)
	assert.Equal(t, before, r.items(t, sessionsOf(r.delivered(t, hs, false))))
}

func TestBackfillFromFakeAPIResumesAfterInterruption(t *testing.T) {
	const n, stopAt = 23, 10 // the 10th DescribeExecution is interrupted
	interrupts := []struct {
		name string
		// arm makes the stopAt-th DescribeExecution interrupt the run; cancel is the
		// run's ctx cancel.
		arm func(r *rig, cancel context.CancelFunc)
	}{
		{"ctx cancelled", func(r *rig, cancel context.CancelFunc) {
			r.fake.SetHook(func(op string, k int, _ map[string]any) *sfntest.Error {
				if op == sfntest.OpDescribeExecution && k == stopAt {
					cancel()
					return &sfntest.Throttled // what the SDK makes of it does not matter: ctx is done
				}
				return nil
			})
		}},
		{"API fails midway", func(r *rig, _ context.CancelFunc) {
			r.fake.SetHook(func(op string, k int, _ map[string]any) *sfntest.Error {
				if op == sfntest.OpDescribeExecution && k >= stopAt {
					return &sfntest.Error{Type: "AccessDeniedException", Message: "not authorized to perform states:DescribeExecution"}
				}
				return nil
			})
		}},
	}
	for _, tt := range interrupts {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, sfn.SourceConfig{PageSize: 4})
			hs := histories(n)
			r.put(hs)
			clean := itemsOf(r.delivered(t, hs, false))

			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			tt.arm(r, cancel)
			rep, err := r.backfiller.Run(ctx, app.BackfillConfig{StateMachineArn: smArn, CheckpointEvery: 3})
			require.Error(t, err)
			assert.False(t, rep.Complete)
			assert.Equal(t, stopAt-1, len(r.fake.Described()), "described before the interruption")
			firstDescribed := r.fake.Described()
			pos, err := r.checkpoints.GetCheckpoint(t.Context(), app.BackfillCheckpointName(smArn))
			require.NoError(t, err)
			require.NotEmpty(t, pos, "an interrupted run leaves its position")
			assert.Contains(t, pos, hs[n-stopAt+1].exec.Arn, "the last execution whose events were appended (newest first)")

			r.fake.SetHook(nil)
			r.fake.ResetCalls()
			rep, err = r.backfiller.Run(t.Context(), app.BackfillConfig{StateMachineArn: smArn, CheckpointEvery: 3})
			require.NoError(t, err)
			assert.True(t, rep.Resumed)
			assert.True(t, rep.Complete)
			assert.Equal(t, stopAt-1, rep.Skipped)
			assert.Equal(t, n-(stopAt-1), rep.Described, "only the executions not processed before")
			for _, arn := range r.fake.Described() {
				assert.NotContains(t, firstDescribed, arn, "nothing described twice")
			}
			assert.Equal(t, clean, r.items(t, sessionsOf(r.delivered(t, hs, false))), "the journal of one clean run")
		})
	}
}

func TestBackfillFromFakeAPIRidesOutThrottling(t *testing.T) {
	r := newRig(t, sfn.SourceConfig{PageSize: 3, MaxAttempts: 4})
	hs := histories(7)
	r.put(hs)
	r.fake.SetHook(func(op string, k int, _ map[string]any) *sfntest.Error {
		// Every other call of each operation is throttled once.
		if k%2 == 1 && op != sfntest.OpListTagsForResource {
			return &sfntest.Throttled
		}
		return nil
	})
	rep, err := r.backfiller.Run(t.Context(), app.BackfillConfig{StateMachineArn: smArn})
	require.NoError(t, err, "the SDK retries ThrottlingException")
	assert.True(t, rep.Complete)
	assert.Equal(t, 7, rep.Described)
	assert.Equal(t, 14, r.fake.Calls(sfntest.OpDescribeExecution), "each DescribeExecution throttled once, then answered")
	want := r.delivered(t, hs, false)
	assert.Equal(t, itemsOf(want), r.items(t, sessionsOf(want)))

	t.Run("beyond MaxAttempts the run stops with its position stored", func(t *testing.T) {
		r := newRig(t, sfn.SourceConfig{PageSize: 3, MaxAttempts: 2})
		r.put(histories(7))
		r.fake.SetHook(func(op string, k int, _ map[string]any) *sfntest.Error {
			if op == sfntest.OpDescribeExecution && k > 4 {
				return &sfntest.Throttled
			}
			return nil
		})
		rep, err := r.backfiller.Run(t.Context(), app.BackfillConfig{StateMachineArn: smArn})
		var apiErr interface{ ErrorCode() string }
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, "ThrottlingException", apiErr.ErrorCode())
		assert.Equal(t, 5, rep.Described, "four described, the fifth gave up")
		assert.Equal(t, 6, r.fake.Calls(sfntest.OpDescribeExecution), "the fifth tried MaxAttempts times")
	})
}

func TestBackfillFromFakeAPIHonorsTheRateLimit(t *testing.T) {
	// 4 requests a second, 2 at once: the limiter's configuration...
	r := newRig(t, sfn.SourceConfig{RequestsPerSecond: 4, Burst: 2, PageSize: 5})
	assert.Equal(t, 250*time.Millisecond, r.source.Limiter().Interval())
	assert.Equal(t, 2, r.source.Limiter().Burst())

	// ...and every request it lets go, counted on the fake clock that the limiter
	// waits on: n requests take at least (n - burst) intervals.
	r.put(histories(18))
	start := r.clock.Now()
	_, err := r.backfiller.Run(t.Context(), app.BackfillConfig{StateMachineArn: smArn})
	require.NoError(t, err)
	requests := r.fake.Calls(sfntest.OpListExecutions) + r.fake.Calls(sfntest.OpDescribeExecution)
	assert.Equal(t, 4+18, requests)
	elapsed := r.clock.Now().Sub(start)
	assert.Equal(t, time.Duration(requests-2)*250*time.Millisecond, elapsed,
		"%d requests at 4/s after a burst of 2: never faster, and no slower either", requests)
	assert.Equal(t, requests-2, r.clock.waits)
}

func TestBackfillFromFakeAPIFilters(t *testing.T) {
	r := newRig(t, sfn.SourceConfig{PageSize: 3})
	hs := histories(21)
	r.put(hs)

	t.Run("since stops the listing at the first older execution", func(t *testing.T) {
		r.fake.ResetCalls()
		since := hs[15].exec.StartDate
		rep, err := r.backfiller.Run(t.Context(), app.BackfillConfig{StateMachineArn: smArn, Since: since, DryRun: true})
		require.NoError(t, err)
		assert.Equal(t, 6, rep.Executions, "run-015 to run-020")
		assert.Equal(t, 3, r.fake.Calls(sfntest.OpListExecutions),
			"newest first: the third page of 3 holds the first older execution, and no page after it is asked for")
		assert.Equal(t, 6, rep.Described)
		assert.Zero(t, rep.Appended, "a dry run appends nothing")
		pos, err := r.checkpoints.GetCheckpoint(t.Context(), app.BackfillCheckpointName(smArn))
		require.NoError(t, err)
		assert.Empty(t, pos, "nor stores a position")
	})
	t.Run("status filter", func(t *testing.T) {
		r.fake.ResetCalls()
		rep, err := r.backfiller.Run(t.Context(), app.BackfillConfig{StateMachineArn: smArn, Status: domain.ExecFailed})
		require.NoError(t, err)
		assert.Equal(t, 3, rep.Executions, "run-001, run-008, run-015")
		for _, arn := range r.fake.Described() {
			assert.Contains(t, []string{hs[1].exec.Arn, hs[8].exec.Arn, hs[15].exec.Arn}, arn)
		}
		assert.Equal(t, 6, rep.Appended)
	})
	t.Run("an unknown state machine", func(t *testing.T) {
		_, err := r.backfiller.Run(t.Context(), app.BackfillConfig{StateMachineArn: sfntest.StateMachineArn("other")})
		require.ErrorIs(t, err, domain.ErrNotFound)
		assert.ErrorContains(t, err, "StateMachineDoesNotExist")
	})
	t.Run("an execution gone before it is described is counted, not fatal", func(t *testing.T) {
		r.fake.SetHook(func(op string, _ int, body map[string]any) *sfntest.Error {
			if op == sfntest.OpDescribeExecution && body["executionArn"] == hs[20].exec.Arn {
				return &sfntest.Error{Type: "ExecutionDoesNotExist", Message: "Execution Does Not Exist"}
			}
			return nil
		})
		defer r.fake.SetHook(nil)
		rep, err := r.backfiller.Run(t.Context(), app.BackfillConfig{StateMachineArn: smArn, Since: hs[19].exec.StartDate})
		require.NoError(t, err)
		assert.Equal(t, 1, rep.Gone)
		assert.Equal(t, 2, rep.Described)
	})
}

func TestReconcileFromFakeAPIFindsStatusChangesTheJournalLacks(t *testing.T) {
	r := newRig(t, sfn.SourceConfig{PageSize: 2})
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	start := now.Add(-3 * time.Hour)
	exec := func(name, status string, start time.Time, stop time.Duration) sfntest.Execution {
		e := sfntest.Execution{Arn: sfntest.ExecutionArn(smName, name), StateMachineArn: smArn, Name: name, Status: status,
			StartDate: start, Input: `{"session_id":"s-` + name + `"}`, RedriveStatus: "NOT_REDRIVABLE"}
		if status != "RUNNING" {
			e.StopDate = start.Add(stop)
			e.Output = `{}`
		}
		return e
	}
	var (
		// Its SUCCEEDED was dropped: the index still shows it RUNNING.
		dropped = exec("dropped", "SUCCEEDED", start, time.Minute)
		// Both events arrived: index and API agree, so it is not even described.
		complete = exec("complete", "SUCCEEDED", start.Add(time.Minute), time.Minute)
		// Still running, and indexed as such.
		running = exec("running", "RUNNING", start.Add(2*time.Minute), 0)
		// Neither event arrived: not in the index at all.
		unknown = exec("unknown", "FAILED", start.Add(3*time.Minute), time.Minute)
		// Ended a few seconds ago: its event is most likely on its way.
		settling = exec("settling", "SUCCEEDED", now.Add(-time.Hour), time.Hour-10*time.Second)
		// Started before the window.
		old = exec("old", "SUCCEEDED", now.Add(-30*time.Hour), time.Minute)
		// Started before the window, ran for a day, and its end was dropped: the index
		// still shows it RUNNING.
		long = exec("long", "SUCCEEDED", now.Add(-40*time.Hour), 24*time.Hour)
	)
	for _, e := range []sfntest.Execution{dropped, complete, running, unknown, settling, old, long} {
		r.fake.Put(e)
	}
	// What EventBridge delivered: everything but dropped's SUCCEEDED and unknown's
	// events, projected into the index.
	deliveredNow := func(e sfntest.Execution, withEnd bool) []domain.Event {
		h := history{exec: e, changes: []change{{status: "RUNNING", redriveState: "NOT_REDRIVABLE"}}}
		if withEnd {
			h.changes = append(h.changes, change{status: e.Status, stop: e.StopDate, output: e.Output, redriveState: e.RedriveStatus})
		}
		return r.delivered(t, []history{h}, false)
	}
	var events []domain.Event
	events = append(events, deliveredNow(dropped, false)...)
	events = append(events, deliveredNow(complete, true)...)
	events = append(events, deliveredNow(running, false)...)
	events = append(events, deliveredNow(old, true)...)
	events = append(events, deliveredNow(long, false)...)
	_, err := r.journal.Append(t.Context(), events)
	require.NoError(t, err)
	emb := sqlitetest.On(t, r.db)
	index := executionindex.NewStore(emb.Models)
	projector := app.NewProjector(emb.Models, emb.Registry, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, projector.Project(t.Context(), events, nil))

	m, err := app.NewReconcileMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	rec, err := app.NewReconciler(app.ReconcileConfig{StateMachineArns: []string{smArn}, Interval: 10 * time.Minute,
		Window: 24 * time.Hour, Grace: time.Minute}, r.source, r.journal, index, r.checkpoints, r.resolver,
		domain.MappingConfig{}, nil, m)
	require.NoError(t, err)
	rec.SetClock(func() time.Time { return now })

	rep, err := rec.Sweep(t.Context())
	require.NoError(t, err)
	assert.Equal(t, app.ReconcileReport{Executions: 5, InIndex: 2, Settling: 1, Open: 1, Described: 3, Appended: 4, Duplicates: 2}, rep)
	assert.ElementsMatch(t, []string{dropped.Arn, unknown.Arn, long.Arn}, r.fake.Described(),
		"only where the index differs from the API, and the open one from before the window")
	want := append(append(deliveredNow(dropped, true), deliveredNow(unknown, true)...), deliveredNow(long, true)...)
	assert.Equal(t, itemsOf(want), r.items(t, sessionsOf(want)), "what EventBridge would have journaled")

	t.Run("a sweep within half an interval of the last is skipped", func(t *testing.T) {
		r.fake.ResetCalls()
		rep, err := rec.Sweep(t.Context())
		require.NoError(t, err)
		assert.Equal(t, 1, rep.Skipped)
		assert.Zero(t, r.fake.Calls(sfntest.OpListExecutions))
	})
	t.Run("the next sweep takes what has settled since, and only that", func(t *testing.T) {
		r.fake.ResetCalls()
		rec.SetClock(func() time.Time { return now.Add(10 * time.Minute) })
		// Project what the sweep appended, as the worker would.
		all, err := r.journal.SessionEvents(t.Context(), "s-dropped", app.SessionEventsQuery{})
		require.NoError(t, err)
		for _, id := range []string{"s-unknown", "s-long"} {
			more, err := r.journal.SessionEvents(t.Context(), id, app.SessionEventsQuery{})
			require.NoError(t, err)
			all = append(all, more...)
		}
		require.NoError(t, projector.Project(t.Context(), all, nil))
		rep, err := rec.Sweep(t.Context())
		require.NoError(t, err)
		assert.Equal(t, []string{settling.Arn}, r.fake.Described(), "past its grace, and EventBridge never delivered it; long is indexed as ended now")
		assert.Zero(t, rep.Open)
		assert.Equal(t, 2, rep.Appended)
		assert.Equal(t, 4, rep.InIndex)
	})
	t.Run("a failing state machine does not stop the others", func(t *testing.T) {
		rec, err := app.NewReconciler(app.ReconcileConfig{StateMachineArns: []string{sfntest.StateMachineArn("gone"), smArn}},
			r.source, r.journal, index, r.checkpoints, r.resolver, domain.MappingConfig{}, nil, nil)
		require.NoError(t, err)
		rec.SetClock(func() time.Time { return now.Add(time.Hour) })
		rep, err := rec.Sweep(t.Context())
		require.ErrorIs(t, err, domain.ErrNotFound)
		assert.Equal(t, 5, rep.Executions)
	})
}

func TestSourceConfig(t *testing.T) {
	var c sfn.SourceConfig
	c.SetDefaults()
	require.NoError(t, c.Validate())
	assert.Equal(t, 10.0, c.RequestsPerSecond)
	assert.Equal(t, 1000, c.PageSize)

	err := (&sfn.SourceConfig{RequestsPerSecond: -1, Burst: 0, PageSize: 1001, MaxAttempts: 0}).Validate()
	require.Error(t, err)
	for _, want := range []string{"RequestsPerSecond", "Burst", "PageSize", "MaxAttempts"} {
		assert.Contains(t, err.Error(), want)
	}
	_, err = sfn.NewExecutionSource(sfn.SourceConfig{}, nil, nil, nil)
	require.Error(t, err)
}

func TestLimiterPacesAfterABurst(t *testing.T) {
	l := sfn.NewLimiter(2, 3) // 500ms apart, 3 at once
	clock := &fakeClock{now: t0}
	l.SetClock(clock.Now, clock.Sleep)
	var waits []time.Duration
	for range 6 {
		d, err := l.Wait(t.Context())
		require.NoError(t, err)
		waits = append(waits, d)
	}
	assert.Equal(t, []time.Duration{0, 0, 0, 500 * time.Millisecond, 500 * time.Millisecond, 500 * time.Millisecond}, waits)

	clock.mu.Lock()
	clock.now = clock.now.Add(10 * time.Second) // a pause refills the burst
	clock.mu.Unlock()
	for range 3 {
		d, err := l.Wait(t.Context())
		require.NoError(t, err)
		assert.Zero(t, d)
	}
	d, err := l.Wait(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 500*time.Millisecond, d)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = l.Wait(ctx)
	require.True(t, errors.Is(err, context.Canceled))
}

// The fake's client is a real SDK client: check it really speaks to the fake.
func TestFakeAPIAnswersTheSDK(t *testing.T) {
	fake := sfntest.New(t)
	hs := histories(3)
	for _, h := range hs {
		fake.Put(h.exec)
	}
	out, err := fake.Client().ListExecutions(t.Context(), &awssfn.ListExecutionsInput{StateMachineArn: &smArn})
	require.NoError(t, err)
	require.Len(t, out.Executions, 3)
	assert.Equal(t, hs[2].exec.Arn, *out.Executions[0].ExecutionArn, "newest first")
	assert.True(t, hs[2].exec.StartDate.Equal(*out.Executions[0].StartDate), "dates to the millisecond through epoch-seconds floats")
}
