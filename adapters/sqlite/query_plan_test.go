package sqlite

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/projections/executionindex"
)

// TestExecutionPagesWalkAnIndexRange checks the plan of every shape of listing query:
// SQLite must seek into an index at the cursor and walk it in order, never scan a whole
// index or table, nor sort, so that a page deep in a large index costs what the first
// page does. (Benchmarks show the speed; the plan is what makes it.)
func TestExecutionPagesWalkAnIndexRange(t *testing.T) {
	ctx := t.Context()
	db, err := Open(ctx, t.TempDir(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	start := time.Date(2024, 11, 4, 10, 0, 0, 0, time.UTC)
	var items []executionindex.Item
	for i := range 500 {
		items = append(items, executionindex.Item{
			ExecutionArn: fmt.Sprintf("arn:aws:states:us-east-1:123456789012:execution:agent-%d:%04d", i%5, i),
			AgentName:    fmt.Sprintf("agent-%d", i%5), Status: []string{"SUCCEEDED", "FAILED", "RUNNING"}[i%3],
			StartDate: start.Add(time.Duration(i/3) * time.Second).Format("2006-01-02T15:04:05.000Z"), SessionID: fmt.Sprint(i),
		})
	}
	store := NewReadModelStore(db, 1)
	require.NoError(t, store.BulkLoad(ctx, 1, app.GenerationOf(nil, items, nil, nil)))
	cursor := executionindex.EncodeCursor(&items[250])

	for _, agent := range []string{"", "agent-1"} {
		for _, status := range []string{"", "FAILED"} {
			for _, bounds := range [][2]time.Time{{}, {start.Add(time.Minute), time.Time{}}, {time.Time{}, start.Add(2 * time.Minute)},
				{start.Add(time.Minute), start.Add(2 * time.Minute)}} {
				for _, asc := range []bool{false, true} {
					q := executionindex.Query{AgentName: agent, Status: status, From: bounds[0], To: bounds[1], Ascending: asc, Cursor: cursor}
					if agent != "" && status != "" {
						continue // one equality picks the index; the other filters its range
					}
					name := fmt.Sprintf("agent=%q status=%q from=%v to=%v asc=%v", agent, status, !bounds[0].IsZero(), !bounds[1].IsZero(), asc)
					t.Run(name, func(t *testing.T) {
						require.NoError(t, q.Normalize())
						query, args, err := executionsQuery(tablesOf(1), q)
						require.NoError(t, err)
						rows, err := db.read.QueryContext(ctx, `EXPLAIN QUERY PLAN `+query, args...)
						require.NoError(t, err)
						defer rows.Close()
						var plan []string
						for rows.Next() {
							var id, parent, unused int
							var detail string
							require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
							plan = append(plan, detail)
						}
						require.NoError(t, rows.Err())
						all := strings.Join(plan, "; ")
						assert.Contains(t, all, "SEARCH", all)
						assert.Contains(t, all, "(start_date,execution_arn)", "the cursor bounds the index range: %s", all)
						assert.NotContains(t, all, "SCAN", all)
						assert.NotContains(t, all, "TEMP B-TREE", all)
					})
				}
			}
		}
	}

	// The pages are right whichever bound is dropped: from a cursor inside and outside
	// the date range, every matching item after the cursor once, in order.
	for _, c := range []int{0, 100, 250, 400} {
		for _, bounds := range [][2]time.Time{{}, {start.Add(time.Minute), time.Time{}}, {time.Time{}, start.Add(2 * time.Minute)},
			{start.Add(time.Minute), start.Add(2 * time.Minute)}} {
			for _, asc := range []bool{false, true} {
				at := &items[c]
				key := func(it *executionindex.Item) string { return it.StartDate + " " + it.ExecutionArn }
				var want []string
				for i := range items {
					it := &items[i]
					d, _ := time.Parse("2006-01-02T15:04:05.000Z", it.StartDate)
					if (!bounds[0].IsZero() && d.Before(bounds[0])) || (!bounds[1].IsZero() && d.After(bounds[1])) {
						continue
					}
					if (asc && key(it) > key(at)) || (!asc && key(it) < key(at)) {
						want = append(want, key(it))
					}
				}
				slices.Sort(want)
				if !asc {
					slices.Reverse(want)
				}
				q := executionindex.Query{Limit: 7, Ascending: asc, From: bounds[0], To: bounds[1], Cursor: executionindex.EncodeCursor(at)}
				var got []string
				for {
					page, err := store.Query(ctx, q)
					require.NoError(t, err)
					for _, it := range page.Items {
						got = append(got, key(&it))
					}
					if page.NextCursor == "" {
						break
					}
					q.Cursor = page.NextCursor
				}
				assert.Equal(t, want, got, "cursor at %d, bounds %v, ascending %v", c, bounds, asc)
			}
		}
	}

	// And the pages are right: every item once, in order, either way.
	for _, asc := range []bool{false, true} {
		var seen []string
		q := executionindex.Query{Limit: 7, Ascending: asc}
		for {
			page, err := store.Query(ctx, q)
			require.NoError(t, err)
			for _, it := range page.Items {
				seen = append(seen, it.StartDate+" "+it.ExecutionArn)
			}
			if page.NextCursor == "" {
				break
			}
			q.Cursor = page.NextCursor
		}
		require.Len(t, seen, len(items))
		for i := 1; i < len(seen); i++ {
			if asc {
				assert.Less(t, seen[i-1], seen[i])
			} else {
				assert.Greater(t, seen[i-1], seen[i])
			}
		}
	}
}
