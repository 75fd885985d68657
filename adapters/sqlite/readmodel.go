package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/agentstats"
	"github.com/agentwatch/agentwatch/projections/executionindex"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// ReadModelStore holds the read models of one generation: session aggregates with
// their versions (sessions_gN), the execution index (executions_gN), agent stats
// counters (agent_stats_gN) and stuck-detector entries (stuck_gN). A rebuild fills a new
// generation next to the one serving and switches the current generation atomically
// (SwitchGeneration); a store made for generation 0 follows the current one.
//
// It is safe for concurrent use, also by several processes: every Commit is one write
// transaction guarded by session versions. Rows are stored in a compact binary form
// (codec.go); keys and what the indexes sort on are plain columns.
type ReadModelStore struct {
	db  *DB
	gen int
	now func() time.Time
}

var (
	_ app.ProjectionStore   = (*ReadModelStore)(nil)
	_ executionindex.Reader = (*ReadModelStore)(nil)
	_ app.StatsReader       = (*ReadModelStore)(nil)
	_ app.StuckStore        = (*ReadModelStore)(nil)
)

// NewReadModelStore returns the read models of generation gen, or of whatever
// generation is current when gen is 0. Readers of generation 0 may see a switch made
// by another process up to currentGenTTL late; a projector on generation 0 never mixes
// generations: Commit writes to the generation current inside its transaction and
// refuses session versions read from another one (domain.ErrConflict: reload, retry).
func NewReadModelStore(db *DB, gen int) *ReadModelStore {
	return &ReadModelStore{db: db, gen: gen, now: time.Now}
}

// genSQL is the SQL of one generation's tables.
type genSQL struct {
	t               genTables
	loadSessions    string
	insertSession   string
	updateSession   string
	upsertExec      string
	getExec         string
	deleteZeroStats string
	upsertStuck     string
	deleteStuck     string
}

var genSQLCache sync.Map // int -> *genSQL

func sqlOf(gen int) *genSQL {
	if v, ok := genSQLCache.Load(gen); ok {
		return v.(*genSQL)
	}
	t := tablesOf(gen)
	q := &genSQL{
		t:             t,
		loadSessions:  `SELECT id, version, session FROM ` + t.sessions + ` WHERE id IN (SELECT value FROM json_each(?))`,
		insertSession: `INSERT INTO ` + t.sessions + ` (id, version, session) VALUES (?, 1, ?) ON CONFLICT (id) DO NOTHING`,
		updateSession: `UPDATE ` + t.sessions + ` SET version = version + 1, session = ? WHERE id = ? AND version = ?`,
		// The rank guard: an item is replaced only by one of equal or higher rank, so a
		// late RUNNING never overwrites a terminal status while a redrive reopens.
		upsertExec: `INSERT INTO ` + t.executions + ` (execution_arn, agent_name, status, start_date, session_id, rank, item)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (execution_arn) DO UPDATE SET agent_name = excluded.agent_name, status = excluded.status,
				start_date = excluded.start_date, session_id = excluded.session_id, rank = excluded.rank, item = excluded.item
			WHERE excluded.rank >= ` + t.executions + `.rank`,
		getExec:         `SELECT ` + execColumns + ` FROM ` + t.executions + ` WHERE execution_arn = ?`,
		deleteZeroStats: `DELETE FROM ` + t.stats + ` WHERE agent = ? AND bucket = ? AND value = 0`,
		upsertStuck: `INSERT INTO ` + t.stuckT + ` (session_id, next_check_ms, entry) VALUES (?, ?, ?)
			ON CONFLICT (session_id) DO UPDATE SET next_check_ms = excluded.next_check_ms, entry = excluded.entry`,
		deleteStuck: `DELETE FROM ` + t.stuckT + ` WHERE session_id = ?`,
	}
	v, _ := genSQLCache.LoadOrStore(gen, q)
	return v.(*genSQL)
}

// addStatsSQL adds n counter deltas at once.
func (q *genSQL) addStatsSQL(n int) string {
	return `INSERT INTO ` + q.t.stats + ` (agent, bucket, counter, value) VALUES (?, ?, ?, ?)` + strings.Repeat(`, (?, ?, ?, ?)`, n-1) +
		` ON CONFLICT (agent, bucket, counter) DO UPDATE SET value = value + excluded.value`
}

// statsPerStmt caps the counters of one statement.
const statsPerStmt = 32

// statChanges flattens deltas into counter changes, merged per counter, in a fixed
// order, and lists the buckets they touch.
func statChanges(deltas []agentstats.Delta) (changes []statChange, buckets [][2]string) {
	byKey := map[statKey]int64{}
	for _, d := range deltas {
		for c, v := range d.Counters {
			byKey[statKey{d.Agent, d.Bucket, c}] += v
		}
	}
	seen := map[[2]string]bool{}
	for k, v := range byKey {
		if v == 0 {
			continue
		}
		changes = append(changes, statChange{k, v})
		if b := [2]string{k.agent, k.bucket}; !seen[b] {
			seen[b] = true
			buckets = append(buckets, b)
		}
	}
	slices.SortFunc(changes, compareStatKeys)
	slices.SortFunc(buckets, func(a, b [2]string) int { return strings.Compare(a[0]+"\x00"+a[1], b[0]+"\x00"+b[1]) })
	return changes, buckets
}

