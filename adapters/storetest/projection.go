package storetest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
	"github.com/agentwatch/agentwatch/projections/agentstats"
	"github.com/agentwatch/agentwatch/projections/executionindex"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// TestProjection runs the read-model cases: atomic commits under version checks,
// exactly one winner among concurrent writers, the document guard, index queries,
// counts and pages, counters, schedules, listing, checkpoints in commits.
func TestProjection(t *testing.T, newStores Factory) {
	t.Run("ConflictRollsBackEverything", func(t *testing.T) { testConflictRollsBack(t, newStores(t)) })
	t.Run("ConcurrentCommitsOneWinner", func(t *testing.T) { testConcurrentCommits(t, newStores(t)) })
	t.Run("DocumentGuard", func(t *testing.T) { testGuard(t, newStores(t)) })
	t.Run("IndexQuery", func(t *testing.T) { testIndexQuery(t, newStores(t)) })
	t.Run("Counters", func(t *testing.T) { testCounters(t, newStores(t)) })
	t.Run("CountersRange", func(t *testing.T) { testCountersRange(t, newStores(t)) })
	t.Run("Schedules", func(t *testing.T) { testSchedules(t, newStores(t)) })
	t.Run("ListDocuments", func(t *testing.T) { testList(t, newStores(t)) })
	t.Run("CheckpointInCommit", func(t *testing.T) { testCheckpointInCommit(t, newStores(t)) })
	t.Run("LargeBatch", func(t *testing.T) { testLargeBatch(t, newStores(t)) })
}

var t0 = time.Date(2024, 11, 4, 10, 30, 0, 0, time.UTC)

// sessionOf folds seed items into a session.
func sessionOf(t *testing.T, id string, names ...string) domain.Session {
	t.Helper()
	var s domain.Session
	for _, ev := range seedEvents(t, id, names...) {
		s.Apply(&ev)
	}
	return s
}

func execItem(arn, agent string, status domain.ExecStatus, redrives int, start time.Time) *executionindex.Item {
	return &executionindex.Item{
		ExecutionArn: arn, AgentName: agent, Status: string(status), StartDate: domain.FormatTime(start),
		StateMachineArn: "arn:aws:states:us-east-1:123456789012:stateMachine:" + agent, ExecutionName: arn[len(arn)-6:],
		SessionID: "session-" + arn[len(arn)-6:], RedriveCount: redrives, LastEventAt: domain.FormatTime(start),
		Outcome: string(domain.OutcomeInProgress), Rank: domain.Rank(status, redrives),
	}
}

func putItem(it *executionindex.Item) projections.Put {
	return projections.Put{Table: executionindex.Table, Key: it.ExecutionArn, Doc: it, Guard: it.Rank}
}

func add(agent, bucket string, kv ...any) projections.Add {
	a := projections.Add{Table: agentstats.Table, Partition: agent, Sort: bucket, Counters: map[string]int64{}}
	for i := 0; i < len(kv); i += 2 {
		a.Counters[kv[i].(string)] = int64(kv[i+1].(int))
	}
	return a
}

// write commits changes with a fresh session of its own (every commit writes a
// session: that is what guards it).
func write(t *testing.T, s Stores, ch projections.Changes) {
	t.Helper()
	id := fmt.Sprintf("writer-%d", rand.Uint64())
	require.NoError(t, s.Projection.Commit(t.Context(), app.Batch{Sessions: []app.SessionChange{{
		SessionWrite: app.SessionWrite{Session: domain.Session{ID: id}}, Changes: ch}}}))
}

func allStats(t *testing.T, s Stores) []agentstats.Bucket {
	t.Helper()
	b, err := agentstats.NewStore(s.Projection).Stats(t.Context(), app.StatsQuery{})
	require.NoError(t, err)
	return b
}

