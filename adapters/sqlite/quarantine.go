package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/agentwatch/agentwatch/app"
)

// QuarantineStore keeps poison inputs with the reason they were rejected.
type QuarantineStore struct {
	db  *DB
	now func() time.Time
}

var _ app.Quarantine = (*QuarantineStore)(nil)

// NewQuarantineStore returns the quarantine of db.
func NewQuarantineStore(db *DB) *QuarantineStore { return &QuarantineStore{db: db, now: time.Now} }

// Quarantine stores q; its ID is assigned by the store (q.ID is ignored) and a zero At
// becomes now.
func (s *QuarantineStore) Quarantine(ctx context.Context, q app.Quarantined) error {
	at := q.At
	if at.IsZero() {
		at = s.now()
	}
	err := s.db.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO quarantine (source, key, reason, payload, at) VALUES (?, ?, ?, ?, ?)`,
			q.Source, q.Key, q.Reason, q.Payload, at.UnixNano())
		return err
	})
	if err != nil {
		return fmt.Errorf("quarantine %s %s: %w", q.Source, q.Key, err)
	}
	return nil
}

// ListQuarantined returns up to limit quarantined inputs, newest first (limit <= 0: all).
func (s *QuarantineStore) ListQuarantined(ctx context.Context, limit int) ([]app.Quarantined, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.db.read.QueryContext(ctx, `SELECT id, source, key, reason, payload, at FROM quarantine ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("list quarantined: %w", err)
	}
	defer rows.Close()
	var out []app.Quarantined
	for rows.Next() {
		var q app.Quarantined
		var at int64
		if err := rows.Scan(&q.ID, &q.Source, &q.Key, &q.Reason, &q.Payload, &at); err != nil {
			return nil, fmt.Errorf("list quarantined: %w", err)
		}
		q.At = time.Unix(0, at).UTC()
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list quarantined: %w", err)
	}
	return out, nil
}

// CountQuarantined counts every quarantined input.
func (s *QuarantineStore) CountQuarantined(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.read.QueryRowContext(ctx, `SELECT count(*) FROM quarantine`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count quarantined: %w", err)
	}
	return n, nil
}