type statKey struct{ agent, bucket, counter string }

type statChange struct {
	statKey
	delta int64
}

const currentGenSQL = `SELECT gen FROM generations WHERE current = 1`

// currentGenTTL bounds how long a generation switch by another process goes unseen by
// reads. Commits never act on a stale generation: they check it inside their
// transaction (see Commit).
const currentGenTTL = 250 * time.Millisecond

// generation is the store's generation, or the current one (cached for
// currentGenTTL).
func (s *ReadModelStore) generation(ctx context.Context) (int, error) {
	if s.gen > 0 {
		return s.gen, nil
	}
	return s.db.currentGeneration(ctx)
}

func (db *DB) currentGeneration(ctx context.Context) (int, error) {
	db.curGenMu.Lock()
	defer db.curGenMu.Unlock()
	if db.curGen > 0 && time.Since(db.curGenAt) < currentGenTTL {
		return db.curGen, nil
	}
	st, err := db.stmt(ctx, db.read, currentGenSQL)
	if err != nil {
		return 0, err
	}
	var gen int
	if err := st.QueryRowContext(ctx).Scan(&gen); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("no current read-model generation: %w", domain.ErrNotFound)
		}
		return 0, fmt.Errorf("current read-model generation: %w", err)
	}
	db.curGen, db.curGenAt = gen, time.Now()
	return gen, nil
}

// setCurrentGeneration updates the cache (gen 0: forget it).
func (db *DB) setCurrentGeneration(gen int) {
	db.curGenMu.Lock()
	db.curGen, db.curGenAt = gen, time.Now()
	db.curGenMu.Unlock()
}

// Versions handed out by LoadSessions carry the generation they were read from in their
// high 32 bits, so that a projector that loaded a session from one generation can
// never commit it into another (a store following the current generation across a
// switch): the version check fails and the projector reloads.
const versionGenShift = 32

func taggedVersion(gen int, stored int64) int64 { return int64(gen)<<versionGenShift | stored }

// storedVersion returns the stored version that v names in generation gen, or false when
// v was read from another generation.
func storedVersion(gen int, v int64) (int64, bool) {
	if v>>versionGenShift != int64(gen) {
		return 0, false
	}
	return v & (1<<versionGenShift - 1), true
}

func (s *ReadModelStore) readSQL(ctx context.Context) (*genSQL, error) {
	gen, err := s.generation(ctx)
	if err != nil {
		return nil, err
	}
	return sqlOf(gen), nil
}

