package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/agentwatch/agentwatch/projections"
)

// Reschedule applies moves to the schedules of a table's documents in one write
// transaction, each only if the document's schedule is still its Prev (a document a
// commit rewrote meanwhile keeps what the commit wrote), and reports how many it
// applied.
func (s *ReadModelStore) Reschedule(ctx context.Context, table string, moves []projections.Move) (int, error) {
	if len(moves) == 0 {
		return 0, nil
	}
	ts, err := s.tableOf(ctx, table)
	if err != nil {
		return 0, err
	}
	if ts.t.Schedule == "" {
		return 0, fmt.Errorf("reschedule %s: the table has no schedule", table)
	}
	move := `UPDATE ` + ts.name + ` SET sched = ? WHERE k = ? AND sched = ?`
	drop := `DELETE FROM ` + ts.name + ` WHERE k = ? AND sched = ?`
	stmts, err := s.db.writeStmts(ctx, move, drop)
	if err != nil {
		return 0, fmt.Errorf("reschedule %s: %w", table, err)
	}
	applied := 0
	err = s.db.writeTx(ctx, func(tx *sql.Tx) error {
		mv, dr := tx.StmtContext(ctx, stmts[0]), tx.StmtContext(ctx, stmts[1])
		applied = 0
		for _, m := range moves {
			var res sql.Result
			var err error
			if m.Delete {
				res, err = dr.ExecContext(ctx, m.Key, m.Prev)
			} else {
				res, err = mv.ExecContext(ctx, m.Next, m.Key, m.Prev)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", m.Key, err)
			}
			if n, err := res.RowsAffected(); err == nil {
				applied += int(n)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("reschedule %s: %w", table, err)
	}
	return applied, nil
}