func testConflictRollsBack(t *testing.T, s Stores) {
	ctx := t.Context()
	a := sessionOf(t, "session-a", "initiated")
	require.NoError(t, s.Projection.Commit(ctx, app.Batch{Sessions: []app.SessionChange{{SessionWrite: app.SessionWrite{Session: a}}}}))

	b := sessionOf(t, "session-b", "initiated")
	a2 := sessionOf(t, "session-a", "initiated", "invocationStarted")
	item := execItem("arn:aws:states:us-east-1:123456789012:execution:sm:exec-b", "agent-b", domain.ExecRunning, 0, t0)
	entry := &stuck.Entry{SessionID: "session-b", Agent: "agent-b"}
	batch := app.Batch{
		// b is new and fine, a is stale (stored at version 1, written as if new).
		Sessions: []app.SessionChange{
			{SessionWrite: app.SessionWrite{Session: b}, Changes: projections.Changes{
				Puts: []projections.Put{putItem(item), {Table: stuck.Table, Key: "session-b", Doc: entry, Schedule: 1000}},
				Adds: []projections.Add{add("agent-b", "HOUR#2024-11-04T10", agentstats.CounterStarted, 1)}}},
			{SessionWrite: app.SessionWrite{Session: a2, Version: 0}},
		},
		Checkpoint: &app.Checkpoint{Name: "conflict-test", Position: "42"},
	}
	err := s.Projection.Commit(ctx, batch)
	require.ErrorIs(t, err, domain.ErrConflict)

	loaded, err := s.Projection.LoadSessions(ctx, []string{"session-a", "session-b"})
	require.NoError(t, err)
	assert.NotContains(t, loaded, "session-b", "the new session of a failed commit is not stored")
	require.Contains(t, loaded, "session-a")
	v1 := loaded["session-a"].Version
	assert.NotZero(t, v1, "a stored session has a version (its value is the store's business)")
	storedA := loaded["session-a"].Session
	assert.True(t, storedA.Equal(&a), "the stored session is unchanged")
	_, err = s.Projection.GetDocument(ctx, executionindex.Table, item.ExecutionArn)
	assert.ErrorIs(t, err, domain.ErrNotFound, "no document")
	assert.Empty(t, allStats(t, s), "no counters")
	due, err := detector(s).DueEntries(ctx, stuck.Never-1, 100)
	require.NoError(t, err)
	assert.Empty(t, due, "no scheduled document")
	cp, err := s.Checkpoints.GetCheckpoint(ctx, "conflict-test")
	require.NoError(t, err)
	assert.Empty(t, cp, "no checkpoint")

	// A stale update (version moved) conflicts as well.
	up := app.Batch{Sessions: []app.SessionChange{{SessionWrite: app.SessionWrite{Session: a2, Version: v1}}}}
	require.NoError(t, s.Projection.Commit(ctx, up))
	require.ErrorIs(t, s.Projection.Commit(ctx, up), domain.ErrConflict)
	// An update of a session that is not stored conflicts.
	err = s.Projection.Commit(ctx, app.Batch{Sessions: []app.SessionChange{{SessionWrite: app.SessionWrite{
		Session: sessionOf(t, "session-c", "initiated"), Version: v1}}}})
	require.ErrorIs(t, err, domain.ErrConflict)

	loaded, err = s.Projection.LoadSessions(ctx, []string{"session-a", "session-c"})
	require.NoError(t, err)
	assert.NotEqual(t, v1, loaded["session-a"].Version, "a commit moves the version")
	storedA = loaded["session-a"].Session
	assert.True(t, storedA.Equal(&a2))
	assert.NotContains(t, loaded, "session-c")
}