// LoadSessions returns the stored sessions among ids with their versions. Sessions that
// are not stored are absent from the map (their zero VersionedSession, version 0, is
// what a new session starts from). Versions are opaque: they name the generation they
// were read from, too.
func (s *ReadModelStore) LoadSessions(ctx context.Context, ids []string) (map[string]app.VersionedSession, error) {
	out := make(map[string]app.VersionedSession, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	gen, err := s.generation(ctx)
	if err != nil {
		return nil, fmt.Errorf("load %d sessions: %w", len(ids), err)
	}
	q := sqlOf(gen)
	idsJSON, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("load %d sessions: %w", len(ids), err)
	}
	st, err := s.db.stmt(ctx, s.db.read, q.loadSessions)
	if err != nil {
		return nil, fmt.Errorf("load %d sessions: %w", len(ids), err)
	}
	rows, err := st.QueryContext(ctx, idsJSON)
	if err != nil {
		return nil, fmt.Errorf("load %d sessions: %w", len(ids), err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var vs app.VersionedSession
		var raw sql.RawBytes
		if err := rows.Scan(&id, &vs.Version, &raw); err != nil {
			return nil, fmt.Errorf("load %d sessions: %w", len(ids), err)
		}
		if err := decodeSession(raw, &vs.Session); err != nil {
			return nil, fmt.Errorf("load session %s: %w", id, err)
		}
		vs.Version = taggedVersion(gen, vs.Version)
		out[id] = vs
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load %d sessions: %w", len(ids), err)
	}
	return out, nil
}

// encodedBatch is a batch with its rows encoded before the write lock is taken.
type encodedBatch struct {
	sessions [][]byte
	items    [][]byte
	stuck    [][]byte
}

func encodeBatch(b *app.Batch, indexedAt string) encodedBatch {
	var e encodedBatch
	e.sessions = make([][]byte, len(b.Sessions))
	for i := range b.Sessions {
		e.sessions[i] = encodeSession(nil, &b.Sessions[i].Session)
	}
	e.items = make([][]byte, len(b.Index))
	for i := range b.Index {
		it := b.Index[i]
		it.IndexedAt = indexedAt
		e.items[i] = encodeItem(nil, &it)
	}
	e.stuck = make([][]byte, len(b.Stuck))
	for i := range b.Stuck {
		if !b.Stuck[i].Delete {
			e.stuck[i] = encodeEntry(nil, &b.Stuck[i].Entry)
		}
	}
	return e
}

// commitStmts are the statements of a commit, prepared on the write connection.
type commitStmts struct {
	gen                                                                                                            int
	currentGen, insertSession, updateSession, upsertExec, deleteZeroStats, upsertStuck, deleteStuck, setCheckpoint *sql.Stmt
	// addStats[n] adds n counters.
	addStats map[int]*sql.Stmt
}

func (s *ReadModelStore) commitStmts(ctx context.Context, changes []statChange) (*commitStmts, error) {
	gen, err := s.generation(ctx)
	if err != nil {
		return nil, err
	}
	q := sqlOf(gen)
	queries := []string{currentGenSQL, q.insertSession, q.updateSession, q.upsertExec, q.deleteZeroStats, q.upsertStuck, q.deleteStuck, setCheckpointSQL}
	var sizes []int
	for lo := 0; lo < len(changes); lo += statsPerStmt {
		n := min(statsPerStmt, len(changes)-lo)
		if !slices.Contains(sizes, n) {
			sizes = append(sizes, n)
			queries = append(queries, q.addStatsSQL(n))
		}
	}
	st, err := s.db.writeStmts(ctx, queries...)
	if err != nil {
		return nil, err
	}
	cs := &commitStmts{gen, st[0], st[1], st[2], st[3], st[4], st[5], st[6], st[7], map[int]*sql.Stmt{}}
	for i, n := range sizes {
		cs.addStats[n] = st[8+i]
	}
	return cs, nil
}

// Commit writes the batch in one transaction: sessions under their version check,
// index items under the rank guard with indexedAt stamped to the commit time, stats
// deltas added to the counters (counters that reach 0 are deleted), stuck entries
// upserted or deleted, and the checkpoint. When a session's version moved, nothing is
// written and the error matches domain.ErrConflict.
//
// A store that follows the current generation (generation 0) writes to the generation
// that is current inside the commit's transaction; a session version read from another
// generation (a switch in between) is a conflict, so the projector reloads from the
// new one.
func (s *ReadModelStore) Commit(ctx context.Context, b app.Batch) error {
	enc := encodeBatch(&b, domain.FormatTime(s.now()))
	changes, buckets := statChanges(b.Stats)
	cs, err := s.commitStmts(ctx, changes)
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	err = s.db.writeTx(ctx, func(tx *sql.Tx) error {
		bind := func(st *sql.Stmt) *sql.Stmt { return tx.StmtContext(ctx, st) }
		if s.gen == 0 {
			var cur int
			if err := bind(cs.currentGen).QueryRowContext(ctx).Scan(&cur); err != nil {
				return fmt.Errorf("current generation: %w", err)
			}
			if cur != cs.gen {
				s.db.setCurrentGeneration(0)
				return fmt.Errorf("the current generation moved from %d to %d: %w", cs.gen, cur, domain.ErrConflict)
			}
		}
		if err := writeSessions(ctx, bind, cs, b.Sessions, enc.sessions); err != nil {
			return err
		}
		if err := writeIndex(ctx, bind, cs, b.Index, enc.items); err != nil {
			return err
		}
		if err := addStats(ctx, bind, cs, changes, buckets); err != nil {
			return err
		}
		if err := writeStuck(ctx, bind, cs, b.Stuck, enc.stuck); err != nil {
			return err
		}
		if b.Checkpoint != nil {
			return setCheckpoint(ctx, bind(cs.setCheckpoint), b.Checkpoint.Name, b.Checkpoint.Position)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("commit %d sessions: %w", len(b.Sessions), err)
	}
	return nil
}

func writeSessions(ctx context.Context, bind func(*sql.Stmt) *sql.Stmt, cs *commitStmts, ws []app.SessionWrite, enc [][]byte) error {
	if len(ws) == 0 {
		return nil
	}
	ins, upd := bind(cs.insertSession), bind(cs.updateSession)
	for i := range ws {
		w := &ws[i]
		var res sql.Result
		var err error
		if w.Version == 0 {
			res, err = ins.ExecContext(ctx, w.Session.ID, enc[i])
		} else {
			v, ok := storedVersion(cs.gen, w.Version)
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

func writeIndex(ctx context.Context, bind func(*sql.Stmt) *sql.Stmt, cs *commitStmts, items []executionindex.Item, enc [][]byte) error {
	if len(items) == 0 {
		return nil
	}
	st := bind(cs.upsertExec)
	for i := range items {
		it := &items[i]
		if _, err := st.ExecContext(ctx, it.ExecutionArn, it.AgentName, it.Status, it.StartDate, it.SessionID, it.Rank, enc[i]); err != nil {
			return fmt.Errorf("index execution %s: %w", it.ExecutionArn, err)
		}
	}
	return nil
}

func addStats(ctx context.Context, bind func(*sql.Stmt) *sql.Stmt, cs *commitStmts, changes []statChange, buckets [][2]string) error {
	if len(changes) == 0 {
		return nil
	}
	args := make([]any, 0, 4*statsPerStmt)
	for lo := 0; lo < len(changes); lo += statsPerStmt {
		chunk := changes[lo:min(lo+statsPerStmt, len(changes))]
		args = args[:0]
		for _, c := range chunk {
			args = append(args, c.agent, c.bucket, c.counter, c.delta)
		}
		if _, err := bind(cs.addStats[len(chunk)]).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("add stats: %w", err)
		}
	}
	// Counters that reached zero go, so that equal buckets have equal counters.
	del := bind(cs.deleteZeroStats)
	for _, b := range buckets {
		if _, err := del.ExecContext(ctx, b[0], b[1]); err != nil {
			return fmt.Errorf("delete zero stats of %s/%s: %w", b[0], b[1], err)
		}
	}
	return nil
}

func writeStuck(ctx context.Context, bind func(*sql.Stmt) *sql.Stmt, cs *commitStmts, ws []app.StuckWrite, enc [][]byte) error {
	if len(ws) == 0 {
		return nil
	}
	up, del := bind(cs.upsertStuck), bind(cs.deleteStuck)
	for i := range ws {
		w := &ws[i]
		var err error
		if w.Delete {
			_, err = del.ExecContext(ctx, w.Entry.SessionID)
		} else {
			_, err = up.ExecContext(ctx, w.Entry.SessionID, w.NextCheckMs, enc[i])
		}
		if err != nil {
			return fmt.Errorf("write stuck entry %s: %w", w.Entry.SessionID, err)
		}
	}
	return nil
}

// Get returns the index item of one execution; domain.ErrNotFound (wrapped) when the
// index has none.
func (s *ReadModelStore) Get(ctx context.Context, executionArn string) (executionindex.Item, error) {
	q, err := s.readSQL(ctx)
	if err != nil {
		return executionindex.Item{}, fmt.Errorf("get execution %s: %w", executionArn, err)
	}
	st, err := s.db.stmt(ctx, s.db.read, q.getExec)
	if err != nil {
		return executionindex.Item{}, fmt.Errorf("get execution %s: %w", executionArn, err)
	}
	rows, err := st.QueryContext(ctx, executionArn)
	if err != nil {
		return executionindex.Item{}, fmt.Errorf("get execution %s: %w", executionArn, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return executionindex.Item{}, fmt.Errorf("get execution %s: %w", executionArn, err)
		}
		return executionindex.Item{}, fmt.Errorf("get execution %s: %w", executionArn, domain.ErrNotFound)
	}
	var it executionindex.Item
	if err := scanExecItem(rows, &it); err != nil {
		return executionindex.Item{}, fmt.Errorf("get execution %s: %w", executionArn, err)
	}
	return it, nil
}

// execColumns are what scanExecItem reads.
const execColumns = `execution_arn, agent_name, status, start_date, session_id, rank, item`

func scanExecItem(rows *sql.Rows, it *executionindex.Item) error {
	var raw sql.RawBytes
	if err := rows.Scan(&it.ExecutionArn, &it.AgentName, &it.Status, &it.StartDate, &it.SessionID, &it.Rank, &raw); err != nil {
		return err
	}
	if err := decodeItem(raw, it); err != nil {
		return fmt.Errorf("execution %s: %w", it.ExecutionArn, err)
	}
	return nil
}

// executionsQuery is the SQL of one page of q (normalized). The cursor is a row-value
// comparison, (start_date, execution_arn) < (?, ?), which SQLite turns into a range of
// the index it walks, so a page deep in costs what the first one does (written as an OR
// of two comparisons, the same condition made it scan the index from the top).
func executionsQuery(t genTables, q executionindex.Query) (string, []any, error) {
	var where []string
	var args []any
	if q.AgentName != "" {
		where = append(where, `agent_name = ?`)
		args = append(args, q.AgentName)
	}
	if q.Status != "" {
		where = append(where, `status = ?`)
		args = append(args, q.Status)
	}
	from, to := "", ""
	if !q.From.IsZero() {
		from = domain.FormatTime(q.From)
	}
	if !q.To.IsZero() {
		to = domain.FormatTime(q.To)
	}
	cmp, order := `<`, `DESC`
	if q.Ascending {
		cmp, order = `>`, `ASC`
	}
	var cursor *executionindex.Cursor
	if q.Cursor != "" {
		c, err := executionindex.DecodeCursor(q.Cursor)
		if err != nil {
			return "", nil, err
		}
		cursor = &c
		// Of two bounds on the same side, only the tighter one is kept: SQLite seeks by
		// one of them, and the other would have it walk from there to the cursor.
		switch {
		case q.Ascending && from != "" && c.StartDate >= from:
			from = ""
		case q.Ascending && from != "":
			cursor = nil
		case !q.Ascending && to != "" && c.StartDate <= to:
			to = ""
		case !q.Ascending && to != "":
			cursor = nil
		}
	}
	if from != "" {
		where = append(where, `start_date >= ?`)
		args = append(args, from)
	}
	if to != "" {
		where = append(where, `start_date <= ?`)
		args = append(args, to)
	}
	if cursor != nil {
		where = append(where, `(start_date, execution_arn) `+cmp+` (?, ?)`)
		args = append(args, cursor.StartDate, cursor.Arn)
	}
	var b strings.Builder
	b.WriteString(`SELECT ` + execColumns + ` FROM ` + t.executions)
	if len(where) > 0 {
		b.WriteString(` WHERE ` + strings.Join(where, ` AND `))
	}
	b.WriteString(` ORDER BY start_date ` + order + `, execution_arn ` + order + ` LIMIT ?`)
	args = append(args, q.Limit+1)
	return b.String(), args, nil
}

// Query answers an index query in startDate order (newest first unless q.Ascending),
// ties broken by ARN, from the index that fits: (agent, startDate), (status,
// startDate), or startDate alone. NextCursor is set exactly when more items follow.
func (s *ReadModelStore) Query(ctx context.Context, q executionindex.Query) (executionindex.Page, error) {
	if err := q.Normalize(); err != nil {
		return executionindex.Page{}, fmt.Errorf("query executions: %w", err)
	}
	g, err := s.readSQL(ctx)
	if err != nil {
		return executionindex.Page{}, fmt.Errorf("query executions: %w", err)
	}
	query, args, err := executionsQuery(g.t, q)
	if err != nil {
		return executionindex.Page{}, fmt.Errorf("query executions: %w", err)
	}
	rows, err := s.db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return executionindex.Page{}, fmt.Errorf("query executions: %w", err)
	}
	defer rows.Close()
	page := executionindex.Page{Items: make([]executionindex.Item, 0, min(q.Limit, 64))}
	more := false
	for rows.Next() {
		if len(page.Items) == q.Limit {
			more = true
			break
		}
		var it executionindex.Item
		if err := scanExecItem(rows, &it); err != nil {
			return executionindex.Page{}, fmt.Errorf("query executions: %w", err)
		}
		page.Items = append(page.Items, it)
	}
	if err := rows.Err(); err != nil {
		return executionindex.Page{}, fmt.Errorf("query executions: %w", err)
	}
	if more {
		page.NextCursor = executionindex.EncodeCursor(&page.Items[len(page.Items)-1])
	}
	return page, nil
}

// Stats returns the stats buckets of one agent (or all) at one granularity (HOUR# or
// DAY#; "" selects both) whose start lies in [From, To], sorted by agent then bucket.
func (s *ReadModelStore) Stats(ctx context.Context, q app.StatsQuery) ([]agentstats.Bucket, error) {
	prefixes, err := q.Prefixes()
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	g, err := s.readSQL(ctx)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	var ranges []string
	var args []any
	for _, p := range prefixes {
		lo, hi := agentstats.BucketRange(p, q.From, q.To)
		ranges = append(ranges, `(bucket >= ? AND bucket <= ?)`)
		args = append(args, lo, hi)
	}
	query := `SELECT agent, bucket, counter, value FROM ` + g.t.stats + ` WHERE (` + strings.Join(ranges, ` OR `) + `)`
	if q.AgentName != "" {
		query += ` AND agent = ?`
		args = append(args, q.AgentName)
	}
	query += ` ORDER BY agent, bucket`
	rows, err := s.db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	defer rows.Close()
	var out []agentstats.Bucket
	for rows.Next() {
		var agent, bucket, counter string
		var v int64
		if err := rows.Scan(&agent, &bucket, &counter, &v); err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
		if n := len(out); n == 0 || out[n-1].Agent != agent || out[n-1].Bucket != bucket {
			out = append(out, agentstats.Bucket{Agent: agent, Bucket: bucket, Counters: agentstats.Counters{}})
		}
		out[len(out)-1].Counters[counter] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	return out, nil
}

// DueEntries returns up to limit entries whose next check is at or before nowMs,
// earliest first (limit <= 0: all).
func (s *ReadModelStore) DueEntries(ctx context.Context, nowMs int64, limit int) ([]app.DueEntry, error) {
	g, err := s.readSQL(ctx)
	if err != nil {
		return nil, fmt.Errorf("due stuck entries: %w", err)
	}
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.db.read.QueryContext(ctx, `SELECT session_id, entry, next_check_ms FROM `+g.t.stuckT+`
		WHERE next_check_ms <= ? ORDER BY next_check_ms, session_id LIMIT ?`, nowMs, limit)
	if err != nil {
		return nil, fmt.Errorf("due stuck entries: %w", err)
	}
	defer rows.Close()
	var out []app.DueEntry
	for rows.Next() {
		var raw sql.RawBytes
		var d app.DueEntry
		if err := rows.Scan(&d.Entry.SessionID, &raw, &d.NextCheckMs); err != nil {
			return nil, fmt.Errorf("due stuck entries: %w", err)
		}
		if err := decodeEntry(raw, &d.Entry); err != nil {
			return nil, fmt.Errorf("due stuck entry %s: %w", d.Entry.SessionID, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("due stuck entries: %w", err)
	}
	return out, nil
}

// SetNextCheck moves an entry's next check from prev to next. When the entry's next
// check is no longer prev — a commit rewrote it, or it was deleted — nothing changes and
// the error matches domain.ErrConflict.
func (s *ReadModelStore) SetNextCheck(ctx context.Context, sessionID string, prev, next int64) error {
	if err := s.ifNextCheck(ctx, prev, `UPDATE %s SET next_check_ms = ? WHERE session_id = ? AND next_check_ms = ?`,
		next, sessionID, prev); err != nil {
		return fmt.Errorf("set next check of %s: %w", sessionID, err)
	}
	return nil
}

// DeleteEntry drops an entry whose next check is still prev. When it is no longer prev
// — a commit rewrote the entry, or it is gone — nothing changes and the error matches
// domain.ErrConflict.
func (s *ReadModelStore) DeleteEntry(ctx context.Context, sessionID string, prev int64) error {
	if err := s.ifNextCheck(ctx, prev, `DELETE FROM %s WHERE session_id = ? AND next_check_ms = ?`,
		sessionID, prev); err != nil {
		return fmt.Errorf("delete stuck entry %s: %w", sessionID, err)
	}
	return nil
}

// ifNextCheck runs a statement on the stuck table (named by %s) that must change
// exactly the entry whose next check is prev.
func (s *ReadModelStore) ifNextCheck(ctx context.Context, prev int64, stmt string, args ...any) error {
	gen, err := s.generation(ctx)
	if err != nil {
		return err
	}
	stmts, err := s.db.writeStmts(ctx, fmt.Sprintf(stmt, sqlOf(gen).t.stuckT))
	if err != nil {
		return err
	}
	return s.db.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.StmtContext(ctx, stmts[0]).ExecContext(ctx, args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n != 1 {
			return fmt.Errorf("next check is no longer %d: %w", prev, domain.ErrConflict)
		}
		return nil
	})
}

// OpenEntries lists every stored detector entry, sorted by session id.
func (s *ReadModelStore) OpenEntries(ctx context.Context) ([]stuck.Entry, error) {
	g, err := s.readSQL(ctx)
	if err != nil {
		return nil, fmt.Errorf("stuck entries: %w", err)
	}
	rows, err := s.db.read.QueryContext(ctx, `SELECT session_id, entry FROM `+g.t.stuckT+` ORDER BY session_id`)
	if err != nil {
		return nil, fmt.Errorf("stuck entries: %w", err)
	}
	defer rows.Close()
	var out []stuck.Entry
	for rows.Next() {
		var raw sql.RawBytes
		var e stuck.Entry
		if err := rows.Scan(&e.SessionID, &raw); err != nil {
			return nil, fmt.Errorf("stuck entries: %w", err)
		}
		if err := decodeEntry(raw, &e); err != nil {
			return nil, fmt.Errorf("stuck entry %s: %w", e.SessionID, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("stuck entries: %w", err)
	}
	return out, nil
}

// CurrentGeneration returns the generation that serves reads.
func (s *ReadModelStore) CurrentGeneration(ctx context.Context) (int, error) {
	var gen int
	err := s.db.read.QueryRowContext(ctx, currentGenSQL).Scan(&gen)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("current generation: %w", domain.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("current generation: %w", err)
	}
	return gen, nil
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

// CreateGeneration creates the (empty) tables of generation gen (>= 1). Creating one
// that exists does nothing.
func (s *ReadModelStore) CreateGeneration(ctx context.Context, gen int) error {
	if err := s.db.writeTx(ctx, func(tx *sql.Tx) error { return createGeneration(ctx, tx, gen) }); err != nil {
		return fmt.Errorf("create generation %d: %w", gen, err)
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

// DropGeneration drops the tables of generation gen. The current generation cannot be
// dropped (domain.ErrConflict); dropping one that does not exist does nothing.
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
		for _, t := range tablesOf(gen).all() {
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

// BulkLoad writes a folded state into generation gen (created when missing) in one
// transaction, for a rebuild: sessions are stored (at a first version, or one above
// the stored version, so that a projector holding an older one conflicts), index items
// upserted under the rank guard with indexedAt stamped (unless set), stats counters set
// to the buckets' values, stuck writes applied. Rows it is not given are left as they
// are. Sessions, items and stuck entries must not repeat a key.
//
// Rows are appended in key order by multi-row inserts while other goroutines encode
// ahead: the items and detector entries are sorted and encoded as soon as data has
// them, while the sessions are written. Loading a fresh (empty) generation also drops
// the secondary indexes and builds each once at the end.
func (s *ReadModelStore) BulkLoad(ctx context.Context, gen int, data app.GenerationData) error {
	if gen < 1 {
		return fmt.Errorf("bulk load: generation %d: generations start at 1", gen)
	}
	start := time.Now()
	indexedAt := domain.FormatTime(s.now())
	t := tablesOf(gen)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	encSessions := encodeAhead(ctx, "session", func() []*domain.Session { return data.Sessions },
		func(s **domain.Session) string { return (*s).ID },
		func(b []byte, s **domain.Session) []byte { return encodeSession(b, *s) })
	encItems := encodeAhead(ctx, "execution", data.AllItems,
		func(it *executionindex.Item) string { return it.ExecutionArn },
		func(b []byte, it *executionindex.Item) []byte {
			if it.IndexedAt != "" {
				return encodeItem(b, it)
			}
			stamped := *it
			stamped.IndexedAt = indexedAt
			return encodeItem(b, &stamped)
		})
	encStuck := encodeAhead(ctx, "stuck entry", data.AllStuck,
		func(w *app.StuckWrite) string { return w.Entry.SessionID },
		func(b []byte, w *app.StuckWrite) []byte {
			if w.Delete {
				return b
			}
			return encodeEntry(b, &w.Entry)
		})

	var rowsTook, indexTook time.Duration
	var counts [3]int
	err := s.db.writeTx(ctx, func(tx *sql.Tx) error {
		if err := createGeneration(ctx, tx, gen); err != nil {
			return err
		}
		// A load writes far more pages than the cache holds: let it hold them (it spills
		// to the WAL otherwise, and the index builds read them back), and let the index
		// builds sort on two threads.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA cache_size = -%d`, bulkCacheKiB)); err != nil {
			return err
		}
		defer tx.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf(`PRAGMA cache_size = -%d`, cacheSizeKiB))
		if _, err := tx.ExecContext(ctx, `PRAGMA threads = 2`); err != nil {
			return err
		}
		rowsStart := time.Now()
		var rows int
		if err := tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM (SELECT 1 FROM `+t.sessions+` LIMIT 1)) +
			(SELECT count(*) FROM (SELECT 1 FROM `+t.executions+` LIMIT 1)) + (SELECT count(*) FROM (SELECT 1 FROM `+t.stuckT+` LIMIT 1))`).Scan(&rows); err != nil {
			return fmt.Errorf("check generation: %w", err)
		}
		fresh := rows == 0
		if fresh {
			// The tables are their key indexes and rows arrive in key order: they grow
			// by appends.
			for _, ix := range t.secondaryIndexNames() {
				if _, err := tx.ExecContext(ctx, `DROP INDEX IF EXISTS `+ix); err != nil {
					return fmt.Errorf("drop index %s: %w", ix, err)
				}
			}
		}

		ins := newMultiInsert(tx, `INSERT INTO `+t.sessions+` (id, version, session) VALUES `, 3,
			` ON CONFLICT (id) DO UPDATE SET version = version + 1, session = excluded.session`)
		for c := range encSessions {
			if c.err != nil {
				return c.err
			}
			for k, ss := range c.rows {
				if err := ins.add(ctx, (*ss).ID, 1, c.data[k]); err != nil {
					return fmt.Errorf("load sessions: %w", err)
				}
			}
			counts[0] += len(c.rows)
		}
		if err := ins.flush(ctx); err != nil {
			return fmt.Errorf("load sessions: %w", err)
		}

		ins = newMultiInsert(tx, `INSERT INTO `+t.executions+` (execution_arn, agent_name, status, start_date, session_id, rank, item) VALUES `, 7,
			` ON CONFLICT (execution_arn) DO UPDATE SET agent_name = excluded.agent_name, status = excluded.status,
				start_date = excluded.start_date, session_id = excluded.session_id, rank = excluded.rank, item = excluded.item
				WHERE excluded.rank >= `+t.executions+`.rank`)
		for c := range encItems {
			if c.err != nil {
				return c.err
			}
			for k, it := range c.rows {
				if err := ins.add(ctx, it.ExecutionArn, it.AgentName, it.Status, it.StartDate, it.SessionID, it.Rank, c.data[k]); err != nil {
					return fmt.Errorf("load executions: %w", err)
				}
			}
			counts[1] += len(c.rows)
		}
		if err := ins.flush(ctx); err != nil {
			return fmt.Errorf("load executions: %w", err)
		}

		ins = newMultiInsert(tx, `INSERT INTO `+t.stats+` (agent, bucket, counter, value) VALUES `, 4,
			` ON CONFLICT (agent, bucket, counter) DO UPDATE SET value = excluded.value`)
		for _, c := range statRows(data.AllBuckets()) {
			if c.delta == 0 {
				if _, err := tx.ExecContext(ctx, `DELETE FROM `+t.stats+` WHERE agent = ? AND bucket = ? AND counter = ?`, c.agent, c.bucket, c.counter); err != nil {
					return fmt.Errorf("load stats: %w", err)
				}
				continue
			}
			if err := ins.add(ctx, c.agent, c.bucket, c.counter, c.delta); err != nil {
				return fmt.Errorf("load stats: %w", err)
			}
		}
		if err := ins.flush(ctx); err != nil {
			return fmt.Errorf("load stats: %w", err)
		}

		ins = newMultiInsert(tx, `INSERT INTO `+t.stuckT+` (session_id, next_check_ms, entry) VALUES `, 3,
			` ON CONFLICT (session_id) DO UPDATE SET next_check_ms = excluded.next_check_ms, entry = excluded.entry`)
		for c := range encStuck {
			if c.err != nil {
				return c.err
			}
			for k, w := range c.rows {
				if w.Delete {
					if !fresh {
						if _, err := tx.ExecContext(ctx, `DELETE FROM `+t.stuckT+` WHERE session_id = ?`, w.Entry.SessionID); err != nil {
							return fmt.Errorf("load stuck entries: %w", err)
						}
					}
					continue
				}
				if err := ins.add(ctx, w.Entry.SessionID, w.NextCheckMs, c.data[k]); err != nil {
					return fmt.Errorf("load stuck entries: %w", err)
				}
			}
			counts[2] += len(c.rows)
		}
		if err := ins.flush(ctx); err != nil {
			return fmt.Errorf("load stuck entries: %w", err)
		}

		rowsTook = time.Since(rowsStart)
		if fresh {
			for _, ddl := range t.indexDDL() {
				if _, err := tx.ExecContext(ctx, ddl); err != nil {
					return fmt.Errorf("create index: %q: %w", ddl, err)
				}
			}
		}
		indexTook = time.Since(rowsStart) - rowsTook
		return nil
	})
	if err != nil {
		return fmt.Errorf("bulk load generation %d: %w", gen, err)
	}
	s.db.logger.Info("read-model generation loaded", "generation", gen, "sessions", counts[0],
		"executions", counts[1], "stuck", counts[2], "rows", rowsTook, "indexes", indexTook, "took", time.Since(start))
	return nil
}

// statRows flattens buckets into their counters, sorted by key (appends, again).
func statRows(buckets []agentstats.Bucket) []statChange {
	var out []statChange
	for _, b := range buckets {
		for c, v := range b.Counters {
			out = append(out, statChange{statKey{b.Agent, b.Bucket, c}, v})
		}
	}
	slices.SortFunc(out, compareStatKeys)
	return out
}

func compareStatKeys(a, b statChange) int {
	if c := strings.Compare(a.agent, b.agent); c != 0 {
		return c
	}
	if c := strings.Compare(a.bucket, b.bucket); c != 0 {
		return c
	}
	return strings.Compare(a.counter, b.counter)
}

// keyOrder returns the indexes of n elements sorted by key: inserting in key order
// appends to the b-trees instead of splitting pages all over them. A repeated key is an
// error.
func keyOrder(n int, key func(i int) string) ([]int32, error) {
	idx := make([]int32, n)
	for i := range idx {
		idx[i] = int32(i)
	}
	cmp := func(a, b int32) int { return strings.Compare(key(int(a)), key(int(b))) }
	if !slices.IsSortedFunc(idx, cmp) { // the model hands them over sorted already
		slices.SortFunc(idx, cmp)
	}
	for i := 1; i < n; i++ {
		if k := key(int(idx[i])); k == key(int(idx[i-1])) {
			return nil, fmt.Errorf("%q appears twice", k)
		}
	}
	return idx, nil
}

// encChunk is a run of rows in key order and their encodings: data[k] encodes
// rows[k]; they share one buffer. A chunk with err set is the last.
type encChunk[T any] struct {
	rows []*T
	data [][]byte
	err  error
}

const encChunkSize = 512

// encodeAhead gets the elements, sorts them by key and encodes them in order, on a
// goroutine of its own, a few chunks ahead of the consumer, until ctx is done. enc
// appends an element to b. what names an element in errors.
func encodeAhead[T any](ctx context.Context, what string, get func() []T, key func(*T) string,
	enc func(b []byte, v *T) []byte) <-chan encChunk[T] {
	out := make(chan encChunk[T], 4)
	go func() {
		defer close(out)
		send := func(c encChunk[T]) bool {
			select {
			case out <- c:
				return true
			case <-ctx.Done():
				return false
			}
		}
		var all []T
		if get != nil {
			all = get()
		}
		order, err := keyOrder(len(all), func(i int) string { return key(&all[i]) })
		if err != nil {
			send(encChunk[T]{err: fmt.Errorf("%s %w", what, err)})
			return
		}
		var buf []byte
		for lo := 0; lo < len(order); lo += encChunkSize {
			idx := order[lo:min(lo+encChunkSize, len(order))]
			c := encChunk[T]{rows: make([]*T, len(idx)), data: make([][]byte, len(idx))}
			buf = make([]byte, 0, max(len(buf), 64*len(idx)))
			for k, i := range idx {
				c.rows[k] = &all[i]
				start := len(buf)
				buf = enc(buf, c.rows[k])
				c.data[k] = buf[start:len(buf):len(buf)]
			}
			if !send(c) {
				return
			}
		}
	}()
	return out
}

// multiInsert inserts rows through INSERT statements of up to multiRows rows each:
// per-statement overhead (database/sql, the driver's bind and reset) paid once per
// batch instead of once per row.
type multiInsert struct {
	tx         *sql.Tx
	head, tail string
	cols       int
	full       *sql.Stmt
	args       []any
}

const multiRows = 64

func newMultiInsert(tx *sql.Tx, head string, cols int, tail string) *multiInsert {
	return &multiInsert{tx: tx, head: head, tail: tail, cols: cols, args: make([]any, 0, cols*multiRows)}
}

func (m *multiInsert) sql(rows int) string {
	row := "(?" + strings.Repeat(", ?", m.cols-1) + ")"
	return m.head + row + strings.Repeat(", "+row, rows-1) + m.tail
}

func (m *multiInsert) add(ctx context.Context, vals ...any) error {
	m.args = append(m.args, vals...)
	if len(m.args) < m.cols*multiRows {
		return nil
	}
	if m.full == nil {
		st, err := m.tx.PrepareContext(ctx, m.sql(multiRows))
		if err != nil {
			return err
		}
		m.full = st
	}
	_, err := m.full.ExecContext(ctx, m.args...)
	m.args = m.args[:0]
	return err
}

// flush inserts the rows left and releases the statement.
func (m *multiInsert) flush(ctx context.Context) error {
	defer func() {
		if m.full != nil {
			_ = m.full.Close()
		}
	}()
	if len(m.args) == 0 {
		return nil
	}
	_, err := m.tx.ExecContext(ctx, m.sql(len(m.args)/m.cols), m.args...)
	m.args = m.args[:0]
	return err
}
