package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
)

// JournalStore is the session journal: an append-only table of journal items keyed by
// PK+SK, with a sequence number (seq) that orders the items in commit order and serves
// as the position of the tail feed (TailSubscriber).
//
// Sequence numbers only grow and are assigned under the database's write lock, so a
// reader that sees seq N sees every row below N that will ever exist: a tail that
// resumes after N misses nothing.
type JournalStore struct {
	db *DB
}

var (
	_ app.JournalAppender = (*JournalStore)(nil)
	_ app.JournalReader   = (*JournalStore)(nil)
	_ app.JournalScanner  = (*JournalStore)(nil)
)

// NewJournalStore returns the journal of db.
func NewJournalStore(db *DB) *JournalStore { return &JournalStore{db: db} }

// JournalRow is one journal item and its position.
type JournalRow struct {
	Seq   int64
	Event domain.Event
}

const appendSQL = `INSERT INTO journal (pk, sk, status, ts, extra, item) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (pk, sk) DO NOTHING`

// Append appends events in one transaction. An event whose PK+SK is already in the
// journal (or earlier in events) is reported app.Duplicate and left as it is. Events
// that are not valid journal items (no session id, SK without "EVENT#", no status, no
// timestamp, an EXECUTION_* event without its ARN) fail the whole call with an error
// that matches domain.ErrInvalid, before anything is written.
func (s *JournalStore) Append(ctx context.Context, events []domain.Event) ([]app.AppendResult, error) {
	if len(events) == 0 {
		return nil, nil
	}
	type row struct {
		pk    string
		ts    int64
		extra int
		item  []byte
	}
	rows := make([]row, len(events))
	for i := range events {
		ev := &events[i]
		if err := checkEvent(ev); err != nil {
			return nil, fmt.Errorf("append %s/%s: %w", ev.PK(), ev.SK, err)
		}
		it := ev.Item()
		b, err := json.Marshal(&it)
		if err != nil {
			return nil, fmt.Errorf("append %s/%s: encode item: %w", ev.PK(), ev.SK, err)
		}
		rows[i] = row{pk: it.PK, ts: ev.Timestamp.UnixMilli(), item: b}
		if isExtra(ev) {
			rows[i].extra = 1
		}
	}
	results := make([]app.AppendResult, len(events))
	appended := false
	stmts, err := s.db.writeStmts(ctx, appendSQL)
	if err != nil {
		return nil, fmt.Errorf("append %d events: %w", len(events), err)
	}
	err = s.db.writeTx(ctx, func(tx *sql.Tx) error {
		st := tx.StmtContext(ctx, stmts[0])
		for i := range events {
			ev, r := &events[i], &rows[i]
			res, err := st.ExecContext(ctx, r.pk, ev.SK, string(ev.Status), r.ts, r.extra, r.item)
			if err != nil {
				return fmt.Errorf("append %s/%s: %w", r.pk, ev.SK, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("append %s/%s: %w", r.pk, ev.SK, err)
			}
			if n == 1 {
				results[i] = app.Appended
				appended = true
			} else {
				results[i] = app.Duplicate
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("append %d events: %w", len(events), err)
	}
	if appended {
		s.db.notify.broadcast()
	}
	return results, nil
}

// checkEvent checks what the journal relies on; the decoders validate the rest.
func checkEvent(ev *domain.Event) error {
	var errs []error
	if ev.SessionID == "" {
		errs = append(errs, &domain.FieldError{Field: "PK", Reason: "has an empty session id"})
	}
	if !strings.HasPrefix(ev.SK, domain.EventKeyPrefix) || len(ev.SK) == len(domain.EventKeyPrefix) {
		errs = append(errs, &domain.FieldError{Field: "SK", Reason: "must be EVENT#{timestamp}"})
	}
	if ev.Status == "" {
		errs = append(errs, &domain.FieldError{Field: "Status", Reason: "is missing"})
	}
	if ev.Timestamp.IsZero() {
		errs = append(errs, &domain.FieldError{Field: "Timestamp", Reason: "is missing"})
	}
	if ev.Status.IsExecution() && ev.Exec.ExecutionArn == "" {
		errs = append(errs, &domain.FieldError{Field: "ExecutionArn", Reason: "is missing (required on EXECUTION_* events)"})
	}
	return errors.Join(errs...)
}

// isExtra reports whether the event holds more than its key, status and timestamp: the
// scan rebuilds the others from columns without decoding JSON.
func isExtra(ev *domain.Event) bool {
	return ev.ErrorMessage != "" || ev.Exec != (domain.Execution{})
}

// SessionEvents returns one session's events ordered by SK, filtered as q says. An
// unknown session has no events (and no error).
func (s *JournalStore) SessionEvents(ctx context.Context, sessionID string, q app.SessionEventsQuery) ([]domain.Event, error) {
	var b strings.Builder
	args := []any{domain.SessionKeyPrefix + sessionID}
	b.WriteString(`SELECT item FROM journal WHERE pk = ?`)
	if q.Status != "" {
		b.WriteString(` AND status = ?`)
		args = append(args, string(q.Status))
	}
	if q.StatusContains != "" {
		b.WriteString(` AND instr(status, ?) > 0`)
		args = append(args, q.StatusContains)
	}
	if !q.After.IsZero() {
		b.WriteString(` AND sk > ?`)
		args = append(args, domain.EventKeyPrefix+domain.FormatTime(q.After))
	}
	if q.Descending {
		b.WriteString(` ORDER BY sk DESC`)
	} else {
		b.WriteString(` ORDER BY sk ASC`)
	}
	if q.Limit > 0 {
		b.WriteString(` LIMIT ?`)
		args = append(args, q.Limit)
	}
	rows, err := s.db.read.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("session %s events: %w", sessionID, err)
	}
	defer rows.Close()
	var out []domain.Event
	for rows.Next() {
		var item []byte
		if err := rows.Scan(&item); err != nil {
			return nil, fmt.Errorf("session %s events: %w", sessionID, err)
		}
		ev, err := decodeItem(item)
		if err != nil {
			return nil, fmt.Errorf("session %s events: %w", sessionID, err)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("session %s events: %w", sessionID, err)
	}
	return out, nil
}

func decodeItem(b []byte) (domain.Event, error) {
	var it domain.JournalItem
	if err := json.Unmarshal(b, &it); err != nil {
		return domain.Event{}, fmt.Errorf("decode stored item: %w", err)
	}
	ev, err := it.Event()
	if err != nil {
		return domain.Event{}, fmt.Errorf("stored item %s/%s: %w", it.PK, it.SK, err)
	}
	return ev, nil
}

// MaxSeq is the position of the last journal item (0: empty journal).
func (s *JournalStore) MaxSeq(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.db.read.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM journal`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("journal max seq: %w", err)
	}
	return seq, nil
}

// ReadAfter returns up to limit items after position seq, in position order.
func (s *JournalStore) ReadAfter(ctx context.Context, seq int64, limit int) ([]JournalRow, error) {
	if limit <= 0 {
		limit = scanBatch
	}
	rows, err := s.db.read.QueryContext(ctx, scanSQL+` WHERE seq > ? ORDER BY seq LIMIT ?`, seq, limit)
	if err != nil {
		return nil, fmt.Errorf("read journal after %d: %w", seq, err)
	}
	defer rows.Close()
	var out []JournalRow
	var sc rowScanner
	for rows.Next() {
		var r JournalRow
		if r.Seq, err = sc.scan(rows, &r.Event); err != nil {
			return nil, fmt.Errorf("read journal after %d: %w", seq, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read journal after %d: %w", seq, err)
	}
	return out, nil
}

// scanBatch is how many events Scan hands to its callback at once.
const scanBatch = 4096

const scanSQL = `SELECT seq, pk, sk, status, ts, CASE WHEN extra THEN item END FROM journal`

// Scan calls fn with batches of every journal event, in position order, from one
// consistent snapshot. Reading runs ahead of fn by one batch (fn runs on the calling
// goroutine, never concurrently with itself); fn may keep the batches it is given.
func (s *JournalStore) Scan(ctx context.Context, fn func(batch []domain.Event) error) error {
	_, err := s.ScanSnapshot(ctx, fn)
	return err
}

// ScanSnapshot is Scan that also returns the position of the last item of the snapshot
// it read (as TailSubscriber spells positions: decimal), so that a rebuild can take the
// live feed over from exactly there.
func (s *JournalStore) ScanSnapshot(ctx context.Context, fn func(batch []domain.Event) error) (position string, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []domain.Event, 2)
	var last int64
	readErr := make(chan error, 1)
	go func() {
		defer close(batches)
		readErr <- s.db.readTx(ctx, func(tx *sql.Tx) error {
			rows, err := tx.QueryContext(ctx, scanSQL+` ORDER BY seq`)
			if err != nil {
				return err
			}
			defer rows.Close()
			var sc rowScanner
			batch := make([]domain.Event, 0, scanBatch)
			for rows.Next() {
				batch = batch[:len(batch)+1]
				seq, err := sc.scan(rows, &batch[len(batch)-1])
				if err != nil {
					return err
				}
				last = seq
				if len(batch) == scanBatch {
					select {
					case batches <- batch:
					case <-ctx.Done():
						return ctx.Err()
					}
					batch = make([]domain.Event, 0, scanBatch)
				}
			}
			if err := rows.Err(); err != nil {
				return err
			}
			if len(batch) > 0 {
				select {
				case batches <- batch:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
	}()
	var fnErr error
	for batch := range batches {
		if fnErr == nil {
			if fnErr = fn(batch); fnErr != nil {
				cancel()
			}
		}
	}
	if fnErr != nil {
		return "", fnErr
	}
	if err := <-readErr; err != nil {
		return "", fmt.Errorf("scan journal: %w", err)
	}
	return strconv.FormatInt(last, 10), nil
}

// rowScanner decodes scanSQL rows, reusing what it can between rows.
type rowScanner struct {
	seq     int64
	pk, sk  string
	status  string
	ts      int64
	item    sql.RawBytes
	statusV map[string]domain.Status
}

func (sc *rowScanner) scan(rows *sql.Rows, ev *domain.Event) (int64, error) {
	if err := rows.Scan(&sc.seq, &sc.pk, &sc.sk, &sc.status, &sc.ts, &sc.item); err != nil {
		return 0, err
	}
	if len(sc.item) > 0 {
		e, err := decodeItem(sc.item)
		if err != nil {
			return 0, fmt.Errorf("journal seq %d: %w", sc.seq, err)
		}
		*ev = e
		return sc.seq, nil
	}
	id, ok := strings.CutPrefix(sc.pk, domain.SessionKeyPrefix)
	if !ok {
		return 0, fmt.Errorf("journal seq %d: PK %q lacks %q", sc.seq, sc.pk, domain.SessionKeyPrefix)
	}
	// Statuses repeat: share one string per distinct value.
	st, ok := sc.statusV[sc.status]
	if !ok {
		if sc.statusV == nil {
			sc.statusV = map[string]domain.Status{}
		}
		st = domain.Status(sc.status)
		sc.statusV[sc.status] = st
	}
	*ev = domain.Event{SessionID: id, SK: sc.sk, Status: st, Timestamp: time.UnixMilli(sc.ts).UTC()}
	return sc.seq, nil
}
