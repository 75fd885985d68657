package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/agentwatch/agentwatch/app"
)

// ProjectionProgress says how far the live projector has projected the journal: the
// rows after the position its checkpoint names are the backlog, and the append time of
// the first of them is the projection watermark (every row appended before it has been
// projected, since append times grow with positions). With no backlog the watermark is
// the clock.
type ProjectionProgress struct {
	db         *DB
	checkpoint string
	now        func() time.Time
}

var (
	_ app.ProjectionWatermark = (*ProjectionProgress)(nil)
	_ app.ProjectionBacklog   = (*ProjectionProgress)(nil)
)

// NewProjectionProgress returns the progress of the projector that stores its position
// under checkpoint.
func NewProjectionProgress(db *DB, checkpoint string) *ProjectionProgress {
	return &ProjectionProgress{db: db, checkpoint: checkpoint, now: time.Now}
}

// checkpointSeq is the projected position, as SQL: 0 before the first commit.
const checkpointSeq = `coalesce((SELECT CAST(position AS INTEGER) FROM checkpoints WHERE name = ?), 0)`

// Watermark returns the append time of the first row not projected yet (rows of files
// older than schema 3 have no append time: their event time stands in), or the clock's
// time when every row has been projected.
func (p *ProjectionProgress) Watermark(ctx context.Context) (time.Time, error) {
	now := p.now()
	st, err := p.db.stmt(ctx, p.db.read, `SELECT coalesce(appended_ms, ts) FROM journal WHERE seq > `+checkpointSeq+` ORDER BY seq LIMIT 1`)
	if err != nil {
		return time.Time{}, fmt.Errorf("projection watermark: %w", err)
	}
	rows, err := st.QueryContext(ctx, p.checkpoint)
	if err != nil {
		return time.Time{}, fmt.Errorf("projection watermark: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return time.Time{}, fmt.Errorf("projection watermark: %w", err)
		}
		return now, nil
	}
	var ms int64
	if err := rows.Scan(&ms); err != nil {
		return time.Time{}, fmt.Errorf("projection watermark: %w", err)
	}
	if w := time.UnixMilli(ms); w.Before(now) {
		return w, nil
	}
	return now, nil
}

// Backlog returns how many journal rows were appended after the projected position.
func (p *ProjectionProgress) Backlog(ctx context.Context) (int64, error) {
	st, err := p.db.stmt(ctx, p.db.read, `SELECT coalesce((SELECT max(seq) FROM journal), 0) - `+checkpointSeq)
	if err != nil {
		return 0, fmt.Errorf("projection backlog: %w", err)
	}
	var n int64
	if err := st.QueryRowContext(ctx, p.checkpoint).Scan(&n); err != nil {
		return 0, fmt.Errorf("projection backlog: %w", err)
	}
	return max(n, 0), nil
}

// SetClock replaces the clock that stands in when nothing waits (tests run the
// detector on a fake one).
func (p *ProjectionProgress) SetClock(now func() time.Time) { p.now = now }