func testConcurrentCommits(t *testing.T, s Stores) {
	ctx := t.Context()
	const workers = 20
	load := func() app.VersionedSession {
		t.Helper()
		loaded, err := s.Projection.LoadSessions(ctx, []string{"session-race"})
		require.NoError(t, err)
		return loaded["session-race"]
	}
	base := sessionOf(t, "session-race", "initiated")
	require.NoError(t, s.Projection.Commit(ctx, app.Batch{Sessions: []app.SessionChange{{SessionWrite: app.SessionWrite{Session: base}}}}))
	v := load()

	var wg sync.WaitGroup
	errs := make([]error, workers)
	for i := range workers {
		wg.Go(func() {
			next := v.Session.Clone()
			ev := seedEvent(t, "invocationStarted", "session-race")
			ev.Timestamp = ev.Timestamp.Add(time.Duration(i) * time.Millisecond)
			next.Apply(&ev)
			errs[i] = s.Projection.Commit(ctx, app.Batch{Sessions: []app.SessionChange{{
				SessionWrite: app.SessionWrite{Session: next, Version: v.Version},
				Changes:      projections.Changes{Adds: []projections.Add{add("race-agent", "DAY#2024-11-04", "started", 1)}},
			}}})
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
		} else {
			require.ErrorIs(t, err, domain.ErrConflict)
		}
	}
	assert.Equal(t, 1, won, "exactly one of %d concurrent commits at one version wins", workers)
	stats, err := agentstats.NewStore(s.Projection).Stats(ctx, app.StatsQuery{AgentName: "race-agent", Granularity: agentstats.DayPrefix})
	require.NoError(t, err)
	require.Len(t, stats, 1)
	assert.EqualValues(t, 1, stats[0].Counters["started"], "the winner's counters counted once")
}

// testGuard: a put replaces a stored document only if the stored guard is at most its
// own — across commits, within one batch, and within one session's changes.
func testGuard(t *testing.T, s Stores) {
	ctx := t.Context()
	index := executionindex.NewStore(s.Projection)
	arn := "arn:aws:states:us-east-1:123456789012:execution:sm:guard1"
	status := func() (string, int) {
		t.Helper()
		it, err := index.Get(ctx, arn)
		require.NoError(t, err)
		return it.Status, it.RedriveCount
	}
	for _, step := range []struct {
		status  domain.ExecStatus
		redrive int
		want    domain.ExecStatus
		wantR   int
	}{
		{domain.ExecRunning, 0, domain.ExecRunning, 0},
		{domain.ExecSucceeded, 0, domain.ExecSucceeded, 0},
		{domain.ExecRunning, 0, domain.ExecSucceeded, 0}, // a late RUNNING
		{domain.ExecFailed, 0, domain.ExecFailed, 0},     // a terminal status of higher rank
		{domain.ExecRunning, 1, domain.ExecRunning, 1},   // a redrive reopens
		{domain.ExecRunning, 0, domain.ExecRunning, 1},
	} {
		write(t, s, projections.Changes{Puts: []projections.Put{putItem(execItem(arn, "a", step.status, step.redrive, t0))}})
		st, r := status()
		assert.Equal(t, string(step.want), st)
		assert.Equal(t, step.wantR, r)
	}
	it, err := index.Get(ctx, arn)
	require.NoError(t, err)
	assert.Equal(t, domain.Rank(domain.ExecRunning, 1), it.Rank, "the guard comes back as the item's rank")

	// Several puts of one document in one batch, in any order: the highest guard wins.
	arn2 := "arn:aws:states:us-east-1:123456789012:execution:sm:guard2"
	write(t, s, projections.Changes{Puts: []projections.Put{
		putItem(execItem(arn2, "a", domain.ExecSucceeded, 0, t0)), putItem(execItem(arn2, "a", domain.ExecRunning, 0, t0))}})
	it, err = index.Get(ctx, arn2)
	require.NoError(t, err)
	assert.Equal(t, string(domain.ExecSucceeded), it.Status)
}

// testIndexQuery: listings through every index, merged across partitions, in
// (startDate, key) order both ways, paged with cursors at every page size, with date
// bounds and filters, counted by status and outcome, and found by name.
func testIndexQuery(t *testing.T, s Stores) {
	ctx := t.Context()
	r := rand.New(rand.NewPCG(7, 7))
	outcomes := []domain.Outcome{domain.OutcomeCompleted, domain.OutcomeInProgress, domain.OutcomeBackgroundTaskFailed, domain.OutcomeMissingCompletion}
	var all []*executionindex.Item
	for i := range 60 {
		arn := fmt.Sprintf("arn:aws:states:us-east-1:123456789012:execution:sm:e%05d", i)
		st := domain.ExecStatuses[r.IntN(3)]
		// Ties: several executions share a start.
		it := execItem(arn, fmt.Sprintf("agent-%d", r.IntN(3)), st, 0, t0.Add(time.Duration(r.IntN(20))*time.Minute))
		it.Outcome = string(outcomes[r.IntN(len(outcomes))])
		it.ExecutionName = fmt.Sprintf("name-%d", i%7)
		all = append(all, it)
	}
	var puts []projections.Put
	for _, it := range all {
		puts = append(puts, putItem(it))
	}
	for lo := 0; lo < len(puts); lo += 10 {
		write(t, s, projections.Changes{Puts: puts[lo:min(lo+10, len(puts))]})
	}
	index := executionindex.NewStore(s.Projection)
	from, to := t0.Add(5*time.Minute), t0.Add(14*time.Minute)
	queries := []executionindex.Query{
		{},
		{AgentName: "agent-1"},
		{Status: string(domain.ExecSucceeded)},
		{AgentName: "agent-2", Status: string(domain.ExecRunning)},
		{Outcomes: []string{string(domain.OutcomeMissingCompletion)}},
		{Outcomes: []string{string(domain.OutcomeCompleted), string(domain.OutcomeBackgroundTaskFailed)}},
		{AgentName: "agent-0", Outcomes: []string{string(domain.OutcomeInProgress), string(domain.OutcomeCompleted)}},
		{Status: string(domain.ExecFailed), Outcomes: []string{string(domain.OutcomeCompleted)}},
		{From: from, To: to},
		{AgentName: "agent-1", From: from},
		{Status: string(domain.ExecRunning), To: to},
		{Outcomes: []string{string(domain.OutcomeInProgress)}, From: from, To: to},
	}
	for qi, base := range queries {
		var want []*executionindex.Item
		for _, it := range all {
			if base.AgentName != "" && it.AgentName != base.AgentName || base.Status != "" && it.Status != base.Status ||
				len(base.Outcomes) > 0 && !slices.Contains(base.Outcomes, it.Outcome) ||
				!base.From.IsZero() && it.StartDate < domain.FormatTime(base.From) || !base.To.IsZero() && it.StartDate > domain.FormatTime(base.To) {
				continue
			}
			want = append(want, it)
		}
		for _, asc := range []bool{false, true} {
			sorted := slices.Clone(want)
			sort.Slice(sorted, func(i, j int) bool {
				a, b := sorted[i], sorted[j]
				if a.StartDate != b.StartDate {
					return (a.StartDate < b.StartDate) == asc
				}
				return (a.ExecutionArn < b.ExecutionArn) == asc
			})
			for _, limit := range []int{1, 7, executionindex.MaxLimit} {
				q := base
				q.Ascending, q.Limit = asc, limit
				var got []string
				for pages := 0; ; pages++ {
					require.Less(t, pages, 100)
					page, err := index.Query(ctx, q)
					require.NoError(t, err)
					require.LessOrEqual(t, len(page.Items), limit)
					for _, it := range page.Items {
						got = append(got, it.ExecutionArn)
					}
					if page.NextCursor == "" {
						break
					}
					q.Cursor = page.NextCursor
				}
				wantArns := make([]string, len(sorted))
				for i, it := range sorted {
					wantArns[i] = it.ExecutionArn
				}
				require.Equal(t, wantArns, got, "query %d %+v ascending=%v limit %d", qi, base, asc, limit)
			}
		}
		counts, err := index.Count(ctx, base)
		require.NoError(t, err)
		assert.EqualValues(t, len(want), counts.Total, "query %d total", qi)
		byStatus, byOutcome := map[string]int64{}, map[string]int64{}
		for _, it := range want {
			byStatus[it.Status]++
			byOutcome[it.Outcome]++
		}
		assert.Equal(t, byStatus, counts.ByStatus, "query %d by status", qi)
		assert.Equal(t, byOutcome, counts.ByOutcome, "query %d by outcome", qi)
	}
	named, err := index.ByName(ctx, "name-3", 100)
	require.NoError(t, err)
	n := 0
	for _, it := range all {
		if it.ExecutionName == "name-3" {
			n++
		}
	}
	assert.Len(t, named, n, "found by name")
	_, err = index.Query(ctx, executionindex.Query{Status: "DONE"})
	require.ErrorIs(t, err, domain.ErrInvalid)
	_, err = index.Query(ctx, executionindex.Query{Outcomes: []string{"fine"}})
	require.ErrorIs(t, err, domain.ErrInvalid)
	_, err = index.Query(ctx, executionindex.Query{Cursor: "not-a-cursor"})
	require.ErrorIs(t, err, domain.ErrInvalid)
}

func testCounters(t *testing.T, s Stores) {
	write(t, s, projections.Changes{Adds: []projections.Add{
		add("agent-a", "DAY#2024-11-04", "started", 2, "status.RUNNING", 2),
		add("agent-a", "HOUR#2024-11-04T10", "started", 2),
		add("agent-a", "DAY#2024-11-04", "started", 1), // the same row twice in a batch
		add("agent-b", "DAY#2024-11-04", "error.KeyError: 'x' [#]", 1),
	}})
	write(t, s, projections.Changes{Adds: []projections.Add{
		add("agent-a", "DAY#2024-11-04", "status.RUNNING", -2, "status.SUCCEEDED", 2),
		add("agent-b", "DAY#2024-11-04", "error.KeyError: 'x' [#]", -1),
	}})
	got := allStats(t, s)
	require.Equal(t, []agentstats.Bucket{
		{Agent: "agent-a", Bucket: "DAY#2024-11-04", Counters: agentstats.Counters{"started": 3, "status.SUCCEEDED": 2}},
		{Agent: "agent-a", Bucket: "HOUR#2024-11-04T10", Counters: agentstats.Counters{"started": 2}},
	}, got, "counters sum; one back at zero is gone, and a row with none left")
}

func testCountersRange(t *testing.T, s Stores) {
	ctx := t.Context()
	var adds []projections.Add
	for _, agent := range []string{"a1", "a2"} {
		for h := range 48 {
			at := t0.Add(time.Duration(h) * time.Hour)
			adds = append(adds, add(agent, agentstats.HourKey(at.UnixMilli()), "started", 1), add(agent, agentstats.DayKey(at.UnixMilli()), "started", 1))
		}
	}
	// A session's writes land in one transaction (at most 100 actions on DynamoDB).
	for lo := 0; lo < len(adds); lo += 50 {
		write(t, s, projections.Changes{Adds: adds[lo:min(lo+50, len(adds))]})
	}
	stats := agentstats.NewStore(s.Projection)
	for _, tc := range []struct {
		q       app.StatsQuery
		buckets int
	}{
		{app.StatsQuery{Granularity: agentstats.HourPrefix}, 96},
		{app.StatsQuery{Granularity: agentstats.DayPrefix}, 6},
		{app.StatsQuery{AgentName: "a1", Granularity: agentstats.DayPrefix}, 3},
		{app.StatsQuery{AgentName: "a2", Granularity: agentstats.HourPrefix, From: t0.Truncate(time.Hour).Add(2 * time.Hour), To: t0.Add(5 * time.Hour)}, 4},
		{app.StatsQuery{AgentName: "a2", Granularity: agentstats.HourPrefix, From: t0.Truncate(time.Hour).Add(2*time.Hour + time.Minute), To: t0.Add(5 * time.Hour)}, 3},
		{app.StatsQuery{}, 102},
	} {
		got, err := stats.Stats(ctx, tc.q)
		require.NoError(t, err)
		assert.Len(t, got, tc.buckets, "%+v", tc.q)
		assert.True(t, sort.SliceIsSorted(got, func(i, j int) bool {
			return got[i].Agent < got[j].Agent || got[i].Agent == got[j].Agent && got[i].Bucket < got[j].Bucket
		}))
	}
}

func testSchedules(t *testing.T, s Stores) {
	ctx := t.Context()
	det := detector(s)
	entry := func(id string) *stuck.Entry {
		return &stuck.Entry{SessionID: id, Agent: "a", Stage: domain.StageInvocation}
	}
	sched := func(id string, at int64) projections.Put {
		return projections.Put{Table: stuck.Table, Key: id, Doc: entry(id), Schedule: at}
	}
	write(t, s, projections.Changes{Puts: []projections.Put{sched("s0", stuck.Never), sched("s1", 100), sched("s2", 200), sched("s3", 200)}})
	due, err := det.DueEntries(ctx, 150, 10)
	require.NoError(t, err)
	require.Len(t, due, 1)
	assert.Equal(t, "s1", due[0].Entry.SessionID)
	assert.EqualValues(t, 100, due[0].NextCheckMs)
	due, err = det.DueEntries(ctx, 200, 10)
	require.NoError(t, err)
	require.Len(t, due, 3)
	assert.Equal(t, []string{"s1", "s2", "s3"}, []string{due[0].Entry.SessionID, due[1].Entry.SessionID, due[2].Entry.SessionID})
	due, err = det.DueEntries(ctx, 200, 1)
	require.NoError(t, err)
	require.Len(t, due, 1)

	n, err := det.Reschedule(ctx, []projections.Move{
		{Key: "s1", Prev: 100, Next: 300},
		{Key: "s2", Prev: 999, Next: 400},     // changed meanwhile: skipped
		{Key: "nobody", Prev: 100, Next: 400}, // gone: skipped
		{Key: "s3", Prev: 200, Delete: true},
	})
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	due, err = det.DueEntries(ctx, 350, 10)
	require.NoError(t, err)
	var ids []string
	for _, d := range due {
		ids = append(ids, d.Entry.SessionID)
	}
	assert.Equal(t, []string{"s2", "s1"}, ids, "earliest first; s3 dropped; s0 is never due")
	_, err = s.Projection.GetDocument(ctx, stuck.Table, "s3")
	assert.ErrorIs(t, err, domain.ErrNotFound)
	_, err = s.Projection.GetDocument(ctx, stuck.Table, "s0")
	assert.NoError(t, err, "a document scheduled never is stored, only never due")
	due, err = det.DueEntries(ctx, stuck.Never-1, 10)
	require.NoError(t, err)
	assert.Len(t, due, 2)
	write(t, s, projections.Changes{Deletes: []projections.Delete{{Table: stuck.Table, Key: "s0"}}})
	_, err = s.Projection.GetDocument(ctx, stuck.Table, "s0")
	assert.ErrorIs(t, err, domain.ErrNotFound, "a delete")
}

func testList(t *testing.T, s Stores) {
	ctx := t.Context()
	var puts []projections.Put
	want := map[string]bool{}
	for i := range 37 {
		id := fmt.Sprintf("list-%03d", i)
		want[id] = true
		puts = append(puts, projections.Put{Table: stuck.Table, Key: id, Doc: &stuck.Entry{SessionID: id}, Schedule: int64(i)})
	}
	write(t, s, projections.Changes{Puts: puts})
	got := map[string]bool{}
	after := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 20)
		rows, err := s.Projection.ListDocuments(ctx, stuck.Table, after, 10)
		require.NoError(t, err)
		require.LessOrEqual(t, len(rows), 10)
		for _, r := range rows {
			require.False(t, got[r.Key], "%s listed twice", r.Key)
			got[r.Key] = true
			assert.Equal(t, r.Key, r.Doc.(*stuck.Entry).SessionID)
		}
		if len(rows) < 10 {
			break
		}
		after = rows[len(rows)-1].Key
	}
	assert.Equal(t, want, got, "every document once")
}

