package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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

// TestEndToEnd folds a shuffled journal with duplicates through the store, in small
// steps by concurrent projectors (LoadSessions, apply, Commit, retry on conflict), and
// checks that the stored sessions, index items, stats buckets and stuck entries equal
// those of projections.Model over the clean journal.
func TestEndToEnd(t *testing.T, newStores Factory) {
	for _, workers := range []int{1, 4} {
		t.Run(fmt.Sprintf("%d projectors", workers), func(t *testing.T) {
			s := newStores(t)
			ctx := t.Context()
			events := GenerateEvents(uint64(workers), 150, time.Date(2024, 11, 4, 9, 50, 0, 0, time.UTC))
			delivered := ShuffleWithDuplicates(uint64(workers)+100, events)

			want := projections.NewModel()
			for i := range events {
				want.Apply(&events[i])
			}

			// Through the journal first: what a rebuild reads back folds the same.
			_, err := s.Journal.Append(ctx, delivered)
			require.NoError(t, err)
			var scanned []domain.Event
			require.NoError(t, s.Journal.Scan(ctx, app.ScanOptions{}, func(b []domain.Event) error {
				scanned = append(scanned, b...)
				return nil
			}))
			require.Len(t, scanned, len(events))

			// Then step by step through the projection store.
			var wg sync.WaitGroup
			errs := make([]error, workers)
			for w := range workers {
				wg.Go(func() {
					r := rand.New(rand.NewPCG(uint64(w), 1))
					mine := delivered[w*len(delivered)/workers : (w+1)*len(delivered)/workers]
					for i := 0; i < len(mine); {
						n := min(1+r.IntN(16), len(mine)-i)
						if err := projectStep(ctx, s.Projection, mine[i:i+n], t0.UnixMilli()); err != nil {
							errs[w] = err
							return
						}
						i += n
					}
				})
			}
			wg.Wait()
			for _, err := range errs {
				require.NoError(t, err)
			}
			compareWithModel(t, s, want)
		})
	}
}

// projectStep is a minimal projector over the ports: it loads the sessions of events,
// applies them, and commits what changed under the loaded versions, retrying on
// conflict. Entries the detector no longer watches are deleted.
func projectStep(ctx context.Context, store Projection, events []domain.Event, nowMs int64) error {
	byID := map[string][]*domain.Event{}
	var ids []string
	for i := range events {
		id := events[i].SessionID
		if _, ok := byID[id]; !ok {
			ids = append(ids, id)
		}
		byID[id] = append(byID[id], &events[i])
	}
	for attempt := 0; attempt < 100; attempt++ {
		loaded, err := store.LoadSessions(ctx, ids)
		if err != nil {
			return err
		}
		var b app.Batch
		for _, id := range ids {
			before := loaded[id]
			after := before.Session.Clone()
			for _, ev := range byID[id] {
				after.Apply(ev)
			}
			if after.Equal(&before.Session) {
				continue
			}
			b.Sessions = append(b.Sessions, app.SessionWrite{Session: after, Version: before.Version})
			b.Index = executionindex.Changed(&before.Session, &after, b.Index)
			cb, okb := agentstats.ContributionOf(&before.Session)
			ca, oka := agentstats.ContributionOf(&after)
			b.Stats = append(b.Stats, agentstats.Deltas(&cb, okb, &ca, oka)...)
			_, watched := stuck.EntryOf(&before.Session)
			if e, ok := stuck.EntryOf(&after); ok {
				b.Stuck = append(b.Stuck, app.StuckWrite{Entry: e, NextCheckMs: nowMs})
			} else if watched {
				b.Stuck = append(b.Stuck, app.StuckWrite{Entry: e, Delete: true})
			}
		}
		if len(b.Sessions) == 0 {
			return nil
		}
		err = store.Commit(ctx, b)
		if err == nil {
			return nil
		}
		if !errors.Is(err, domain.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("project %d events: too many conflicts", len(events))
}

// compareWithModel checks every read model of s against the in-memory model.
func compareWithModel(t *testing.T, s Stores, want *projections.Model) {
	t.Helper()
	ctx := t.Context()

	var ids []string
	for _, ss := range want.Sessions() {
		ids = append(ids, ss.ID)
	}
	loaded, err := s.Projection.LoadSessions(ctx, ids)
	require.NoError(t, err)
	require.Len(t, loaded, len(ids))
	for _, id := range ids {
		got := loaded[id].Session
		assert.True(t, want.Session(id).Equal(&got), "session %s", id)
		assert.Positive(t, loaded[id].Version)
	}

	wantIndex := want.Index()
	gotIndex := AllItems(t, s.Projection)
	require.Len(t, gotIndex, len(wantIndex))
	for i := range wantIndex {
		assert.True(t, executionindex.Equal(wantIndex[i], gotIndex[i]), "index item %s:\nwant %+v\ngot  %+v", wantIndex[i].ExecutionArn, wantIndex[i], gotIndex[i])
		assert.NotEmpty(t, gotIndex[i].IndexedAt)
		one, err := s.Projection.Get(ctx, wantIndex[i].ExecutionArn)
		require.NoError(t, err)
		assert.True(t, executionindex.Equal(wantIndex[i], one))
	}

	assert.Equal(t, want.Stats(), allStats(t, s))

	open, err := s.Projection.OpenEntries(ctx)
	require.NoError(t, err)
	sort.Slice(open, func(i, j int) bool { return open[i].SessionID < open[j].SessionID })
	assert.Equal(t, want.Stuck(), open)
}

// AllItems reads every execution-index item of r, page by page, sorted by ARN.
func AllItems(t testing.TB, r executionindex.Reader) []executionindex.Item {
	t.Helper()
	var out []executionindex.Item
	q := executionindex.Query{Limit: executionindex.MaxLimit}
	for {
		page, err := r.Query(t.Context(), q)
		require.NoError(t, err)
		out = append(out, page.Items...)
		if page.NextCursor == "" {
			break
		}
		q.Cursor = page.NextCursor
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ExecutionArn < out[j].ExecutionArn })
	return out
}

// FoldJournal folds a whole scan of journal into a model: the reference a rebuild's read
// models must equal.
func FoldJournal(t testing.TB, journal app.JournalScanner) *projections.Model {
	t.Helper()
	m := projections.NewModel()
	require.NoError(t, journal.Scan(t.Context(), app.ScanOptions{}, func(b []domain.Event) error {
		for i := range b {
			m.Apply(&b[i])
		}
		return nil
	}))
	return m
}
