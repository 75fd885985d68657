package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/agentwatch/agentwatch/domain"
)

// SchemaVersion is the schema version this package writes and reads.
const SchemaVersion = 4

// migration brings the schema from version i to i+1, inside the migrating transaction.
type migration func(ctx context.Context, tx *sql.Tx) error

// migrations[i] migrates version i to i+1. Append only: a released migration never
// changes.
var migrations = []migration{
	migrateV1,
	migrateV2,
	migrateV3,
	migrateV4,
}

// schemaV1 holds the tables that are not generationed: the journal, checkpoints, the
// alert outbox, quarantine, and the generation control table.
const schemaV1 = `
CREATE TABLE journal (
	seq    INTEGER PRIMARY KEY AUTOINCREMENT,
	pk     TEXT NOT NULL,
	sk     TEXT NOT NULL,
	status TEXT NOT NULL,
	ts     INTEGER NOT NULL, -- event time, unix ms
	item   TEXT NOT NULL,    -- the domain.JournalItem, JSON
	ev     BLOB,             -- the rest of the item in binary (codec.go), NULL when
	                         -- it holds nothing but PK, SK, Status and Timestamp
	UNIQUE (pk, sk)
);
CREATE TABLE checkpoints (
	name       TEXT PRIMARY KEY,
	position   TEXT NOT NULL,
	updated_at INTEGER NOT NULL -- unix ms
) WITHOUT ROWID;
CREATE TABLE alerts (
	session_id  TEXT NOT NULL,
	kind        TEXT NOT NULL,
	state       TEXT NOT NULL,         -- pending | sent
	raised_at   INTEGER NOT NULL,      -- unix ns
	resolved_at INTEGER,               -- unix ns
	acked_at    INTEGER,               -- unix ns
	acked_by    TEXT NOT NULL DEFAULT '',
	attempts    INTEGER NOT NULL DEFAULT 0,
	alert       TEXT NOT NULL,         -- the app.Alert as raised, JSON
	PRIMARY KEY (session_id, kind)
) WITHOUT ROWID;
CREATE INDEX alerts_state_raised ON alerts (state, raised_at);
CREATE INDEX alerts_raised ON alerts (raised_at);
CREATE TABLE quarantine (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	source  TEXT NOT NULL,
	key     TEXT NOT NULL,
	reason  TEXT NOT NULL,
	payload TEXT NOT NULL,
	at      INTEGER NOT NULL -- unix ns
);
CREATE TABLE generations (
	gen        INTEGER PRIMARY KEY,
	current    INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL -- unix ms
);
CREATE UNIQUE INDEX generations_current ON generations (current) WHERE current = 1;
`

// migrateV1 creates the tables outside read-model generations. (It also created the
// first generation's read-model tables, in a layout migrateV4 drops: a new file now
// gets its read-model tables from the registered read models at first use.)
func migrateV1(ctx context.Context, tx *sql.Tx) error {
	return execScript(ctx, tx, schemaV1)
}

// journalV2 is the journal from schema version 2 on: every row carries its whole event
// in rec (encodeEventRecord), all that a scan reads; pk, sk, status and ts are there
// for the key, SessionEvents' filters and people reading the file.
const journalV2 = `
CREATE TABLE journal_v2 (
	seq    INTEGER PRIMARY KEY AUTOINCREMENT,
	pk     TEXT NOT NULL,
	sk     TEXT NOT NULL,
	status TEXT NOT NULL,
	ts     INTEGER NOT NULL, -- event time, unix ms
	rec    BLOB NOT NULL     -- the event, binary (codec.go)
);
`

