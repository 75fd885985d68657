package storetest

import (
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
)

// TestJournal runs the journal cases: idempotent appends, duplicates never overwrite,
// every SessionEventsQuery of seed 002, execution items round trip, complete scans.
func TestJournal(t *testing.T, newStores Factory) {
	t.Run("AppendIsIdempotent", func(t *testing.T) { testAppendIdempotent(t, newStores(t)) })
	t.Run("DuplicateNeverOverwrites", func(t *testing.T) { testDuplicateNeverOverwrites(t, newStores(t)) })
	t.Run("SessionEvents", func(t *testing.T) { testSessionEvents(t, newStores(t)) })
	t.Run("ExecutionItemsRoundTrip", func(t *testing.T) { testExecutionRoundTrip(t, newStores(t)) })
	t.Run("ScanIsComplete", func(t *testing.T) { testScanComplete(t, newStores(t)) })
}

// items renders events as journal items: the canonical form to compare.
func items(events []domain.Event) []domain.JournalItem {
	out := make([]domain.JournalItem, len(events))
	for i := range events {
		out[i] = events[i].Item()
	}
	return out
}

func results(n int, r app.AppendResult) []app.AppendResult {
	out := make([]app.AppendResult, n)
	for i := range out {
		out[i] = r
	}
	return out
}

func testAppendIdempotent(t *testing.T, s Stores) {
	ctx := t.Context()
	events := seedEvents(t, "", seedSuccess...)

	res, err := s.Journal.Append(ctx, events[:4])
	require.NoError(t, err)
	assert.Equal(t, results(4, app.Appended), res)

	res, err = s.Journal.Append(ctx, events[:4])
	require.NoError(t, err)
	assert.Equal(t, results(4, app.Duplicate), res, "the same events again")

	// Old, new, and the same new event twice in one call.
	batch := []domain.Event{events[1], events[4], events[5], events[4]}
	res, err = s.Journal.Append(ctx, batch)
	require.NoError(t, err)
	assert.Equal(t, []app.AppendResult{app.Duplicate, app.Appended, app.Appended, app.Duplicate}, res)

	got, err := s.Journal.SessionEvents(ctx, SeedSessionID, app.SessionEventsQuery{})
	require.NoError(t, err)
	assert.Equal(t, items(events), items(got), "each event once, in SK order")

	res, err = s.Journal.Append(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, res)
}

func testDuplicateNeverOverwrites(t *testing.T, s Stores) {
	ctx := t.Context()
	// The seed shows completed and failed at the same timestamp: the same PK and SK.
	completed, failed := seedEvent(t, "taskCompleted", ""), seedEvent(t, "taskFailed", "")
	require.Equal(t, completed.SK, failed.SK)

	res, err := s.Journal.Append(ctx, []domain.Event{completed})
	require.NoError(t, err)
	require.Equal(t, []app.AppendResult{app.Appended}, res)
	res, err = s.Journal.Append(ctx, []domain.Event{failed})
	require.NoError(t, err)
	assert.Equal(t, []app.AppendResult{app.Duplicate}, res)

	got, err := s.Journal.SessionEvents(ctx, SeedSessionID, app.SessionEventsQuery{})
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, completed.Item(), got[0].Item(), "the first write stays")
}

func testSessionEvents(t *testing.T, s Stores) {
	ctx := t.Context()
	success := seedEvents(t, "", seedSuccess...)
	scenario1 := seedEvents(t, "scenario-1", "initiated", "invocationStarted", "invocationFailed")
	scenario2 := seedEvents(t, "scenario-2", "initiated", "invocationStarted", "invocationSucceded", "entrypointStarted", "entrypointFailed")
	scenario3 := seedEvents(t, "scenario-3", "initiated", "invocationStarted", "invocationSucceded", "entrypointStarted", "taskStarted", "taskFailed")
	all := slices.Concat(success, scenario1, scenario2, scenario3)
	// Appended out of order: the order of a query comes from SK.
	shuffled := ShuffleWithDuplicates(7, all)
	_, err := s.Journal.Append(ctx, shuffled)
	require.NoError(t, err)

	rev := func(evs []domain.Event) []domain.Event {
		out := slices.Clone(evs)
		slices.Reverse(out)
		return out
	}
	tenThirty := time.Date(2024, 11, 4, 10, 30, 0, 0, time.UTC)
	cases := []struct {
		name    string
		session string
		q       app.SessionEventsQuery
		want    []domain.Event
	}{
		{"all events in chronological order", SeedSessionID, app.SessionEventsQuery{}, success},
		{"reverse chronological order", SeedSessionID, app.SessionEventsQuery{Descending: true}, rev(success)},
		{"completion events only", SeedSessionID, app.SessionEventsQuery{Status: domain.StatusBackgroundTaskCompleted}, success[5:]},
		{"status that did not occur", SeedSessionID, app.SessionEventsQuery{Status: domain.StatusBackgroundTaskFailed}, nil},
		{"failure events (contains FAILED)", "scenario-3", app.SessionEventsQuery{StatusContains: "FAILED"}, scenario3[5:]},
		{"contains is case-sensitive", "scenario-3", app.SessionEventsQuery{StatusContains: "failed"}, nil},
		{"contains STARTED", "scenario-3", app.SessionEventsQuery{StatusContains: "STARTED"}, []domain.Event{scenario3[1], scenario3[3], scenario3[4]}},
		{"contains INVOCATION, newest first", "scenario-1", app.SessionEventsQuery{StatusContains: "INVOCATION", Descending: true}, rev(scenario1[1:])},
		{"latest 10 events", SeedSessionID, app.SessionEventsQuery{Descending: true, Limit: 10}, rev(success)},
		{"latest 2 events", SeedSessionID, app.SessionEventsQuery{Descending: true, Limit: 2}, rev(success)[:2]},
		{"first 2 events", SeedSessionID, app.SessionEventsQuery{Limit: 2}, success[:2]},
		{"monitoring: after 10:30:00.000, newest first", SeedSessionID, app.SessionEventsQuery{After: tenThirty, Descending: true}, rev(success[1:])},
		{"after the last event", SeedSessionID, app.SessionEventsQuery{After: success[5].Timestamp}, nil},
		{"limit applies after the filter", "scenario-2", app.SessionEventsQuery{StatusContains: "ENTRYPOINT", Descending: true, Limit: 1}, scenario2[4:]},
		{"status and after", "scenario-2", app.SessionEventsQuery{Status: domain.StatusSessionInitiated, After: tenThirty}, nil},
		{"unknown session", "no-such-session", app.SessionEventsQuery{}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Journal.SessionEvents(ctx, tc.session, tc.q)
			require.NoError(t, err)
			assert.Equal(t, items(tc.want), items(got))
		})
	}
}

