package storetest

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/agentstats"
	"github.com/agentwatch/agentwatch/projections/executionindex"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// TestProjection runs the read-model cases: atomic commits under version checks,
// exactly one winner among concurrent writers, the index rank guard, query order and
// pagination, stats deltas, stuck-entry scheduling, checkpoints in commits.
func TestProjection(t *testing.T, newStores Factory) {
	t.Run("ConflictRollsBackEverything", func(t *testing.T) { testConflictRollsBack(t, newStores(t)) })
	t.Run("ConcurrentCommitsOneWinner", func(t *testing.T) { testConcurrentCommits(t, newStores(t)) })
	t.Run("IndexRankGuard", func(t *testing.T) { testRankGuard(t, newStores(t)) })
	t.Run("IndexQuery", func(t *testing.T) { testIndexQuery(t, newStores(t)) })
	t.Run("StatsDeltasSum", func(t *testing.T) { testStatsDeltas(t, newStores(t)) })
	t.Run("StatsRange", func(t *testing.T) { testStatsRange(t, newStores(t)) })
	t.Run("StuckScheduling", func(t *testing.T) { testStuck(t, newStores(t)) })
	t.Run("CheckpointInCommit", func(t *testing.T) { testCheckpointInCommit(t, newStores(t)) })
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

func execItem(arn, agent string, status domain.ExecStatus, redrives int, start time.Time) executionindex.Item {
	return executionindex.Item{
		ExecutionArn: arn, AgentName: agent, Status: string(status), StartDate: domain.FormatTime(start),
		StateMachineArn: "arn:aws:states:us-east-1:123456789012:stateMachine:" + agent, ExecutionName: arn[len(arn)-6:],
		SessionID: "session-" + arn[len(arn)-6:], RedriveCount: redrives, LastEventAt: domain.FormatTime(start),
		Rank: domain.Rank(status, redrives),
	}
}

func counterDelta(agent, bucket string, kv ...any) agentstats.Delta {
	d := agentstats.Delta{Agent: agent, Bucket: bucket, Counters: agentstats.Counters{}}
	for i := 0; i < len(kv); i += 2 {
		d.Counters[kv[i].(string)] = int64(kv[i+1].(int))
	}
	return d
}

func allStats(t *testing.T, s Stores) []agentstats.Bucket {
	t.Helper()
	var out []agentstats.Bucket
	for _, g := range []string{agentstats.DayPrefix, agentstats.HourPrefix} {
		b, err := s.Projection.Stats(t.Context(), app.StatsQuery{Granularity: g})
		require.NoError(t, err)
		out = append(out, b...)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Agent != out[j].Agent {
			return out[i].Agent < out[j].Agent
		}
		return out[i].Bucket < out[j].Bucket
	})
	return out
}

