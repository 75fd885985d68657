package sqlite

import (
	"context"
	"fmt"

	"github.com/agentwatch/agentwatch/projections"
)

// ReadCounters returns the rows of partition (every partition when "") of a counters
// table whose sort key is within [from, to], sorted by partition and sort key.
func (s *ReadModelStore) ReadCounters(ctx context.Context, table, partition, from, to string) ([]projections.CounterRow, error) {
	g, err := s.sql(ctx)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", table, err)
	}
	ts, err := g.table(table)
	if err != nil {
		return nil, err
	}
	if ts.t.Kind != projections.Counters {
		return nil, fmt.Errorf("read %s: it holds documents, not counters", table)
	}
	query := `SELECT p, s, c, v FROM ` + ts.name + ` WHERE s >= ? AND s <= ?`
	args := []any{from, to}
	if partition != "" {
		query += ` AND p = ?`
		args = append(args, partition)
	}
	query += ` ORDER BY p, s`
	rows, err := s.db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", table, err)
	}
	defer rows.Close()
	var out []projections.CounterRow
	for rows.Next() {
		var p, srt, c string
		var v int64
		if err := rows.Scan(&p, &srt, &c, &v); err != nil {
			return nil, fmt.Errorf("read %s: %w", table, err)
		}
		if v == 0 {
			continue
		}
		if n := len(out); n == 0 || out[n-1].Partition != p || out[n-1].Sort != srt {
			out = append(out, projections.CounterRow{Partition: p, Sort: srt, Counters: map[string]int64{}})
		}
		out[len(out)-1].Counters[c] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", table, err)
	}
	return out, nil
}
