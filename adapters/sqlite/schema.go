package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agentwatch/agentwatch/domain"
)

// SchemaVersion is the schema version this package writes and reads.
const SchemaVersion = 3

// migration brings the schema from version i to i+1, inside the migrating transaction.
type migration func(ctx context.Context, tx *sql.Tx) error

// migrations[i] migrates version i to i+1. Append only: a released migration never
// changes.
var migrations = []migration{
	migrateV1,
	migrateV2,
	migrateV3,
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

func migrateV1(ctx context.Context, tx *sql.Tx) error {
	if err := execScript(ctx, tx, schemaV1); err != nil {
		return err
	}
	if err := createGeneration(ctx, tx, 1); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE generations SET current = 1 WHERE gen = 1`); err != nil {
		return fmt.Errorf("make generation 1 current: %w", err)
	}
	return nil
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

// genTables names the tables of one read-model generation and holds its statements.
type genTables struct {
	gen                                 int
	sessions, executions, stats, stuckT string
}

func tablesOf(gen int) genTables {
	return genTables{
		gen:        gen,
		sessions:   fmt.Sprintf("sessions_g%d", gen),
		executions: fmt.Sprintf("executions_g%d", gen),
		stats:      fmt.Sprintf("agent_stats_g%d", gen),
		stuckT:     fmt.Sprintf("stuck_g%d", gen),
	}
}

// tableDDL creates the tables of a generation. They are keyed WITHOUT ROWID: one
// b-tree per table instead of a table and a key index, which is a page less to write
// per table in every commit, and a bulk load appends to it in key order.
func (t genTables) tableDDL() []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS ` + t.sessions + ` (
			id      TEXT PRIMARY KEY,
			version INTEGER NOT NULL,
			session BLOB NOT NULL -- domain.Session, binary (codec.go)
		) WITHOUT ROWID`,
		`CREATE TABLE IF NOT EXISTS ` + t.executions + ` (
			execution_arn TEXT PRIMARY KEY,
			agent_name    TEXT NOT NULL,
			status        TEXT NOT NULL,
			start_date    TEXT NOT NULL,
			session_id    TEXT NOT NULL,
			rank          INTEGER NOT NULL,
			item          BLOB NOT NULL -- the rest of the executionindex.Item, binary (codec.go)
		) WITHOUT ROWID`,
		`CREATE TABLE IF NOT EXISTS ` + t.stats + ` (
			agent   TEXT NOT NULL,
			bucket  TEXT NOT NULL,
			counter TEXT NOT NULL,
			value   INTEGER NOT NULL,
			PRIMARY KEY (agent, bucket, counter)
		) WITHOUT ROWID`,
		`CREATE TABLE IF NOT EXISTS ` + t.stuckT + ` (
			session_id    TEXT PRIMARY KEY,
			next_check_ms INTEGER NOT NULL,
			entry         BLOB NOT NULL -- the rest of the stuck.Entry, binary (codec.go)
		) WITHOUT ROWID`,
	}
}

// indexDDL creates the secondary indexes, which a bulk load of a fresh generation
// drops and builds once at the end. Stats have none: a query over all agents scans
// a table of a few counters per agent and bucket.
func (t genTables) indexDDL() []string {
	return []string{
		// AgentDateIndex and StatusDateIndex of seed 000, plus one by date alone for
		// unfiltered listings. The ARN makes the order total (the pagination cursor).
		`CREATE INDEX IF NOT EXISTS ` + t.executions + `_agent_date ON ` + t.executions + ` (agent_name, start_date, execution_arn)`,
		`CREATE INDEX IF NOT EXISTS ` + t.executions + `_status_date ON ` + t.executions + ` (status, start_date, execution_arn)`,
		`CREATE INDEX IF NOT EXISTS ` + t.executions + `_date ON ` + t.executions + ` (start_date, execution_arn)`,
		`CREATE INDEX IF NOT EXISTS ` + t.stuckT + `_next ON ` + t.stuckT + ` (next_check_ms)`,
	}
}

// secondaryIndexNames names the indexes of indexDDL.
func (t genTables) secondaryIndexNames() []string {
	return []string{
		t.executions + "_agent_date", t.executions + "_status_date", t.executions + "_date", t.stuckT + "_next",
	}
}

func (t genTables) all() []string { return []string{t.sessions, t.executions, t.stats, t.stuckT} }

// createGeneration creates the tables of generation gen (if missing) and records it.
func createGeneration(ctx context.Context, tx *sql.Tx, gen int) error {
	if gen < 1 {
		return fmt.Errorf("generation %d: generations start at 1", gen)
	}
	t := tablesOf(gen)
	for _, ddl := range slices.Concat(t.tableDDL(), t.indexDDL()) {
		if _, err := tx.ExecContext(ctx, ddl); err != nil {
			return fmt.Errorf("create generation %d: %q: %w", gen, firstLine(ddl), err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO generations (gen, current, created_at) VALUES (?, 0, ?) ON CONFLICT (gen) DO NOTHING`,
		gen, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("record generation %d: %w", gen, err)
	}
	return nil
}
