package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
)

var _ app.GenerationStore = (*ReadModelStore)(nil)

// CurrentGeneration returns the generation that serves reads and the signature of the
// read models it was built for; domain.ErrNotFound (wrapped) when there is none yet.
func (s *ReadModelStore) CurrentGeneration(ctx context.Context) (int, string, error) {
	var gen int
	var sig string
	err := s.db.read.QueryRowContext(ctx, `SELECT gen, signature FROM generations WHERE current = 1`).Scan(&gen, &sig)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", fmt.Errorf("current generation: %w", domain.ErrNotFound)
	}
	if err != nil {
		return 0, "", fmt.Errorf("current generation: %w", err)
	}
	return gen, sig, nil
}

// Generations lists the generations that exist, in order.
func (s *ReadModelStore) Generations(ctx context.Context) ([]int, error) {
	rows, err := s.db.read.QueryContext(ctx, `SELECT gen FROM generations ORDER BY gen`)
	if err != nil {
		return nil, fmt.Errorf("list generations: %w", err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var g int
		if err := rows.Scan(&g); err != nil {
			return nil, fmt.Errorf("list generations: %w", err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list generations: %w", err)
	}
	return out, nil
}

// CreateGeneration creates the tables of generation gen (>= 1) for the registered read
// models — the missing ones, when it exists — and records it with signature (a
// generation's signature is set once, when it is first recorded).
func (s *ReadModelStore) CreateGeneration(ctx context.Context, gen int, signature string) error {
	if gen < 1 {
		return fmt.Errorf("create generation %d: generations start at 1", gen)
	}
	g := s.db.sqlOf(s.reg, gen)
	err := s.db.writeTx(ctx, func(tx *sql.Tx) error {
		for _, ddl := range g.ddl() {
			if _, err := tx.ExecContext(ctx, ddl); err != nil {
				return fmt.Errorf("%q: %w", firstLine(ddl), err)
			}
		}
		return recordGeneration(ctx, tx, gen, signature)
	})
	if err != nil {
		return fmt.Errorf("create generation %d: %w", gen, err)
	}
	return nil
}

// recordGeneration records gen unless it is recorded.
func recordGeneration(ctx context.Context, tx *sql.Tx, gen int, signature string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO generations (gen, current, created_at, signature) VALUES (?, 0, ?, ?)
		ON CONFLICT (gen) DO NOTHING`, gen, time.Now().UnixMilli(), signature); err != nil {
		return fmt.Errorf("record generation %d: %w", gen, err)
	}
	return nil
}

// SwitchGeneration makes gen the generation that serves reads, atomically;
// domain.ErrNotFound when it was never created.
func (s *ReadModelStore) SwitchGeneration(ctx context.Context, gen int) error {
	err := s.db.writeTx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM generations WHERE gen = ?`, gen).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return domain.ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE generations SET current = 0 WHERE current = 1 AND gen <> ?`, gen); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE generations SET current = 1 WHERE gen = ?`, gen)
		return err
	})
	if err != nil {
		return fmt.Errorf("switch to generation %d: %w", gen, err)
	}
	s.db.setCurrentGeneration(gen)
	s.db.logger.Info("read-model generation switched", "generation", gen)
	return nil
}

// DropGeneration drops every table of generation gen — of read models registered or
// not — and its record. The current generation cannot be dropped (domain.ErrConflict);
// dropping one that does not exist does nothing.
func (s *ReadModelStore) DropGeneration(ctx context.Context, gen int) error {
	err := s.db.writeTx(ctx, func(tx *sql.Tx) error {
		var current int
		err := tx.QueryRowContext(ctx, `SELECT current FROM generations WHERE gen = ?`, gen).Scan(&current)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if current == 1 {
			return fmt.Errorf("it serves reads: %w", domain.ErrConflict)
		}
		names, err := generationTables(ctx, tx, gen)
		if err != nil {
			return err
		}
		for _, t := range names {
			if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+t); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM generations WHERE gen = ?`, gen)
		return err
	})
	if err != nil {
		return fmt.Errorf("drop generation %d: %w", gen, err)
	}
	return nil
}

// generationTables lists the tables of generation gen in the file: their names end in
// "_g<gen>".
func generationTables(ctx context.Context, tx *sql.Tx, gen int) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB ?`, "*_g"+strconv.Itoa(gen))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, `"`+n+`"`)
	}
	return out, rows.Err()
}

// ProjectionStoreOf is the projection store of generation gen.
func (s *ReadModelStore) ProjectionStoreOf(gen int) app.ProjectionStore {
	return NewReadModelStore(s.db, s.reg, gen)
}
