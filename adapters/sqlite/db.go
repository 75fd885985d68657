package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// FileName is the name of the database file in the data directory.
const FileName = "agentwatch.db"

// Connection settings. The busy timeout is what lets two processes share the file: a
// writer that finds the file locked waits for the other's transaction instead of failing.
const (
	busyTimeout  = 10 * time.Second
	readConns    = 4
	cacheSizeKiB = 64 << 10
	bulkCacheKiB = 512 << 10
	mmapSize     = 1 << 30
)

// DB is one open agentwatch database. Writes are serialized on a single connection (each
// write transaction starts with BEGIN IMMEDIATE, so that concurrent writers queue on the
// lock instead of failing with SQLITE_BUSY on upgrade); reads use a small pool of
// read-only connections and never block writers (WAL).
//
// A DB is safe for concurrent use. The stores built on it (JournalStore,
// ReadModelStore, AlertStore, CheckpointStore, QuarantineStore) share it.
type DB struct {
	path   string
	write  *sql.DB
	read   *sql.DB
	logger *slog.Logger
	notify *notifier

	stmtMu sync.Mutex
	stmts  map[stmtKey]*sql.Stmt

	// ckpt is the connection that checkpoints the WAL, off the writers' path.
	ckpt      *sql.DB
	ckptWake  chan struct{}
	ckptStop  chan struct{}
	ckptDone  chan struct{}
	ckptEvery time.Duration
	walLimit  int64

	// genSQL caches the SQL of read-model generations (sqlOf).
	genSQL sync.Map
	// curGen caches the current read-model generation (see currentGeneration).
	curGenMu sync.Mutex
	curGen   int
	curGenAt time.Time

	closeOnce sync.Once
	closeErr  error
}

type stmtKey struct {
	pool  *sql.DB
	query string
}

