package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
)

// countersPerStmt caps the counters one statement adds.
const countersPerStmt = 32

// encodedPut is a Put with its row encoded: the columns in insert order.
type encodedPut struct {
	ts   *tableSQL
	args []any
}

// counterKey names one counter of one row of a counters table.
type counterKey struct{ table, p, s, c string }

// Commit writes the batch in one transaction: each session under its version check,
// each document put (replacing a stored one only when its guard allows) or deleted,
// every counter delta of the batch summed per counter and added (a counter back at zero
// is deleted), and the checkpoint. When a session's version moved, nothing is written
// and the error matches domain.ErrConflict.
//
// A store that follows the current generation (generation 0) writes to the generation
// that is current inside the commit's transaction; a session version read from another
// generation (a switch in between) is a conflict, so the projector reloads from the new
// one.
func (s *ReadModelStore) Commit(ctx context.Context, b app.Batch) error {
	g, err := s.sql(ctx)
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	sessions := make([][]byte, len(b.Sessions))
	var puts []encodedPut
	var dels []encodedPut
	sums := map[counterKey]int64{}
	queries := []string{currentGenSQL, g.insertSession, g.updateSession, setCheckpointSQL}
	seen := map[string]bool{}
	need := func(q string) {
		if !seen[q] {
			seen[q] = true
			queries = append(queries, q)
		}
	}
	for i := range b.Sessions {
		sc := &b.Sessions[i]
		sessions[i] = encodeSession(nil, &sc.Session)
		for _, p := range sc.Changes.Puts {
			ts, err := g.table(p.Table)
			if err != nil {
				return fmt.Errorf("commit: %w", err)
			}
			args, err := ts.rowArgs(&p)
			if err != nil {
				return fmt.Errorf("commit: %w", err)
			}
			need(ts.upsert)
			puts = append(puts, encodedPut{ts: ts, args: args})
		}
		for _, d := range sc.Changes.Deletes {
			ts, err := g.table(d.Table)
			if err != nil {
				return fmt.Errorf("commit: %w", err)
			}
			need(ts.del)
			dels = append(dels, encodedPut{ts: ts, args: []any{d.Key}})
		}
		for _, a := range sc.Changes.Adds {
			if _, err := g.table(a.Table); err != nil {
				return fmt.Errorf("commit: %w", err)
			}
			for c, v := range a.Counters {
				sums[counterKey{a.Table, a.Partition, a.Sort, c}] += v
			}
		}
	}
	adds := sortedCounters(sums)
	for _, chunk := range counterChunks(adds) {
		ts := g.tables[chunk[0].table]
		need(ts.addSQL(len(chunk)))
		need(ts.delZero)
	}
	stmts, err := s.db.writeStmts(ctx, queries...)
	if err != nil {
		return fmt.Errorf("commit: %w", s.movedOn(ctx, g.gen, err))
	}
	prepared := make(map[string]*sql.Stmt, len(queries))
	for i, q := range queries {
		prepared[q] = stmts[i]
	}

	err = s.db.writeTx(ctx, func(tx *sql.Tx) error {
		bind := func(q string) *sql.Stmt { return tx.StmtContext(ctx, prepared[q]) }
		if s.gen == 0 {
			var cur int
			if err := bind(currentGenSQL).QueryRowContext(ctx).Scan(&cur); err != nil {
				return fmt.Errorf("current generation: %w", err)
			}
			if cur != g.gen {
				s.db.setCurrentGeneration(0)
				return fmt.Errorf("the current generation moved from %d to %d: %w", g.gen, cur, domain.ErrConflict)
			}
		}
		if err := writeSessions(ctx, bind, g, b.Sessions, sessions); err != nil {
			return err
		}
		for _, p := range puts {
			if _, err := bind(p.ts.upsert).ExecContext(ctx, p.args...); err != nil {
				return fmt.Errorf("write %s %v: %w", p.ts.t.Name, p.args[0], err)
			}
		}
		for _, d := range dels {
			if _, err := bind(d.ts.del).ExecContext(ctx, d.args...); err != nil {
				return fmt.Errorf("delete %s %v: %w", d.ts.t.Name, d.args[0], err)
			}
		}
		if err := addCounters(ctx, bind, g, adds); err != nil {
			return err
		}
		if b.Checkpoint != nil {
			return setCheckpoint(ctx, bind(setCheckpointSQL), b.Checkpoint.Name, b.Checkpoint.Position)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("commit %d sessions: %w", len(b.Sessions), err)
	}
	return nil
}

// rowArgs are the columns of a put, in docColumns order.
func (ts *tableSQL) rowArgs(p *projections.Put) ([]any, error) {
	doc, err := ts.t.EncodeDoc(nil, p.Doc)
	if err != nil {
		return nil, err
	}
	args := make([]any, 0, len(ts.cols)+4)
	args = append(args, p.Key)
	for _, a := range ts.t.Attrs {
		args = append(args, a.Of(p.Doc))
	}
	if ts.t.Guard != "" {
		args = append(args, p.Guard)
	}
	if ts.t.Schedule != "" {
		args = append(args, p.Schedule)
	}
	return append(args, doc), nil
}

func writeSessions(ctx context.Context, bind func(string) *sql.Stmt, g *genSQL, ws []app.SessionChange, enc [][]byte) error {
	if len(ws) == 0 {
		return nil
	}
	ins, upd := bind(g.insertSession), bind(g.updateSession)
	for i := range ws {
		w := &ws[i]
		var res sql.Result
		var err error
		if w.Version == 0 {
			res, err = ins.ExecContext(ctx, w.Session.ID, enc[i])
		} else {
			v, ok := storedVersion(g.gen, w.Version)
			if !ok {
				return &app.SessionConflict{SessionID: w.Session.ID, Version: w.Version}
			}
			res, err = upd.ExecContext(ctx, enc[i], w.Session.ID, v)
		}
		if err != nil {
			return fmt.Errorf("write session %s: %w", w.Session.ID, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("write session %s: %w", w.Session.ID, err)
		}
		if n != 1 {
			return &app.SessionConflict{SessionID: w.Session.ID, Version: w.Version}
		}
	}
	return nil
}

// counterDelta is one counter's summed delta.
type counterDelta struct {
	counterKey
	delta int64
}

// sortedCounters lists non-zero deltas in key order.
func sortedCounters(sums map[counterKey]int64) []counterDelta {
	out := make([]counterDelta, 0, len(sums))
	for k, v := range sums {
		if v != 0 {
			out = append(out, counterDelta{k, v})
		}
	}
	slices.SortFunc(out, func(a, b counterDelta) int {
		return cmp.Or(strings.Compare(a.table, b.table), strings.Compare(a.p, b.p), strings.Compare(a.s, b.s), strings.Compare(a.c, b.c))
	})
	return out
}

// counterChunks cuts sorted deltas into the runs one statement adds: one table each, at
// most countersPerStmt.
func counterChunks(ds []counterDelta) [][]counterDelta {
	var out [][]counterDelta
	for lo := 0; lo < len(ds); {
		hi := lo + 1
		for hi < len(ds) && hi-lo < countersPerStmt && ds[hi].table == ds[lo].table {
			hi++
		}
		out = append(out, ds[lo:hi])
		lo = hi
	}
	return out
}

// addCounters adds sorted deltas, then deletes the counters of the rows they touched
// that reached zero, so that equal rows have equal counters.
func addCounters(ctx context.Context, bind func(string) *sql.Stmt, g *genSQL, ds []counterDelta) error {
	args := make([]any, 0, 4*countersPerStmt)
	for _, chunk := range counterChunks(ds) {
		ts := g.tables[chunk[0].table]
		args = args[:0]
		for _, d := range chunk {
			args = append(args, d.p, d.s, d.c, d.delta)
		}
		if _, err := bind(ts.addSQL(len(chunk))).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("add counters of %s: %w", ts.t.Name, err)
		}
	}
	for i, d := range ds {
		if i > 0 && ds[i-1].table == d.table && ds[i-1].p == d.p && ds[i-1].s == d.s {
			continue
		}
		ts := g.tables[d.table]
		if _, err := bind(ts.delZero).ExecContext(ctx, d.p, d.s); err != nil {
			return fmt.Errorf("delete zero counters of %s %s/%s: %w", ts.t.Name, d.p, d.s, err)
		}
	}
	return nil
}
