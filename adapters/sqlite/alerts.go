package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// AlertStore is the alert outbox: one row per session and kind, ever (the primary key),
// pending until a sink delivered it, then sent. A problem alert (every kind but
// recovered) is open until a later event resolves it; acknowledging it does not close it.
type AlertStore struct {
	db  *DB
	now func() time.Time
}

var _ app.AlertStore = (*AlertStore)(nil)

// NewAlertStore returns the alert outbox of db.
func NewAlertStore(db *DB) *AlertStore { return &AlertStore{db: db, now: time.Now} }

// openCond selects problem alerts that no later event resolved, acknowledged or not:
// what the detector may still resolve.
const openCond = `resolved_at IS NULL AND kind <> '` + string(stuck.KindRecovered) + `'`

// InsertAlert records a as pending. domain.ErrDuplicate (wrapped) when an alert of the
// same session and kind exists. A zero RaisedAt becomes now.
func (s *AlertStore) InsertAlert(ctx context.Context, a app.Alert) error {
	if a.RaisedAt.IsZero() {
		a.RaisedAt = s.now()
	}
	resolved, acked, ackedBy := nsPtr(a.ResolvedAt), nsPtr(a.AckedAt), a.AckedBy
	a.State, a.Attempts, a.ResolvedAt, a.AckedAt, a.AckedBy = app.AlertPending, 0, nil, nil, ""
	b, err := json.Marshal(&a)
	if err != nil {
		return fmt.Errorf("insert alert %s/%s: encode: %w", a.SessionID, a.Kind, err)
	}
	var n int64
	err = s.db.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO alerts (session_id, kind, state, raised_at, resolved_at, acked_at, acked_by, attempts, alert)
			VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?) ON CONFLICT (session_id, kind) DO NOTHING`,
			a.SessionID, string(a.Kind), string(app.AlertPending), a.RaisedAt.UnixNano(), resolved, acked, ackedBy, b)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("insert alert %s/%s: %w", a.SessionID, a.Kind, err)
	}
	if n == 0 {
		return fmt.Errorf("insert alert %s/%s: %w", a.SessionID, a.Kind, domain.ErrDuplicate)
	}
	return nil
}

func nsPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixNano()
}

const alertColumns = `alert, state, resolved_at, acked_at, acked_by, attempts`

func scanAlert(rows *sql.Rows) (app.Alert, error) {
	var (
		a               app.Alert
		raw             []byte
		state, ackedBy  string
		resolved, acked sql.NullInt64
		attempts        int
	)
	if err := rows.Scan(&raw, &state, &resolved, &acked, &ackedBy, &attempts); err != nil {
		return a, err
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return a, fmt.Errorf("decode stored alert: %w", err)
	}
	a.State, a.AckedBy, a.Attempts = app.AlertState(state), ackedBy, attempts
	if resolved.Valid {
		t := time.Unix(0, resolved.Int64).UTC()
		a.ResolvedAt = &t
	}
	if acked.Valid {
		t := time.Unix(0, acked.Int64).UTC()
		a.AckedAt = &t
	}
	return a, nil
}

func (s *AlertStore) list(ctx context.Context, what, query string, args ...any) ([]app.Alert, error) {
	rows, err := s.db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []app.Alert
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// PendingAlerts lists up to limit alerts not yet delivered, oldest first (limit <= 0:
// all).
func (s *AlertStore) PendingAlerts(ctx context.Context, limit int) ([]app.Alert, error) {
	if limit <= 0 {
		limit = -1
	}
	return s.list(ctx, "pending alerts", `SELECT `+alertColumns+` FROM alerts WHERE state = ?
		ORDER BY raised_at, session_id, kind LIMIT ?`, string(app.AlertPending), limit)
}

// MarkSent moves a pending alert to sent and counts the delivery. Marking a sent alert
// again does nothing; domain.ErrNotFound when there is no such alert.
func (s *AlertStore) MarkSent(ctx context.Context, sessionID string, kind stuck.Kind) error {
	err := s.db.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE alerts SET state = ?, attempts = attempts + 1
			WHERE session_id = ? AND kind = ? AND state = ?`, string(app.AlertSent), sessionID, string(kind), string(app.AlertPending))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		return alertExists(ctx, tx, sessionID, kind)
	})
	if err != nil {
		return fmt.Errorf("mark alert %s/%s sent: %w", sessionID, kind, err)
	}
	return nil
}

func alertExists(ctx context.Context, tx *sql.Tx, sessionID string, kind stuck.Kind) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM alerts WHERE session_id = ? AND kind = ?`, sessionID, string(kind)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.ErrNotFound
	}
	return err
}

// Resolve stamps at as ResolvedAt on the session's unresolved alerts of these kinds.
func (s *AlertStore) Resolve(ctx context.Context, sessionID string, kinds []stuck.Kind, at time.Time) error {
	if len(kinds) == 0 {
		return nil
	}
	args := []any{at.UnixNano(), sessionID}
	for _, k := range kinds {
		args = append(args, string(k))
	}
	q := `UPDATE alerts SET resolved_at = ? WHERE session_id = ? AND resolved_at IS NULL AND kind IN (?` +
		strings.Repeat(", ?", len(kinds)-1) + `)`
	err := s.db.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("resolve alerts of %s: %w", sessionID, err)
	}
	return nil
}

// Ack records that by acknowledged the alert at at; the first acknowledgement stays.
// domain.ErrNotFound when there is no such alert.
func (s *AlertStore) Ack(ctx context.Context, sessionID string, kind stuck.Kind, by string, at time.Time) error {
	err := s.db.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE alerts SET acked_at = ?, acked_by = ?
			WHERE session_id = ? AND kind = ? AND acked_at IS NULL`, at.UnixNano(), by, sessionID, string(kind))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		return alertExists(ctx, tx, sessionID, kind)
	})
	if err != nil {
		return fmt.Errorf("ack alert %s/%s: %w", sessionID, kind, err)
	}
	return nil
}

