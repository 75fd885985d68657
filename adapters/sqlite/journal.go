package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

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

// Checkpoint settles the database file (see DB.Checkpoint).
func (s *JournalStore) Checkpoint(ctx context.Context) error { return s.db.Checkpoint(ctx) }

// JournalRow is one journal item and its position.
type JournalRow struct {
	Seq   int64
	Event domain.Event
}

const appendSQL = `INSERT INTO journal (pk, sk, status, ts, rec, appended_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (pk, sk) DO NOTHING`

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
		pk  string
		ts  int64
		rec []byte
	}
	rows := make([]row, len(events))
	for i := range events {
		ev := &events[i]
		if err := checkEvent(ev); err != nil {
			return nil, fmt.Errorf("append %s/%s: %w", ev.PK(), ev.SK, err)
		}
		rows[i] = row{pk: ev.PK(), ts: ev.Timestamp.UnixMilli(), rec: encodeEventRecord(nil, ev)}
	}
	results := make([]app.AppendResult, len(events))
	appended := false
	stmts, err := s.db.writeStmts(ctx, appendSQL)
	if err != nil {
		return nil, fmt.Errorf("append %d events: %w", len(events), err)
	}
	err = s.db.writeTx(ctx, func(tx *sql.Tx) error {
		st := tx.StmtContext(ctx, stmts[0])
		// Taken inside the write lock, so that append times grow with positions (the
		// projection watermark relies on it).
		appendedMs := time.Now().UnixMilli()
		for i := range events {
			ev, r := &events[i], &rows[i]
			res, err := st.ExecContext(ctx, r.pk, ev.SK, string(ev.Status), r.ts, r.rec, appendedMs)
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

// checkEvent checks what the journal relies on (domain.Event.CheckJournal) and what
// this store's columns and codec add: times it can hold in milliseconds, no negative
// redrive count.
func checkEvent(ev *domain.Event) error {
	errs := []error{ev.CheckJournal()}
	if ev.Exec.RedriveCount < 0 {
		errs = append(errs, &domain.FieldError{Field: "RedriveCount", Reason: "must not be negative"})
	}
	for _, d := range [...]struct {
		field string
		t     time.Time
	}{{"Timestamp", ev.Timestamp}, {"StartDate", ev.Exec.StartDate}, {"StopDate", ev.Exec.StopDate}, {"RedriveDate", ev.Exec.RedriveDate}} {
		if y := d.t.UTC().Year(); !d.t.IsZero() && (y < 1 || y > 9999) {
			errs = append(errs, &domain.FieldError{Field: d.field, Reason: "is out of range"})
		}
	}
	return errors.Join(errs...)
}

// isExtra reports whether the event holds more than its key, status and timestamp (the
// others are rebuilt from columns alone).
func isExtra(ev *domain.Event) bool {
	return ev.ErrorMessage != "" || ev.Exec != (domain.Execution{})
}

// SessionEvents returns one session's events ordered by SK, filtered as q says. An
// unknown session has no events (and no error).
func (s *JournalStore) SessionEvents(ctx context.Context, sessionID string, q app.SessionEventsQuery) ([]domain.Event, error) {
	var b strings.Builder
	args := []any{domain.SessionKeyPrefix + sessionID}
	b.WriteString(`SELECT ` + scanColumns + ` FROM journal WHERE pk = ?`)
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
	var sc rowScanner
	for rows.Next() {
		var ev domain.Event
		if err := sc.scan(rows, &ev); err != nil {
			return nil, fmt.Errorf("session %s events: %w", sessionID, err)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("session %s events: %w", sessionID, err)
	}
	return out, nil
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
	rows, err := s.db.read.QueryContext(ctx, `SELECT seq, `+scanColumns+` FROM journal WHERE seq > ? ORDER BY seq LIMIT ?`, seq, limit)
	if err != nil {
		return nil, fmt.Errorf("read journal after %d: %w", seq, err)
	}
	defer rows.Close()
	var out []JournalRow
	sc := rowScanner{withSeq: true}
	for rows.Next() {
		var r JournalRow
		if err := sc.scan(rows, &r.Event); err != nil {
			return nil, fmt.Errorf("read journal after %d: %w", seq, err)
		}
		r.Seq = sc.seq
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read journal after %d: %w", seq, err)
	}
	return out, nil
}

// scanBatch is how many events Scan hands to its callback at once.
const scanBatch = 4096

// scanColumns are what an event is rebuilt from, without JSON: its record
// (encodeEventRecord), one column and one allocation per row.
const scanColumns = `rec`

// Scan calls fn with batches of every journal event (see ScanSnapshot).
func (s *JournalStore) Scan(ctx context.Context, opts app.ScanOptions, fn func(batch []domain.Event) error) error {
	_, err := s.ScanSnapshot(ctx, opts, fn)
	return err
}

// scanReaders is how many readers a scan runs at once, each over its own range of
// positions: opts.Parallel, by default one per CPU, at most the read pool.
func scanReaders(opts app.ScanOptions) int64 {
	n := opts.Parallel
	if n == 0 {
		n = runtime.GOMAXPROCS(0)
	}
	return int64(max(1, min(n, readConns)))
}

// ScanSnapshot calls fn with batches of every journal event up to the last position at
// the start of the scan, and returns that position (decimal, as TailSubscriber spells
// positions), so that a rebuild can take the live feed over from exactly there.
//
// The journal is append-only, so the rows up to a position never change: the scan
// splits them into ranges that readers on separate connections decode in parallel,
// ahead of fn. Events are in position order within a batch; batches come in no
// particular order. fn runs on the calling goroutine, never concurrently with itself.
// fn must not keep a batch, nor pointers into it, after it returns: the scan reuses
// its memory (a million events would otherwise allocate a third of a gigabyte).
func (s *JournalStore) ScanSnapshot(ctx context.Context, opts app.ScanOptions, fn func(batch []domain.Event) error) (position string, err error) {
	if err := opts.Check(); err != nil {
		return "", fmt.Errorf("scan journal: %w", err)
	}
	last, err := s.MaxSeq(ctx)
	if err != nil {
		return "", fmt.Errorf("scan journal: %w", err)
	}
	scanPartitions := scanReaders(opts)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []domain.Event, 2*scanPartitions)
	// Batches fn is done with, for the readers to fill again.
	free := make(chan []domain.Event, 4*scanPartitions)
	readErrs := make(chan error, scanPartitions)
	var wg sync.WaitGroup
	for p := range int64(scanPartitions) {
		lo, hi := last*p/scanPartitions, last*(p+1)/scanPartitions // (lo, hi]
		wg.Go(func() { readErrs <- s.scanRange(ctx, lo, hi, batches, free) })
	}
	go func() {
		wg.Wait()
		close(batches)
		close(readErrs)
	}()
	var fnErr error
	for batch := range batches {
		if fnErr == nil {
			if fnErr = fn(batch); fnErr != nil {
				cancel()
			}
		}
		select {
		case free <- batch[:0]:
		default:
		}
	}
	if fnErr != nil {
		return "", fnErr
	}
	for err := range readErrs {
		if err != nil {
			return "", fmt.Errorf("scan journal: %w", err)
		}
	}
	return strconv.FormatInt(last, 10), nil
}

// scanRange sends the events at positions (lo, hi] in batches, filling batches from
// free when it can. It reads through the driver directly: database/sql's per-row
// conversions cost a fifth of a scan.
func (s *JournalStore) scanRange(ctx context.Context, lo, hi int64, out chan<- []domain.Event, free <-chan []domain.Event) error {
	if lo >= hi {
		return nil
	}
	conn, err := s.db.read.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		q, ok := dc.(driver.QueryerContext)
		if !ok {
			return fmt.Errorf("driver connection %T cannot query", dc)
		}
		rows, err := q.QueryContext(ctx, `SELECT `+scanColumns+` FROM journal WHERE seq > ? AND seq <= ? ORDER BY seq`,
			[]driver.NamedValue{{Ordinal: 1, Value: lo}, {Ordinal: 2, Value: hi}})
		if err != nil {
			return err
		}
		defer rows.Close()
		next := func() []domain.Event {
			select {
			case b := <-free:
				return b
			default:
				return make([]domain.Event, 0, scanBatch)
			}
		}
		send := func(b []domain.Event) error {
			select {
			case out <- b:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		var sc rowScanner
		dest := make([]driver.Value, 1)
		batch := next()
		for {
			if err := rows.Next(dest); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return err
			}
			batch = batch[:len(batch)+1]
			if err := sc.decode(dest, &batch[len(batch)-1]); err != nil {
				return err
			}
			if len(batch) == scanBatch {
				if err := send(batch); err != nil {
					return err
				}
				batch = next()
			}
		}
		if len(batch) > 0 {
			return send(batch)
		}
		return nil
	})
}

// rowScanner decodes rows of scanColumns (preceded by seq when withSeq), reusing what
// it can between rows.
type rowScanner struct {
	withSeq bool
	seq     int64
	rec     []byte
	dest    []any
	statusV map[string]domain.Status
}

func (sc *rowScanner) scan(rows *sql.Rows, ev *domain.Event) error {
	if sc.dest == nil {
		sc.dest = []any{&sc.rec}
		if sc.withSeq {
			sc.dest = append([]any{&sc.seq}, sc.dest...)
		}
	}
	sc.rec = nil // Scan allocates a new one: the event's strings keep pointing into it
	if err := rows.Scan(sc.dest...); err != nil {
		return err
	}
	return sc.build(sc.rec, ev)
}

// decode builds ev from a row of scanColumns as the driver returns it (a new slice per
// row, which the event's strings then share).
func (sc *rowScanner) decode(row []driver.Value, ev *domain.Event) error {
	rec, ok := row[0].([]byte)
	if !ok {
		return fmt.Errorf("journal row: rec is %T", row[0])
	}
	return sc.build(rec, ev)
}

func (sc *rowScanner) build(rec []byte, ev *domain.Event) error {
	if len(rec) == 0 {
		return errors.New("journal row: empty record")
	}
	if sc.statusV == nil {
		sc.statusV = map[string]domain.Status{}
	}
	err := decodeEventRecord(unsafe.String(&rec[0], len(rec)), ev, sc.status)
	if err != nil {
		return fmt.Errorf("journal item %q: %w", rec, err)
	}
	return nil
}

// status returns one string per distinct status, so that an event's status does not pin
// its whole record.
func (sc *rowScanner) status(s string) domain.Status {
	st, ok := sc.statusV[s]
	if !ok {
		st = domain.Status(strings.Clone(s))
		sc.statusV[s] = st
	}
	return st
}
