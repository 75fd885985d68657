package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
)

// GetDocument returns the document of key in table; domain.ErrNotFound when
// there is none.
func (s *ReadModelStore) GetDocument(ctx context.Context, table, key string) (projections.Row, error) {
	ts, err := s.tableOf(ctx, table)
	if err != nil {
		return projections.Row{}, err
	}
	st, err := s.db.stmt(ctx, s.db.read, ts.get)
	if err != nil {
		return projections.Row{}, fmt.Errorf("get %s %s: %w", table, key, err)
	}
	rows, err := st.QueryContext(ctx, key)
	if err != nil {
		return projections.Row{}, fmt.Errorf("get %s %s: %w", table, key, err)
	}
	out, err := scanRows(rows, ts)
	if err != nil {
		return projections.Row{}, fmt.Errorf("get %s %s: %w", table, key, err)
	}
	if len(out) == 0 {
		return projections.Row{}, domain.ErrNotFound
	}
	return out[0], nil
}

// ListDocuments returns up to limit documents whose keys follow after, in key order.
func (s *ReadModelStore) ListDocuments(ctx context.Context, table, after string, limit int) ([]projections.Row, error) {
	ts, err := s.tableOf(ctx, table)
	if err != nil {
		return nil, err
	}
	st, err := s.db.stmt(ctx, s.db.read, ts.list)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", table, err)
	}
	rows, err := st.QueryContext(ctx, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", table, err)
	}
	out, err := scanRows(rows, ts)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", table, err)
	}
	return out, nil
}

// QueryIndex returns up to q.Limit documents of an index in (sort, key) order. The
// cursor is a row-value comparison, (sort, k) < (?, ?), which SQLite turns into a range
// of the index it walks, so a page deep in costs what the first one does; of two bounds
// on the same side (the cursor and To, say), only the tighter one is kept, since SQLite
// seeks by one of them and would walk from there to the other.
func (s *ReadModelStore) QueryIndex(ctx context.Context, q projections.IndexQuery) ([]projections.Row, error) {
	ts, query, args, err := s.indexQuerySQL(ctx, q)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("query %s.%s: %w", q.Table, q.Index, err)
	}
	out, err := scanRows(rows, ts)
	if err != nil {
		return nil, fmt.Errorf("query %s.%s: %w", q.Table, q.Index, err)
	}
	return out, nil
}

// indexQuerySQL is the SQL of an index query.
func (s *ReadModelStore) indexQuerySQL(ctx context.Context, q projections.IndexQuery) (*tableSQL, string, []any, error) {
	ts, where, args, err := s.indexWhere(ctx, q, true)
	if err != nil {
		return nil, "", nil, err
	}
	ix, _ := ts.t.Index(q.Index)
	sortCol, _ := ts.columnOf(ix.Sort)
	order := "ASC"
	if q.Descending {
		order = "DESC"
	}
	query := `SELECT ` + strings.Join(ts.readColumns(), ", ") + ` FROM ` + ts.name + ` INDEXED BY ` + ts.indexName(&ix) +
		where + ` ORDER BY ` + sortCol + ` ` + order + `, k ` + order + ` LIMIT ?`
	return ts, query, append(args, max(q.Limit, 1)), nil
}

// CountIndex counts the documents QueryIndex selects, without Limit and After.
func (s *ReadModelStore) CountIndex(ctx context.Context, q projections.IndexQuery) (int64, error) {
	q.After = nil
	ts, where, args, err := s.indexWhere(ctx, q, false)
	if err != nil {
		return 0, err
	}
	ix, _ := ts.t.Index(q.Index)
	var n int64
	err = s.db.read.QueryRowContext(ctx, `SELECT count(*) FROM `+ts.name+` INDEXED BY `+ts.indexName(&ix)+where, args...).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count %s.%s: %w", q.Table, q.Index, err)
	}
	return n, nil
}

// indexWhere builds the WHERE clause of an index query.
func (s *ReadModelStore) indexWhere(ctx context.Context, q projections.IndexQuery, withCursor bool) (*tableSQL, string, []any, error) {
	ts, err := s.tableOf(ctx, q.Table)
	if err != nil {
		return nil, "", nil, err
	}
	ix, ok := ts.t.Index(q.Index)
	if !ok {
		return nil, "", nil, fmt.Errorf("table %s has no index %s", q.Table, q.Index)
	}
	sortCol, _ := ts.columnOf(ix.Sort)
	var where []string
	var args []any
	if ix.Partition != "" {
		p, _ := ts.columnOf(ix.Partition)
		where = append(where, p+` = ?`)
		args = append(args, q.Partition)
	}
	// Documents without the sort attribute are not in the index.
	if ix.Sort == ts.t.Schedule {
		where = append(where, sortCol+` <> ?`)
		args = append(args, projections.Never)
	} else if a, _ := ts.t.Attr(ix.Sort); a.Type == projections.String {
		where = append(where, sortCol+` <> ''`)
	}
	from, to, after := q.From, q.To, q.After
	if !withCursor {
		after = nil
	}
	if after != nil {
		switch {
		case !q.Descending && from != nil && projections.CompareValues(after.Sort, from) >= 0:
			from = nil
		case !q.Descending && from != nil:
			after = nil
		case q.Descending && to != nil && projections.CompareValues(after.Sort, to) <= 0:
			to = nil
		case q.Descending && to != nil:
			after = nil
		}
	}
	if from != nil {
		where = append(where, sortCol+` >= ?`)
		args = append(args, from)
	}
	if to != nil {
		where = append(where, sortCol+` <= ?`)
		args = append(args, to)
	}
	if after != nil {
		cmp := `>`
		if q.Descending {
			cmp = `<`
		}
		where = append(where, `(`+sortCol+`, k) `+cmp+` (?, ?)`)
		args = append(args, after.Sort, after.Key)
	}
	for _, f := range q.Where {
		c, ok := ts.columnOf(f.Attr)
		if !ok || len(f.Values) == 0 {
			return nil, "", nil, fmt.Errorf("table %s has no attribute %s to filter on", q.Table, f.Attr)
		}
		where = append(where, c+` IN (?`+strings.Repeat(`, ?`, len(f.Values)-1)+`)`)
		args = append(args, f.Values...)
	}
	clause := ""
	if len(where) > 0 {
		clause = ` WHERE ` + strings.Join(where, ` AND `)
	}
	return ts, clause, args, nil
}

// tableOf returns the SQL of a registered table in the store's generation.
func (s *ReadModelStore) tableOf(ctx context.Context, table string) (*tableSQL, error) {
	g, err := s.sql(ctx)
	if err != nil {
		return nil, err
	}
	ts, err := g.table(table)
	if err != nil {
		return nil, err
	}
	if ts.t.Kind != projections.Documents {
		return nil, fmt.Errorf("table %s holds counters, not documents", table)
	}
	return ts, nil
}

// scanRows reads rows of readColumns and closes them.
func scanRows(rows *sql.Rows, ts *tableSQL) ([]projections.Row, error) {
	defer rows.Close()
	var out []projections.Row
	for rows.Next() {
		var r projections.Row
		var raw sql.RawBytes
		if err := rows.Scan(&r.Key, &r.Guard, &r.Schedule, &raw); err != nil {
			return nil, err
		}
		doc, err := ts.t.DecodeDoc(raw)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", ts.t.Name, r.Key, err)
		}
		r.Doc = doc
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