// SessionAlerts returns the kinds raised for the session and, among them, the problems
// still open (not resolved; recovered is never open).
func (s *AlertStore) SessionAlerts(ctx context.Context, sessionID string) (raised, open stuck.KindSet, err error) {
	rows, err := s.db.read.QueryContext(ctx, `SELECT kind, `+openCond+` FROM alerts WHERE session_id = ?`, sessionID)
	if err != nil {
		return 0, 0, fmt.Errorf("alerts of %s: %w", sessionID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind string
		var isOpen bool
		if err := rows.Scan(&kind, &isOpen); err != nil {
			return 0, 0, fmt.Errorf("alerts of %s: %w", sessionID, err)
		}
		raised |= stuck.Kind(kind).Bit()
		if isOpen {
			open |= stuck.Kind(kind).Bit()
		}
	}
	if err := rows.Err(); err != nil {
		return 0, 0, fmt.Errorf("alerts of %s: %w", sessionID, err)
	}
	return raised, open, nil
}

// stateConds are the WHERE conditions of the states of app.AlertFilter.
var stateConds = map[string]string{
	app.AlertFilterOpen:         openCond + ` AND acked_at IS NULL`,
	app.AlertFilterAcknowledged: openCond + ` AND acked_at IS NOT NULL`,
	app.AlertFilterResolved:     `resolved_at IS NOT NULL`,
}

// alertWhere renders f's state, kinds and session as a WHERE clause ("" for none) and its
// arguments.
func alertWhere(f *app.AlertFilter) (string, []any) {
	var conds []string
	var args []any
	if c := stateConds[f.State]; c != "" {
		conds = append(conds, c)
	}
	if len(f.Kinds) > 0 {
		conds = append(conds, `kind IN (?`+strings.Repeat(`, ?`, len(f.Kinds)-1)+`)`)
		for _, k := range f.Kinds {
			args = append(args, string(k))
		}
	}
	if f.SessionID != "" {
		conds = append(conds, `session_id = ?`)
		args = append(args, f.SessionID)
	}
	if len(conds) == 0 {
		return "", args
	}
	return ` WHERE ` + strings.Join(conds, ` AND `), args
}

// ListAlerts answers one page of the alerts f selects, newest first (ties by session,
// then kind), from the alerts_raised index. f.Limit <= 0 lists all.
func (s *AlertStore) ListAlerts(ctx context.Context, f app.AlertFilter) (app.AlertPage, error) {
	if err := f.Validate(); err != nil {
		return app.AlertPage{}, fmt.Errorf("list alerts: %w", err)
	}
	where, args := alertWhere(&f)
	if f.Cursor != "" {
		c, _ := app.DecodeAlertCursor(f.Cursor) // Validate checked it
		after := `(raised_at < ? OR (raised_at = ? AND (session_id > ? OR (session_id = ? AND kind > ?))))`
		if where == "" {
			where = ` WHERE ` + after
		} else {
			where += ` AND ` + after
		}
		args = append(args, c.RaisedAtNs, c.RaisedAtNs, c.SessionID, c.SessionID, string(c.Kind))
	}
	limit := -1
	if f.Limit > 0 {
		limit = f.Limit + 1 // one more says whether there is a next page
	}
	args = append(args, limit)
	as, err := s.list(ctx, "list alerts", `SELECT `+alertColumns+` FROM alerts`+where+
		` ORDER BY raised_at DESC, session_id, kind LIMIT ?`, args...)
	if err != nil {
		return app.AlertPage{}, err
	}
	page := app.AlertPage{Items: as}
	if f.Limit > 0 && len(as) > f.Limit {
		page.Items = as[:f.Limit]
		page.NextCursor = app.CursorAfter(&page.Items[f.Limit-1]).Encode()
	}
	if page.Items == nil {
		page.Items = []app.Alert{}
	}
	return page, nil
}

// CountAlerts counts the alerts f selects, per kind.
func (s *AlertStore) CountAlerts(ctx context.Context, f app.AlertFilter) (app.AlertCounts, error) {
	f.Cursor = ""
	if err := f.Validate(); err != nil {
		return app.AlertCounts{}, fmt.Errorf("count alerts: %w", err)
	}
	where, args := alertWhere(&f)
	rows, err := s.db.read.QueryContext(ctx, `SELECT kind, COUNT(*) FROM alerts`+where+` GROUP BY kind`, args...)
	if err != nil {
		return app.AlertCounts{}, fmt.Errorf("count alerts: %w", err)
	}
	defer rows.Close()
	out := app.AlertCounts{ByKind: map[stuck.Kind]int64{}}
	for rows.Next() {
		var kind string
		var n int64
		if err := rows.Scan(&kind, &n); err != nil {
			return app.AlertCounts{}, fmt.Errorf("count alerts: %w", err)
		}
		out.ByKind[stuck.Kind(kind)] = n
		out.Total += n
	}
	if err := rows.Err(); err != nil {
		return app.AlertCounts{}, fmt.Errorf("count alerts: %w", err)
	}
	return out, nil
}