// Open opens the database in the data directory dir (the file dir/agentwatch.db),
// creating the directory, the file and the schema as needed, and migrating an older
// schema to the current version. Another process may have the same file open.
func Open(ctx context.Context, dir string, logger *slog.Logger) (*DB, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open sqlite: create data directory %s: %w", dir, err)
	}
	path, err := filepath.Abs(filepath.Join(dir, FileName))
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	db := &DB{path: path, logger: logger.With("db", path), stmts: map[stmtKey]*sql.Stmt{}}

	ms := busyTimeout.Milliseconds()
	common := url.Values{}
	common.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", ms))
	common.Add("_pragma", fmt.Sprintf("cache_size(-%d)", cacheSizeKiB))
	common.Add("_pragma", "temp_store(MEMORY)")

	w := cloneValues(common)

	w.Add("_pragma", "journal_size_limit(67108864)")
	// Writers never checkpoint: a commit that crosses the auto-checkpoint threshold would
	// copy the WAL into the database before returning. The checkpointer does it instead.
	w.Add("_pragma", "wal_autocheckpoint(0)")
	w.Set("_journal_mode", "WAL")
	w.Set("_synchronous", "NORMAL")
	w.Set("_txlock", "immediate")
	if db.write, err = sql.Open("sqlite", path+"?"+w.Encode()); err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	db.write.SetMaxOpenConns(1)
	db.write.SetMaxIdleConns(1)
	db.write.SetConnMaxIdleTime(0)
	db.write.SetConnMaxLifetime(0)

	// The first write connection switches the file to WAL; read connections open after
	// the migration below, so they find it in WAL mode.
	if err := db.migrate(ctx); err != nil {
		_ = db.write.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}

	r := cloneValues(common)
	r.Add("_pragma", fmt.Sprintf("mmap_size(%d)", mmapSize))
	r.Set("_query_only", "1")
	if db.read, err = sql.Open("sqlite", path+"?"+r.Encode()); err != nil {
		_ = db.write.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	db.read.SetMaxOpenConns(readConns)
	db.read.SetMaxIdleConns(readConns)
	db.read.SetConnMaxIdleTime(0)
	db.read.SetConnMaxLifetime(0)
	if err := db.read.PingContext(ctx); err != nil {
		_ = db.read.Close()
		_ = db.write.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}

	c := cloneValues(common)
	c.Del("_pragma")
	c.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", walTruncateWait.Milliseconds()))
	c.Add("_pragma", "temp_store(MEMORY)")
	if db.ckpt, err = sql.Open("sqlite", path+"?"+c.Encode()); err != nil {
		_ = db.read.Close()
		_ = db.write.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	db.ckpt.SetMaxOpenConns(1)
	db.ckptWake, db.ckptStop, db.ckptDone = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
	db.ckptEvery = checkpointEvery
	db.walLimit = DefaultWALLimit
	go db.checkpointLoop()

	db.notify = acquireNotifier(path)
	db.logger.Debug("sqlite opened")
	return db, nil
}

// checkpointEvery is how often, at most, the checkpointer copies the WAL into the
// database while writes go on.
const checkpointEvery = time.Second

// DefaultWALLimit bounds the WAL under sustained writes with readers open. A PASSIVE
// checkpoint copies the WAL into the database without waiting for anyone, but the WAL
// file only starts over once no reader still needs it — which, with readers always
// open, is never. Past this size the checkpointer runs a TRUNCATE checkpoint, which waits
// (up to walTruncateWait) for readers to move to the newest snapshot and writers to
// pause, then empties the file. The WAL then stays within about this size plus what is
// written during one checkpoint.
const DefaultWALLimit = 64 << 20

// walIdleAfter is how long without writes before the checkpointer empties the WAL.
const walIdleAfter = time.Second

// walTruncateWait bounds how long a TRUNCATE checkpoint waits for readers and writers
// (the checkpoint connection's busy timeout); one that cannot finish in time is tried
// again after the next writes.
const walTruncateWait = 2 * time.Second

// checkpointLoop checkpoints the WAL after writes (PASSIVE: it never blocks readers or
// writers), at most once per checkpointEvery, and empties it (TRUNCATE) as soon as a
// write finds it past walLimit, or when writes stop for walIdleAfter, until Close.
func (db *DB) checkpointLoop() {
	defer close(db.ckptDone)
	var idle, passive <-chan time.Time
	var lastPassive time.Time
	for {
		select {
		case <-db.ckptStop:
			return
		case <-idle:
			idle, passive = nil, nil
			if db.WALSize() > 0 {
				db.checkpointWAL("TRUNCATE")
			}
			continue
		case <-passive:
			passive = nil
			db.checkpointWAL("PASSIVE")
			lastPassive = time.Now()
			continue
		case <-db.ckptWake:
		}
		idle = time.After(walIdleAfter)
		switch {
		case db.WALSize() > db.walLimit:
			db.checkpointWAL("TRUNCATE")
			lastPassive = time.Now()
		case passive != nil:
		case time.Since(lastPassive) >= db.ckptEvery:
			db.checkpointWAL("PASSIVE")
			lastPassive = time.Now()
		default:
			passive = time.After(db.ckptEvery - time.Since(lastPassive))
		}
	}
}

// checkpointWAL runs one checkpoint of mode and logs what it could not do. PASSIVE runs
// on the checkpoint connection, beside writers. TRUNCATE runs on the write connection,
// between two write transactions: a checkpoint that waited for the write lock on a
// connection of its own would starve while writers commit back to back. It waits at
// most walTruncateWait for readers to leave the WAL.
func (db *DB) checkpointWAL(mode string) {
	var busy, frames, done int
	start := time.Now()
	var err error
	if mode == "PASSIVE" {
		err = db.ckpt.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &done)
	} else {
		err = db.onWriteConn(func(c *sql.Conn) error {
			ctx := context.Background()
			if _, err := c.ExecContext(ctx, fmt.Sprintf(`PRAGMA busy_timeout = %d`, walTruncateWait.Milliseconds())); err != nil {
				return err
			}
			defer c.ExecContext(ctx, fmt.Sprintf(`PRAGMA busy_timeout = %d`, busyTimeout.Milliseconds()))
			return c.QueryRowContext(ctx, `PRAGMA wal_checkpoint(`+mode+`)`).Scan(&busy, &frames, &done)
		})
	}
	switch took := time.Since(start); {
	case err != nil:
		db.logger.Warn("sqlite checkpoint failed", "mode", mode, "err", err)
	case busy != 0 && mode != "PASSIVE":
		db.logger.Debug("sqlite checkpoint could not finish: readers kept the WAL; trying again later",
			"mode", mode, "frames", frames, "checkpointed", done, "took", took)
	case took > 100*time.Millisecond:
		db.logger.Debug("sqlite checkpoint", "mode", mode, "frames", frames, "checkpointed", done, "took", took)
	}
}

// onWriteConn runs fn on the write connection, between write transactions.
func (db *DB) onWriteConn(fn func(c *sql.Conn) error) error {
	c, err := db.write.Conn(context.Background())
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c)
}