func testCheckpointInCommit(t *testing.T, s Stores) {
	ctx := t.Context()
	require.NoError(t, s.Projection.Commit(ctx, app.Batch{Checkpoint: &app.Checkpoint{Name: "projector", Position: "17"}}))
	cp, err := s.Checkpoints.GetCheckpoint(ctx, "projector")
	require.NoError(t, err)
	assert.Equal(t, "17", cp, "a commit of nothing but a checkpoint")
	a := sessionOf(t, "cp-session", "initiated")
	require.NoError(t, s.Projection.Commit(ctx, app.Batch{Sessions: []app.SessionChange{{SessionWrite: app.SessionWrite{Session: a}}},
		Checkpoint: &app.Checkpoint{Name: "projector", Position: "18"}}))
	err = s.Projection.Commit(ctx, app.Batch{Sessions: []app.SessionChange{{SessionWrite: app.SessionWrite{Session: a}}},
		Checkpoint: &app.Checkpoint{Name: "projector", Position: "19"}})
	require.ErrorIs(t, err, domain.ErrConflict)
	cp, err = s.Checkpoints.GetCheckpoint(ctx, "projector")
	require.NoError(t, err)
	assert.Equal(t, "18", cp, "the checkpoint of a failed commit is not stored")
	require.NoError(t, s.Checkpoints.DeleteCheckpoint(ctx, "projector"))
	cp, err = s.Checkpoints.GetCheckpoint(ctx, "projector")
	require.NoError(t, err)
	assert.Empty(t, cp)
}