func testConflictRollsBack(t *testing.T, s Stores) {
	ctx := t.Context()
	a := sessionOf(t, "session-a", "initiated")
	require.NoError(t, s.Projection.Commit(ctx, app.Batch{Sessions: []app.SessionWrite{{Session: a}}}))

	b := sessionOf(t, "session-b", "initiated")
	a2 := sessionOf(t, "session-a", "initiated", "invocationStarted")
	item := execItem("arn:aws:states:us-east-1:123456789012:execution:sm:exec-b", "agent-b", domain.ExecRunning, 0, t0)
	batch := app.Batch{
		// b is new and fine, a is stale (stored at version 1, written as if new).
		Sessions:   []app.SessionWrite{{Session: b}, {Session: a2, Version: 0}},
		Index:      []executionindex.Item{item},
		Stats:      []agentstats.Delta{counterDelta("agent-b", "HOUR#2024-11-04T10", agentstats.CounterStarted, 1)},
		Stuck:      []app.StuckWrite{{Entry: stuck.Entry{SessionID: "session-b", Agent: "agent-b"}, NextCheckMs: 1000}},
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
	_, err = s.Projection.Get(ctx, item.ExecutionArn)
	assert.ErrorIs(t, err, domain.ErrNotFound, "no index item")
	assert.Empty(t, allStats(t, s), "no stats")
	due, err := s.Projection.DueEntries(ctx, stuck.Never, 100)
	require.NoError(t, err)
	assert.Empty(t, due, "no stuck entry")
	cp, err := s.Checkpoints.GetCheckpoint(ctx, "conflict-test")
	require.NoError(t, err)
	assert.Empty(t, cp, "no checkpoint")

	// A stale update (version moved) conflicts as well.
	require.NoError(t, s.Projection.Commit(ctx, app.Batch{Sessions: []app.SessionWrite{{Session: a2, Version: v1}}}))
	err = s.Projection.Commit(ctx, app.Batch{Sessions: []app.SessionWrite{{Session: a2, Version: v1}}})
	require.ErrorIs(t, err, domain.ErrConflict)
	// An update of a session that is not stored conflicts.
	err = s.Projection.Commit(ctx, app.Batch{Sessions: []app.SessionWrite{{Session: sessionOf(t, "session-c", "initiated"), Version: v1}}})
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
	for round, names := range [][]string{
		{"initiated", "invocationStarted"},                       // a new session: version 0
		{"initiated", "invocationStarted", "invocationSucceded"}, // an update at the stored version
	} {
		t.Run(fmt.Sprintf("round %d", round), func(t *testing.T) {
			before := load()
			sess := sessionOf(t, "session-race", names...)
			start := make(chan struct{})
			errs := make([]error, workers)
			var wg sync.WaitGroup
			for i := range workers {
				wg.Go(func() {
					<-start
					errs[i] = s.Projection.Commit(ctx, app.Batch{
						Sessions: []app.SessionWrite{{Session: sess, Version: before.Version}},
						Stats:    []agentstats.Delta{counterDelta("race-agent", "DAY#2024-11-04", agentstats.CounterStarted, 1)},
					})
				})
			}
			close(start)
			wg.Wait()
			wins := 0
			for _, err := range errs {
				if err == nil {
					wins++
					continue
				}
				assert.ErrorIs(t, err, domain.ErrConflict)
			}
			assert.Equal(t, 1, wins, "exactly one commit succeeds")
			stats, err := s.Projection.Stats(ctx, app.StatsQuery{AgentName: "race-agent", Granularity: agentstats.DayPrefix})
			require.NoError(t, err)
			require.Len(t, stats, 1)
			assert.Equal(t, int64(round+1), stats[0].Counters[agentstats.CounterStarted], "the counter moved once per winning commit")
			after := load()
			assert.NotEqual(t, before.Version, after.Version)
			assert.True(t, after.Session.Equal(&sess))
		})
	}
}

func testRankGuard(t *testing.T, s Stores) {
	ctx := t.Context()
	arn := "arn:aws:states:us-east-1:123456789012:execution:sm:exec-1"
	commit := func(it executionindex.Item) {
		t.Helper()
		require.NoError(t, s.Projection.Commit(ctx, app.Batch{Index: []executionindex.Item{it}}))
	}
	get := func() executionindex.Item {
		t.Helper()
		it, err := s.Projection.Get(ctx, arn)
		require.NoError(t, err)
		return it
	}
	_, err := s.Projection.Get(ctx, arn)
	require.ErrorIs(t, err, domain.ErrNotFound)

	running := execItem(arn, "agent-a", domain.ExecRunning, 0, t0)
	commit(running)
	got := get()
	assert.True(t, executionindex.Equal(running, got), "got %+v", got)
	assert.NotEmpty(t, got.IndexedAt, "indexedAt is stamped")

	succeeded := execItem(arn, "agent-a", domain.ExecSucceeded, 0, t0)
	stop := domain.FormatTime(t0.Add(45 * time.Second))
	d := 45.0
	succeeded.StopDate, succeeded.DurationSeconds = stop, &d
	commit(succeeded)
	assert.True(t, executionindex.Equal(succeeded, get()))

	commit(running) // a late RUNNING
	assert.True(t, executionindex.Equal(succeeded, get()), "a late RUNNING never overwrites a terminal status")

	failed := execItem(arn, "agent-a", domain.ExecFailed, 0, t0)
	commit(failed) // higher rank within the attempt: resolves an impossible tie the same way
	assert.True(t, executionindex.Equal(failed, get()))

	redriven := execItem(arn, "agent-a", domain.ExecRunning, 1, t0)
	commit(redriven)
	assert.True(t, executionindex.Equal(redriven, get()), "a redrive reopens")

	commit(succeeded) // the first attempt's status, late
	assert.True(t, executionindex.Equal(redriven, get()))

	same := redriven
	same.LastEventAt = domain.FormatTime(t0.Add(time.Minute))
	commit(same) // equal rank replaces
	assert.True(t, executionindex.Equal(same, get()))

	page, err := s.Projection.Query(ctx, executionindex.Query{Status: string(domain.ExecSucceeded)})
	require.NoError(t, err)
	assert.Empty(t, page.Items, "the status index follows the item")
	page, err = s.Projection.Query(ctx, executionindex.Query{Status: string(domain.ExecRunning)})
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	assert.True(t, executionindex.Equal(same, page.Items[0]))
}

func testIndexQuery(t *testing.T, s Stores) {
	ctx := t.Context()
	agents := []string{"agent-a", "agent-b", "agent-c"}
	statuses := []domain.ExecStatus{domain.ExecRunning, domain.ExecSucceeded, domain.ExecFailed, domain.ExecTimedOut}
	var all []executionindex.Item
	for i := range 45 {
		// Every third pair shares a start date: the ARN breaks the tie.
		start := t0.Add(time.Duration(i/2*17) * time.Minute)
		arn := fmt.Sprintf("arn:aws:states:us-east-1:123456789012:execution:sm:ex%04d", (i*7919)%10000)
		all = append(all, execItem(arn, agents[i%3], statuses[i%4], 0, start))
	}
	// Committed in a few batches.
	for i := 0; i < len(all); i += 10 {
		require.NoError(t, s.Projection.Commit(ctx, app.Batch{Index: all[i:min(i+10, len(all))]}))
	}

	expect := func(q executionindex.Query) []executionindex.Item {
		var out []executionindex.Item
		for i := range all {
			if q.Match(&all[i]) {
				out = append(out, all[i])
			}
		}
		sort.Slice(out, func(i, j int) bool {
			a, b := out[i], out[j]
			less := a.StartDate < b.StartDate || (a.StartDate == b.StartDate && a.ExecutionArn < b.ExecutionArn)
			if q.Ascending {
				return less
			}
			return !less
		})
		return out
	}
	mid, late := t0.Add(60*time.Minute), t0.Add(240*time.Minute)
	cases := []struct {
		name string
		q    executionindex.Query
	}{
		{"everything, newest first", executionindex.Query{}},
		{"everything, oldest first", executionindex.Query{Ascending: true}},
		{"by agent (AgentDateIndex)", executionindex.Query{AgentName: "agent-b"}},
		{"by status (StatusDateIndex)", executionindex.Query{Status: "FAILED"}},
		{"by agent and status", executionindex.Query{AgentName: "agent-a", Status: "RUNNING"}},
		{"by agent over a date range", executionindex.Query{AgentName: "agent-c", From: mid, To: late}},
		{"by status from a date, oldest first", executionindex.Query{Status: "SUCCEEDED", From: mid, Ascending: true}},
		{"up to a date", executionindex.Query{To: mid}},
		{"range bounds are inclusive", executionindex.Query{From: t0, To: t0}},
		{"unknown agent", executionindex.Query{AgentName: "nobody"}},
	}
	for _, tc := range cases {
		for _, limit := range []int{1, 4, 50} {
			t.Run(fmt.Sprintf("%s, pages of %d", tc.name, limit), func(t *testing.T) {
				want := expect(tc.q)
				q := tc.q
				q.Limit = limit
				var got []executionindex.Item
				for pages := 0; ; pages++ {
					require.Less(t, pages, len(all)+2, "pagination does not end")
					page, err := s.Projection.Query(ctx, q)
					require.NoError(t, err)
					assert.LessOrEqual(t, len(page.Items), limit)
					got = append(got, page.Items...)
					if page.NextCursor == "" {
						break
					}
					q.Cursor = page.NextCursor
				}
				require.Len(t, got, len(want))
				for i := range want {
					assert.True(t, executionindex.Equal(want[i], got[i]), "item %d: want %s got %s", i, want[i].ExecutionArn, got[i].ExecutionArn)
				}
			})
		}
	}

	t.Run("invalid query", func(t *testing.T) {
		_, err := s.Projection.Query(ctx, executionindex.Query{Status: "DONE"})
		assert.ErrorIs(t, err, domain.ErrInvalid)
		_, err = s.Projection.Query(ctx, executionindex.Query{Limit: executionindex.MaxLimit + 1})
		assert.ErrorIs(t, err, domain.ErrInvalid)
	})
	t.Run("default limit", func(t *testing.T) {
		page, err := s.Projection.Query(ctx, executionindex.Query{})
		require.NoError(t, err)
		assert.Len(t, page.Items, min(len(all), executionindex.DefaultLimit))
	})
}

func testStatsDeltas(t *testing.T, s Stores) {
	ctx := t.Context()
	const hour, day = "HOUR#2024-11-04T10", "DAY#2024-11-04"
	commit := func(ds ...agentstats.Delta) {
		t.Helper()
		require.NoError(t, s.Projection.Commit(ctx, app.Batch{Stats: ds}))
	}
	commit(counterDelta("agent-a", hour, "started", 1, "status.RUNNING", 1),
		counterDelta("agent-a", day, "started", 1, "status.RUNNING", 1))
	commit(counterDelta("agent-a", hour, "started", 1, "status.RUNNING", 1))
	commit(counterDelta("agent-a", hour, "status.RUNNING", -1, "status.SUCCEEDED", 1, "dur.12", 1),
		counterDelta("agent-b", hour, "started", 1))

	want := []agentstats.Bucket{
		{Agent: "agent-a", Bucket: day, Counters: agentstats.Counters{"started": 1, "status.RUNNING": 1}},
		{Agent: "agent-a", Bucket: hour, Counters: agentstats.Counters{"started": 2, "status.RUNNING": 1, "status.SUCCEEDED": 1, "dur.12": 1}},
		{Agent: "agent-b", Bucket: hour, Counters: agentstats.Counters{"started": 1}},
	}
	assert.Equal(t, want, allStats(t, s))

	// Counters that reach zero disappear, and so do buckets with none left.
	commit(counterDelta("agent-a", hour, "status.RUNNING", -1, "status.SUCCEEDED", 1),
		counterDelta("agent-b", hour, "started", -1))
	want[1].Counters = agentstats.Counters{"started": 2, "status.SUCCEEDED": 2, "dur.12": 1}
	assert.Equal(t, want[:2], allStats(t, s))

	hourOnly, err := s.Projection.Stats(ctx, app.StatsQuery{AgentName: "agent-a", Granularity: agentstats.HourPrefix})
	require.NoError(t, err)
	assert.Equal(t, want[1:2], hourOnly)
	st := agentstats.StatsOf(hourOnly[0].Agent, hourOnly[0].Bucket, hourOnly[0].Counters)
	assert.Equal(t, int64(2), st.Started)
	assert.Equal(t, int64(2), st.Statuses["SUCCEEDED"])
}

func testStatsRange(t *testing.T, s Stores) {
	ctx := t.Context()
	var ds []agentstats.Delta
	for _, agent := range []string{"agent-a", "agent-b"} {
		for _, h := range []string{"HOUR#2024-11-04T09", "HOUR#2024-11-04T10", "HOUR#2024-11-04T11", "HOUR#2024-11-05T00"} {
			ds = append(ds, counterDelta(agent, h, "started", 1))
		}
		for _, d := range []string{"DAY#2024-11-03", "DAY#2024-11-04", "DAY#2024-11-05"} {
			ds = append(ds, counterDelta(agent, d, "started", 2))
		}
	}
	require.NoError(t, s.Projection.Commit(ctx, app.Batch{Stats: ds}))
	keys := func(bs []agentstats.Bucket) []string {
		var out []string
		for _, b := range bs {
			out = append(out, b.Agent+" "+b.Bucket)
		}
		return out
	}
	at := func(h, m int) time.Time { return time.Date(2024, 11, 4, h, m, 0, 0, time.UTC) }
	cases := []struct {
		name string
		q    app.StatsQuery
		want []string
	}{
		{"one agent's hours", app.StatsQuery{AgentName: "agent-a", Granularity: agentstats.HourPrefix},
			[]string{"agent-a HOUR#2024-11-04T09", "agent-a HOUR#2024-11-04T10", "agent-a HOUR#2024-11-04T11", "agent-a HOUR#2024-11-05T00"}},
		{"hours starting in [10:00, 11:00]", app.StatsQuery{AgentName: "agent-b", Granularity: agentstats.HourPrefix, From: at(10, 0), To: at(11, 0)},
			[]string{"agent-b HOUR#2024-11-04T10", "agent-b HOUR#2024-11-04T11"}},
		{"a bucket starting before From is out", app.StatsQuery{AgentName: "agent-a", Granularity: agentstats.HourPrefix, From: at(10, 30), To: at(11, 59)},
			[]string{"agent-a HOUR#2024-11-04T11"}},
		{"all agents' days from a day", app.StatsQuery{Granularity: agentstats.DayPrefix, From: at(0, 0)},
			[]string{"agent-a DAY#2024-11-04", "agent-a DAY#2024-11-05", "agent-b DAY#2024-11-04", "agent-b DAY#2024-11-05"}},
		{"days up to a time within a day", app.StatsQuery{AgentName: "agent-a", Granularity: agentstats.DayPrefix, To: at(12, 0)},
			[]string{"agent-a DAY#2024-11-03", "agent-a DAY#2024-11-04"}},
		{"unknown agent", app.StatsQuery{AgentName: "nobody", Granularity: agentstats.DayPrefix}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Projection.Stats(ctx, tc.q)
			require.NoError(t, err)
			assert.Equal(t, tc.want, keys(got))
		})
	}
}

