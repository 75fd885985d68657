package storetest

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
	"github.com/agentwatch/agentwatch/projections/executionindex"
)

// TestEndToEnd folds a shuffled journal with duplicates through the store with the real
// projector — concurrent projectors, pages of random sizes, each committed at once —
// and checks that the stored sessions and every registered read model's rows equal
// those derived from the clean journal.
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
			scanned := FoldJournal(t, s.Journal)
			require.EqualValues(t, len(events), scanned.Events)

			// Then page by page through the projector.
			logger := slog.New(slog.NewTextHandler(io.Discard, nil))
			var wg sync.WaitGroup
			errs := make([]error, workers)
			for w := range workers {
				wg.Go(func() {
					p := app.NewProjector(s.Projection, s.Registry, logger, nil)
					p.SetClock(func() time.Time { return t0 })
					r := rand.New(rand.NewPCG(uint64(w), 1))
					mine := delivered[w*len(delivered)/workers : (w+1)*len(delivered)/workers]
					for i := 0; i < len(mine); {
						n := min(1+r.IntN(400), len(mine)-i)
						if err := p.Project(ctx, mine[i:i+n], nil); err != nil {
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
			CompareWithModel(t, s, want, projections.Env{NowMs: t0.UnixMilli()})
		})
	}
}

// CompareWithModel checks the stored sessions and every registered read model's rows
// against those derived from the model's sessions (transient documents aside, and
// documents compared as JSON with their guard and schedule).
func CompareWithModel(t testing.TB, s Stores, want *projections.Model, env projections.Env) {
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
	ref := want.Derive(s.Registry, env)
	for _, tb := range s.Registry.Tables() {
		if tb.Kind == projections.Counters {
			got, err := s.Projection.ReadCounters(ctx, tb.Name, "", "", "\uffff")
			require.NoError(t, err)
			assert.Equal(t, nonEmpty(ref.CounterRows(tb.Name)), nonEmpty(got), "table %s", tb.Name)
			continue
		}
		wantDocs := settled(s.Registry, tb.Name, ref.Documents(tb.Name))
		gotDocs := settled(s.Registry, tb.Name, AllDocuments(t, s.Projection, tb.Name))
		require.Len(t, gotDocs, len(wantDocs), "table %s", tb.Name)
		for k, w := range wantDocs {
			g, ok := gotDocs[k]
			if !assert.True(t, ok, "table %s: %s missing", tb.Name, k) {
				continue
			}
			assert.Equal(t, w, g, "table %s: %s", tb.Name, k)
		}
	}
}

func nonEmpty(rows []projections.CounterRow) []projections.CounterRow {
	if len(rows) == 0 {
		return nil
	}
	return rows
}

// settled renders the settled documents of rows as JSON, with guard and schedule, by
// key. Execution items leave out indexedAt (the write time).
func settled(reg *projections.Registry, table string, rows []projections.Row) map[string]string {
	out := map[string]string{}
	for _, r := range rows {
		if !reg.Settled(table, r.Doc) {
			continue
		}
		doc := r.Doc
		if it, ok := doc.(*executionindex.Item); ok {
			c := *it
			c.IndexedAt = ""
			doc = &c
		}
		b, _ := json.Marshal(doc)
		out[r.Key] = fmt.Sprintf("%s guard=%d schedule=%d", b, r.Guard, r.Schedule)
	}
	return out
}

// AllDocuments reads every document of a table, page by page.
func AllDocuments(t testing.TB, docs projections.DocumentReader, table string) []projections.Row {
	t.Helper()
	var out []projections.Row
	after := ""
	for {
		rows, err := docs.ListDocuments(t.Context(), table, after, 500)
		require.NoError(t, err)
		out = append(out, rows...)
		if len(rows) < 500 {
			return out
		}
		after = rows[len(rows)-1].Key
	}
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
	sortItems(out)
	return out
}

func sortItems(items []executionindex.Item) {
	for i := 1; i < len(items); i++ {
		for j := i; j > 0 && items[j].ExecutionArn < items[j-1].ExecutionArn; j-- {
			items[j], items[j-1] = items[j-1], items[j]
		}
	}
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

// Snapshot renders every settled row of every registered table of a store: documents as
// JSON with their guard (execution items without indexedAt, the write time), counters by
// row. Schedules are left out: a live run schedules documents at commit time, a rebuild
// at the deadlines still ahead.
func Snapshot(t testing.TB, reg *projections.Registry, store app.ReadModelStore) map[string]string {
	t.Helper()
	st := projections.NewState(reg)
	for _, tb := range reg.Tables() {
		if tb.Kind == projections.Counters {
			rows, err := store.ReadCounters(t.Context(), tb.Name, "", "", "\uffff")
			require.NoError(t, err)
			for _, r := range rows {
				st.Apply(&projections.Changes{Adds: []projections.Add{{Table: tb.Name, Partition: r.Partition, Sort: r.Sort, Counters: r.Counters}}})
			}
			continue
		}
		for _, r := range AllDocuments(t, store, tb.Name) {
			st.Apply(&projections.Changes{Puts: []projections.Put{{Table: tb.Name, Key: r.Key, Doc: r.Doc, Guard: r.Guard}}})
		}
	}
	return StateSnapshot(reg, st)
}

// StateSnapshot renders a state as Snapshot renders a store.
func StateSnapshot(reg *projections.Registry, st *projections.State) map[string]string {
	out := map[string]string{}
	for _, tb := range reg.Tables() {
		for _, r := range st.CounterRows(tb.Name) {
			b, _ := json.Marshal(r.Counters)
			out[tb.Name+"/"+r.Partition+"/"+r.Sort] = string(b)
		}
		for k, v := range settled(reg, tb.Name, st.Documents(tb.Name)) {
			out[tb.Name+"/"+k] = strings.Split(v, " schedule=")[0]
		}
	}
	return out
}