func testExecutionRoundTrip(t *testing.T, s Stores) {
	ctx := t.Context()
	start := time.Date(2024, 11, 4, 10, 30, 0, 0, time.UTC)
	events := GenerateEvents(3, 40, start)
	var execs []domain.Event
	for _, ev := range events {
		if ev.Status.IsExecution() {
			execs = append(execs, ev)
		}
	}
	require.NotEmpty(t, execs)
	_, err := s.Journal.Append(ctx, execs)
	require.NoError(t, err)
	for _, want := range execs[:10] {
		got, err := s.Journal.SessionEvents(ctx, want.SessionID, app.SessionEventsQuery{Status: want.Status})
		require.NoError(t, err)
		var found bool
		for _, g := range got {
			if g.SK == want.SK {
				found = true
				assert.Equal(t, want.Item(), g.Item())
			}
		}
		assert.True(t, found, "execution event %s/%s", want.SessionID, want.SK)
	}
}

func testScanComplete(t *testing.T, s Stores) {
	ctx := t.Context()
	start := time.Date(2024, 11, 4, 0, 0, 0, 0, time.UTC)
	events := GenerateEvents(11, 600, start)
	delivered := ShuffleWithDuplicates(12, events)
	// In chunks of varied size, as the ingest path appends.
	for i := 0; i < len(delivered); {
		n := min(1+i%97, len(delivered)-i)
		_, err := s.Journal.Append(ctx, delivered[i:i+n])
		require.NoError(t, err)
		i += n
	}

	byKey := func(evs []domain.Event) []domain.JournalItem {
		out := items(evs)
		sort.Slice(out, func(i, j int) bool {
			if out[i].PK != out[j].PK {
				return out[i].PK < out[j].PK
			}
			return out[i].SK < out[j].SK
		})
		return out
	}
	// However many parts it is read in (0: the store's default), every event once.
	var scanned []domain.Event
	for _, parallel := range []int{0, 1, 3, 16} {
		scanned = scanned[:0]
		batches := 0
		require.NoError(t, s.Journal.Scan(ctx, app.ScanOptions{Parallel: parallel}, func(batch []domain.Event) error {
			batches++
			scanned = append(scanned, batch...)
			return nil
		}), "parallel %d", parallel)
		assert.Positive(t, batches, "parallel %d", parallel)
		require.Len(t, scanned, len(events), "every event once, parallel %d", parallel)
		assert.Equal(t, byKey(events), byKey(scanned), "parallel %d", parallel)
	}
	err := s.Journal.Scan(ctx, app.ScanOptions{Parallel: -1}, func([]domain.Event) error { return nil })
	var fe *domain.FieldError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "parallel", fe.Field)

	// The fold of the scan is the fold of the events.
	want, got := projections.NewModel(), projections.NewModel()
	for i := range events {
		want.Apply(&events[i])
	}
	for i := range scanned {
		got.Apply(&scanned[i])
	}
	require.Equal(t, want.Len(), got.Len())
	for _, ws := range want.Sessions() {
		assert.True(t, ws.Equal(got.Session(ws.ID)), "session %s", ws.ID)
	}

	// A failing callback stops the scan with its error.
	stop := assert.AnError
	err = s.Journal.Scan(ctx, app.ScanOptions{}, func([]domain.Event) error { return stop })
	require.ErrorIs(t, err, stop)

	// An empty session id prefix must not match others.
	got2, err := s.Journal.SessionEvents(ctx, strings.TrimSuffix(events[0].SessionID, "0"), app.SessionEventsQuery{})
	require.NoError(t, err)
	assert.Empty(t, got2)
}