func testStuck(t *testing.T, s Stores) {
	ctx := t.Context()
	entry := func(id string) stuck.Entry {
		return stuck.Entry{SessionID: id, Agent: "agent-a", LastStatus: domain.StatusBackgroundTaskStarted,
			LastEventMs: t0.UnixMilli(), Stage: domain.StageBackgroundTask, StageStartMs: t0.UnixMilli(), Outcome: domain.OutcomeInProgress}
	}
	require.NoError(t, s.Projection.Commit(ctx, app.Batch{Stuck: []app.StuckWrite{
		{Entry: entry("s1"), NextCheckMs: 100},
		{Entry: entry("s2"), NextCheckMs: 200},
		{Entry: entry("s3"), NextCheckMs: stuck.Never},
		{Entry: entry("s0"), NextCheckMs: 200},
	}}))

	ids := func(ds []app.DueEntry) []string {
		var out []string
		for _, d := range ds {
			out = append(out, fmt.Sprintf("%s@%d", d.Entry.SessionID, d.NextCheckMs))
		}
		return out
	}
	due, err := s.Projection.DueEntries(ctx, 150, 10)
	require.NoError(t, err)
	assert.Equal(t, []string{"s1@100"}, ids(due))
	assert.Equal(t, entry("s1"), due[0].Entry)

	due, err = s.Projection.DueEntries(ctx, 200, 10)
	require.NoError(t, err)
	assert.Len(t, due, 3)
	assert.Equal(t, "s1@100", ids(due)[0], "earliest first")
	due, err = s.Projection.DueEntries(ctx, 200, 1)
	require.NoError(t, err)
	assert.Equal(t, []string{"s1@100"}, ids(due), "limit")

	require.NoError(t, s.Projection.SetNextCheck(ctx, "s1", 100, 300))
	err = s.Projection.SetNextCheck(ctx, "s1", 100, 400)
	require.ErrorIs(t, err, domain.ErrConflict, "the entry moved since it was read")
	err = s.Projection.SetNextCheck(ctx, "nobody", 100, 400)
	require.ErrorIs(t, err, domain.ErrConflict)
	due, err = s.Projection.DueEntries(ctx, 250, 10)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"s0@200", "s2@200"}, ids(due))

	// A commit rewrites the entry: the detector's stale view loses.
	changed := entry("s2")
	changed.LastStatus = domain.StatusBackgroundTaskCompleted
	require.NoError(t, s.Projection.Commit(ctx, app.Batch{Stuck: []app.StuckWrite{{Entry: changed, NextCheckMs: 250}}}))
	require.ErrorIs(t, s.Projection.DeleteEntry(ctx, "s2", 200), domain.ErrConflict)
	require.NoError(t, s.Projection.DeleteEntry(ctx, "s2", 250))
	require.ErrorIs(t, s.Projection.DeleteEntry(ctx, "s2", 250), domain.ErrConflict, "already gone")

	// A commit deletes an entry.
	require.NoError(t, s.Projection.Commit(ctx, app.Batch{Stuck: []app.StuckWrite{{Entry: entry("s0"), Delete: true}}}))

	open, err := s.Projection.OpenEntries(ctx)
	require.NoError(t, err)
	sort.Slice(open, func(i, j int) bool { return open[i].SessionID < open[j].SessionID })
	assert.Equal(t, []stuck.Entry{entry("s1"), entry("s3")}, open)
	due, err = s.Projection.DueEntries(ctx, stuck.Never-1, 10)
	require.NoError(t, err)
	assert.Equal(t, []string{"s1@300"}, ids(due), "Never is never due")
}

func testCheckpointInCommit(t *testing.T, s Stores) {
	ctx := t.Context()
	require.NoError(t, s.Projection.Commit(ctx, app.Batch{Checkpoint: &app.Checkpoint{Name: "projector", Position: "17"}}))
	cp, err := s.Checkpoints.GetCheckpoint(ctx, "projector")
	require.NoError(t, err)
	assert.Equal(t, "17", cp)

	sess := sessionOf(t, "session-cp", "initiated")
	require.NoError(t, s.Projection.Commit(ctx, app.Batch{
		Sessions:   []app.SessionWrite{{Session: sess}},
		Checkpoint: &app.Checkpoint{Name: "projector", Position: "18"},
	}))
	err = s.Projection.Commit(ctx, app.Batch{
		Sessions:   []app.SessionWrite{{Session: sess}},
		Checkpoint: &app.Checkpoint{Name: "projector", Position: "19"},
	})
	require.True(t, errors.Is(err, domain.ErrConflict))
	cp, err = s.Checkpoints.GetCheckpoint(ctx, "projector")
	require.NoError(t, err)
	assert.Equal(t, "18", cp, "a failed commit leaves the checkpoint")
}