// migrateV2 rewrites the journal into journalV2: rec replaces ev, which held only what
// the key columns did not, and item, the JSON that rec makes redundant. A scan then
// reads one column per row instead of three, from a journal 40% smaller. The rows keep
// their positions, and the sequence its value. The rows are copied in position order
// and the key index built once at the end, which is far quicker than rewriting the
// table in place once per dropped column.
func migrateV2(ctx context.Context, tx *sql.Tx) error {
	if err := execScript(ctx, tx, journalV2); err != nil {
		return err
	}
	var sequence sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = 'journal'`).Scan(&sequence); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("read the journal's sequence: %w", err)
	}
	ins := newMultiInsert(tx, `INSERT INTO journal_v2 (seq, pk, sk, status, ts, rec) VALUES `, 6, ``)
	var last int64
	for {
		n := 0
		rows, err := tx.QueryContext(ctx, `SELECT seq, pk, sk, status, ts, ev FROM journal WHERE seq > ? ORDER BY seq LIMIT 10000`, last)
		if err != nil {
			return fmt.Errorf("read journal after %d: %w", last, err)
		}
		type row struct {
			seq, ts        int64
			pk, sk, status string
			rec            []byte
		}
		var batch []row
		for rows.Next() {
			var r row
			var extra []byte
			if err := rows.Scan(&r.seq, &r.pk, &r.sk, &r.status, &r.ts, &extra); err != nil {
				rows.Close()
				return fmt.Errorf("read journal after %d: %w", last, err)
			}
			ev := domain.Event{SessionID: strings.TrimPrefix(r.pk, domain.SessionKeyPrefix), SK: r.sk, Status: domain.Status(r.status),
				Timestamp: time.UnixMilli(r.ts).UTC()}
			if len(extra) > 0 {
				if err := decodeEventExtra(extra, &ev); err != nil {
					rows.Close()
					return fmt.Errorf("journal item %s/%s (position %d): %w", r.pk, r.sk, r.seq, err)
				}
			}
			r.rec = encodeEventRecord(nil, &ev)
			batch = append(batch, r)
			n++
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("read journal after %d: %w", last, err)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read journal after %d: %w", last, err)
		}
		if n == 0 {
			break
		}
		for _, r := range batch {
			if err := ins.add(ctx, r.seq, r.pk, r.sk, r.status, r.ts, r.rec); err != nil {
				return fmt.Errorf("copy journal row %d: %w", r.seq, err)
			}
		}
		last = batch[len(batch)-1].seq
	}
	if err := ins.flush(ctx); err != nil {
		return fmt.Errorf("copy journal rows: %w", err)
	}
	for _, stmt := range []string{
		`DROP TABLE journal`,
		`ALTER TABLE journal_v2 RENAME TO journal`,
		`CREATE UNIQUE INDEX journal_key ON journal (pk, sk)`,
	} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	if sequence.Valid {
		// AUTOINCREMENT never hands out a position twice, even one whose row is gone.
		if _, err := tx.ExecContext(ctx, `UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'journal'`, sequence.Int64); err != nil {
			return fmt.Errorf("carry the journal's sequence over: %w", err)
		}
	}
	return nil
}

// migrateV3 records when each journal row was appended (appended_ms, unix ms), which the
// projection watermark reads: every row appended before the first unprojected row's
// append time has been projected. Rows of older files have none; their event time
// stands in. Adding a column with no default rewrites nothing.
func migrateV3(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `ALTER TABLE journal ADD COLUMN appended_ms INTEGER`); err != nil {
		return fmt.Errorf("add journal.appended_ms: %w", err)
	}
	return nil
}

// migrateV4 moves the read models to tables of the registered read models' own
// declaration (tables.go): every read-model generation of the older layout is dropped,
// and generations record the signature of the read models they hold. The read models
// are derived data: the worker rebuilds them from the journal when it first opens the
// file (app.EnsureReadModels).
func migrateV4(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT gen FROM generations`)
	if err != nil {
		return fmt.Errorf("list generations: %w", err)
	}
	var gens []int
	for rows.Next() {
		var g int
		if err := rows.Scan(&g); err != nil {
			rows.Close()
			return err
		}
		gens = append(gens, g)
	}
	rows.Close()
	for _, g := range gens {
		names, err := generationTables(ctx, tx, g)
		if err != nil {
			return err
		}
		for _, t := range names {
			if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+t); err != nil {
				return fmt.Errorf("drop %s: %w", t, err)
			}
		}
	}
	for _, stmt := range []string{
		`DELETE FROM generations`,
		`ALTER TABLE generations ADD COLUMN signature TEXT NOT NULL DEFAULT ''`,
	} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	return nil
}

// migrate applies the migrations the file lacks, in one write transaction, so that two
// processes opening a new file at once do not both migrate it.
func (db *DB) migrate(ctx context.Context) error {
	return db.writeTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
			return fmt.Errorf("create schema_version: %w", err)
		}
		var v int
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&v); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if v > len(migrations) {
			return fmt.Errorf("schema version %d is newer than this binary's %d: upgrade agentwatch", v, len(migrations))
		}
		for i := v; i < len(migrations); i++ {
			if i > 0 {
				db.logger.Info("migrating sqlite schema: large files take a while", "from", i, "to", i+1)
			}
			if err := migrations[i](ctx, tx); err != nil {
				return fmt.Errorf("migrate schema to version %d: %w", i+1, err)
			}
			db.logger.Info("sqlite schema migrated", "version", i+1)
		}
		if v == len(migrations) {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM schema_version`); err != nil {
			return fmt.Errorf("record schema version: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (?)`, len(migrations)); err != nil {
			return fmt.Errorf("record schema version: %w", err)
		}
		return nil
	})
}

// SchemaVersion reads the schema version of the file.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := db.read.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// execScript runs the statements of script, which must not hold ";" but between them.
func execScript(ctx context.Context, tx *sql.Tx, script string) error {
	for _, stmt := range strings.Split(script, ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("exec %q: %w", firstLine(stmt), err)
		}
	}
	return nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