// WALSize is the size of the WAL file in bytes (0 when there is none).
func (db *DB) WALSize() int64 {
	fi, err := os.Stat(db.path + "-wal")
	if err != nil {
		return 0
	}
	return fi.Size()
}

// written tells the checkpointer that a write transaction committed.
func (db *DB) written() {
	select {
	case db.ckptWake <- struct{}{}:
	default:
	}
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// Checkpoint copies the whole WAL into the database and truncates it, waiting for
// readers and writers as it must. Nothing needs it to be correct; it settles the file
// (after a bulk load, before a measurement or a backup).
func (db *DB) Checkpoint(ctx context.Context) error {
	var busy, frames, done int
	for try := 0; try < 5; try++ {
		if err := db.ckpt.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &frames, &done); err != nil {
			return fmt.Errorf("checkpoint %s: %w", db.path, err)
		}
		if busy == 0 {
			return nil
		}
	}
	return fmt.Errorf("checkpoint %s: the WAL is in use (%d of %d frames copied)", db.path, done, frames)
}

// Path is the database file's path.
func (db *DB) Path() string { return db.path }

// Close closes the database. Subscribers and other users must be stopped first; Close is
// idempotent.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		close(db.ckptStop)
		<-db.ckptDone
		db.stmtMu.Lock()
		var errs []error
		for k, s := range db.stmts {
			errs = append(errs, s.Close())
			delete(db.stmts, k)
		}
		db.stmtMu.Unlock()
		errs = append(errs, db.ckpt.Close(), db.read.Close(), db.write.Close())
		releaseNotifier(db.path)
		if err := errors.Join(errs...); err != nil {
			db.closeErr = fmt.Errorf("close sqlite %s: %w", db.path, err)
		}
	})
	return db.closeErr
}

// stmt returns a statement prepared once per pool and query. database/sql re-prepares
// it on another connection when it has to.
func (db *DB) stmt(ctx context.Context, pool *sql.DB, query string) (*sql.Stmt, error) {
	k := stmtKey{pool, query}
	db.stmtMu.Lock()
	defer db.stmtMu.Unlock()
	if s, ok := db.stmts[k]; ok {
		return s, nil
	}
	s, err := pool.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare %q: %w", query, err)
	}
	db.stmts[k] = s
	return s, nil
}

// writeStmts returns the write statements for queries, prepared once on the write
// connection. It must be called before writeTx, never inside it: preparing needs the
// one write connection that an open write transaction holds. Inside the transaction,
// tx.StmtContext reuses the prepared statement.
func (db *DB) writeStmts(ctx context.Context, queries ...string) ([]*sql.Stmt, error) {
	out := make([]*sql.Stmt, len(queries))
	for i, q := range queries {
		st, err := db.stmt(ctx, db.write, q)
		if err != nil {
			return nil, err
		}
		out[i] = st
	}
	return out, nil
}

// writeTx runs fn in a write transaction (BEGIN IMMEDIATE) and commits it, or rolls it
// back when fn fails. fn must not prepare statements on the write pool (see
// writeStmts) nor start another write transaction: the pool has one connection.
func (db *DB) writeTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin write transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	db.written()
	return nil
}

// journalAppended returns a channel that is closed at the next append to the journal
// through any DB of this process on the same file.
func (db *DB) journalAppended() <-chan struct{} { return db.notify.wait() }

// notifier broadcasts "something was appended" by closing a channel and replacing it.
type notifier struct {
	mu   sync.Mutex
	ch   chan struct{}
	refs int
}

func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}

func (n *notifier) broadcast() {
	n.mu.Lock()
	close(n.ch)
	n.ch = make(chan struct{})
	n.mu.Unlock()
}

// notifiers are shared by the DBs of one process that have the same file open, so that
// an append through one wakes the subscribers of another at once.
var notifiers = struct {
	sync.Mutex
	m map[string]*notifier
}{m: map[string]*notifier{}}

func acquireNotifier(path string) *notifier {
	notifiers.Lock()
	defer notifiers.Unlock()
	n := notifiers.m[path]
	if n == nil {
		n = &notifier{ch: make(chan struct{})}
		notifiers.m[path] = n
	}
	n.refs++
	return n
}

func releaseNotifier(path string) {
	notifiers.Lock()
	defer notifiers.Unlock()
	if n := notifiers.m[path]; n != nil {
		if n.refs--; n.refs <= 0 {
			delete(notifiers.m, path)
		}
	}
}
