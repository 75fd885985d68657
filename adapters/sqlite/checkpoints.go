package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/agentwatch/agentwatch/app"
)

// CheckpointStore keeps named feed positions in the checkpoints table, the same table
// that ReadModelStore.Commit writes a batch's checkpoint to.
type CheckpointStore struct {
	db *DB
}

var _ app.CheckpointStore = (*CheckpointStore)(nil)

// NewCheckpointStore returns the checkpoints of db.
func NewCheckpointStore(db *DB) *CheckpointStore { return &CheckpointStore{db: db} }

const setCheckpointSQL = `INSERT INTO checkpoints (name, position, updated_at) VALUES (?, ?, ?)
	ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at`

// GetCheckpoint returns the position stored under name, or "" when there is none.
func (s *CheckpointStore) GetCheckpoint(ctx context.Context, name string) (string, error) {
	return getCheckpoint(ctx, s.db.read, name)
}

func getCheckpoint(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, name string) (string, error) {
	var pos string
	err := q.QueryRowContext(ctx, `SELECT position FROM checkpoints WHERE name = ?`, name).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("get checkpoint %s: %w", name, err)
	}
	return pos, nil
}

// SetCheckpoint stores position under name, replacing what was there.
func (s *CheckpointStore) SetCheckpoint(ctx context.Context, name, position string) error {
	stmts, err := s.db.writeStmts(ctx, setCheckpointSQL)
	if err == nil {
		err = s.db.writeTx(ctx, func(tx *sql.Tx) error {
			return setCheckpoint(ctx, tx.StmtContext(ctx, stmts[0]), name, position)
		})
	}
	if err != nil {
		return fmt.Errorf("set checkpoint %s: %w", name, err)
	}
	return nil
}

// setCheckpoint stores a checkpoint through st, the setCheckpointSQL statement of a
// write transaction.
func setCheckpoint(ctx context.Context, st *sql.Stmt, name, position string) error {
	if _, err := st.ExecContext(ctx, name, position, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("checkpoint %s: %w", name, err)
	}
	return nil
}

// DeleteCheckpoint removes the checkpoint name; removing one that is not there does
// nothing.
func (s *CheckpointStore) DeleteCheckpoint(ctx context.Context, name string) error {
	err := s.db.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM checkpoints WHERE name = ?`, name)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete checkpoint %s: %w", name, err)
	}
	return nil
}
