package sqlite

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
	"github.com/agentwatch/agentwatch/projections/executionindex"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// TestIndexQueriesWalkAnIndexRange checks the plan of every shape of index query:
// SQLite must seek into the index at the cursor and walk it in order, never scan a whole
// index or table, nor sort, so that a page deep in a large index costs what the first
// page does. (Benchmarks show the speed; the plan is what makes it. The pages' contents
// are the contract suite's.)
func TestIndexQueriesWalkAnIndexRange(t *testing.T) {
	ctx := t.Context()
	db, err := Open(ctx, t.TempDir(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	reg, err := app.NewRegistry(app.Config{})
	require.NoError(t, err)
	store := NewReadModelStore(db, reg, 1)
	require.NoError(t, store.CreateGeneration(ctx, 1, reg.Signature()))
	start := time.Date(2024, 11, 4, 10, 0, 0, 0, time.UTC)
	var rows []projections.Row
	for i := range 500 {
		it := &executionindex.Item{
			ExecutionArn: fmt.Sprintf("arn:aws:states:us-east-1:123456789012:execution:agent-%d:%04d", i%5, i),
			AgentName:    fmt.Sprintf("agent-%d", i%5), Status: []string{"SUCCEEDED", "FAILED", "RUNNING"}[i%3],
			StartDate: domain.FormatTime(start.Add(time.Duration(i/3) * time.Second)), SessionID: fmt.Sprint(i),
			Outcome: string(executionindex.Outcomes[i%4]), ExecutionName: fmt.Sprintf("n%d", i%11),
		}
		rows = append(rows, projections.Row{Key: it.ExecutionArn, Doc: it, Guard: 2})
	}
	require.NoError(t, store.BulkLoad(ctx, 1, app.GenerationData{Rows: func(table string) app.TableRows {
		if table == executionindex.Table {
			return app.TableRows{Documents: rows}
		}
		return app.TableRows{}
	}}))
	cursor := &projections.Cursor{Sort: rows[250].Doc.(*executionindex.Item).StartDate, Key: rows[250].Key}
	bounds := [][2]any{{}, {domain.FormatTime(start.Add(time.Minute)), nil}, {nil, domain.FormatTime(start.Add(2 * time.Minute))},
		{domain.FormatTime(start.Add(time.Minute)), domain.FormatTime(start.Add(2 * time.Minute))}}
	for _, ix := range []struct {
		name      string
		partition any
		where     []projections.Filter
	}{
		{executionindex.AgentDateIndex, "agent-1", nil},
		{executionindex.AgentDateIndex, "agent-1", []projections.Filter{{Attr: "status", Values: []any{"FAILED"}}}},
		{executionindex.StatusDateIndex, "FAILED", nil},
		{executionindex.StatusDateIndex, "FAILED", []projections.Filter{{Attr: "outcome", Values: []any{"completed", "in_progress"}}}},
		{executionindex.OutcomeDateIndex, "completed", nil},
		{executionindex.NameDateIndex, "n3", nil},
	} {
		for bi, b := range bounds {
			for _, desc := range []bool{false, true} {
				for _, c := range []*projections.Cursor{nil, cursor} {
					q := projections.IndexQuery{Table: executionindex.Table, Index: ix.name, Partition: ix.partition, Where: ix.where,
						From: b[0], To: b[1], Descending: desc, After: c, Limit: 7}
					t.Run(fmt.Sprintf("%s %v filters=%d bounds=%d desc=%v cursor=%v", ix.name, ix.partition, len(ix.where), bi, desc, c != nil), func(t *testing.T) {
						requireIndexRange(t, store, q)
					})
				}
			}
		}
	}
	t.Run("due entries", func(t *testing.T) {
		requireIndexRange(t, store, projections.IndexQuery{Table: stuck.Table, Index: stuck.DueIndex, To: int64(1000), Limit: 100})
	})
}

func requireIndexRange(t *testing.T, store *ReadModelStore, q projections.IndexQuery) {
	t.Helper()
	_, query, args, err := store.indexQuerySQL(t.Context(), q)
	require.NoError(t, err)
	rows, err := store.db.read.QueryContext(t.Context(), `EXPLAIN QUERY PLAN `+query, args...)
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
	assert.Contains(t, all, "USING INDEX", all)
	if q.After != nil {
		assert.Contains(t, all, ",k)", "the cursor bounds the index range: %s", all)
	}
	assert.NotContains(t, all, "SCAN", all)
	assert.NotContains(t, all, "TEMP B-TREE", all)
}