// testLargeBatch: a batch of more sessions and writes than a DynamoDB transaction holds
// lands whole, every counter summed once.
func testLargeBatch(t *testing.T, s Stores) {
	ctx := t.Context()
	var b app.Batch
	for i := range 120 {
		id := fmt.Sprintf("big-%03d", i)
		it := execItem(fmt.Sprintf("arn:aws:states:us-east-1:123456789012:execution:sm:big%03d", i), "big-agent", domain.ExecRunning, 0, t0)
		b.Sessions = append(b.Sessions, app.SessionChange{SessionWrite: app.SessionWrite{Session: sessionOf(t, id, "initiated")},
			Changes: projections.Changes{Puts: []projections.Put{putItem(it)},
				Adds: []projections.Add{add("big-agent", "DAY#2024-11-04", "started", 1), add("big-agent", "HOUR#2024-11-04T10", "started", 1)}}})
	}
	b.Checkpoint = &app.Checkpoint{Name: "big", Position: "120"}
	require.NoError(t, s.Projection.Commit(ctx, b))
	stats := allStats(t, s)
	require.Len(t, stats, 2)
	for _, bk := range stats {
		assert.EqualValues(t, 120, bk.Counters["started"], bk.Bucket)
	}
	n, err := executionindex.NewStore(s.Projection).Count(ctx, executionindex.Query{AgentName: "big-agent"})
	require.NoError(t, err)
	assert.EqualValues(t, 120, n.Total)
	cp, err := s.Checkpoints.GetCheckpoint(ctx, "big")
	require.NoError(t, err)
	assert.Equal(t, "120", cp)
	ids := make([]string, 120)
	for i := range ids {
		ids[i] = fmt.Sprintf("big-%03d", i)
	}
	loaded, err := s.Projection.LoadSessions(ctx, ids)
	require.NoError(t, err)
	assert.Len(t, loaded, 120)
}
