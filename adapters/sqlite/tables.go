package sqlite

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/agentwatch/agentwatch/projections"
)

// The read models of a generation N live in tables of their own: sessions_gN (the
// session aggregates and their versions) and, for every registered table T of every read
// model, T_gN. A documents table has the key (k), one column per declared attribute
// (a_<name>), the guard and the schedule when the table has them, and the document in
// the table's codec (doc); each index is an index on its partition and sort columns and
// the key. A counters table has one row per counter: (p, s, c) -> v. Tables are WITHOUT
// ROWID: one b-tree per table instead of a table and a key index.

// tableSQL is a registered table's SQL in one generation.
type tableSQL struct {
	t    *projections.Table
	name string // T_gN
	// cols are the attribute columns, in the order of t.Attrs.
	cols []string
	// Statements of documents tables.
	get, upsert, del, list string
	// Statements of counters tables.
	add, delZero string
	// addN caches the statement that adds n counters at once.
	addN sync.Map // int -> string
}

// col is the column of attribute a.
func col(a string) string { return `"a_` + a + `"` }

// columnOf names the column of attribute attr of t: an attribute's column, the guard or
// the schedule.
func (ts *tableSQL) columnOf(attr string) (string, bool) {
	switch attr {
	case ts.t.Guard:
		return "guard", attr != ""
	case ts.t.Schedule:
		return "sched", attr != ""
	case ts.t.Key:
		return "k", true
	}
	if _, ok := ts.t.Attr(attr); ok {
		return col(attr), true
	}
	return "", false
}

// docColumns lists the columns of a documents row in insert order.
func (ts *tableSQL) docColumns() []string {
	cs := append([]string{"k"}, ts.cols...)
	if ts.t.Guard != "" {
		cs = append(cs, "guard")
	}
	if ts.t.Schedule != "" {
		cs = append(cs, "sched")
	}
	return append(cs, "doc")
}

func newTableSQL(t *projections.Table, gen int) *tableSQL {
	ts := &tableSQL{t: t, name: fmt.Sprintf("%s_g%d", t.Name, gen)}
	for _, a := range t.Attrs {
		ts.cols = append(ts.cols, col(a.Name))
	}
	if t.Kind == projections.Counters {
		ts.add = `INSERT INTO ` + ts.name + ` (p, s, c, v) VALUES (?, ?, ?, ?)`
		ts.delZero = `DELETE FROM ` + ts.name + ` WHERE p = ? AND s = ? AND v = 0`
		return ts
	}
	cols := ts.docColumns()
	var sets []string
	for _, c := range cols[1:] {
		sets = append(sets, c+` = excluded.`+c)
	}
	ts.upsert = `INSERT INTO ` + ts.name + ` (` + strings.Join(cols, ", ") + `) VALUES (?` + strings.Repeat(", ?", len(cols)-1) +
		`) ON CONFLICT (k) DO UPDATE SET ` + strings.Join(sets, ", ")
	if t.Guard != "" {
		// The guard: a document is replaced only by one of equal or higher guard.
		ts.upsert += ` WHERE excluded.guard >= ` + ts.name + `.guard`
	}
	ts.get = `SELECT ` + strings.Join(ts.readColumns(), ", ") + ` FROM ` + ts.name + ` WHERE k = ?`
	ts.del = `DELETE FROM ` + ts.name + ` WHERE k = ?`
	ts.list = `SELECT ` + strings.Join(ts.readColumns(), ", ") + ` FROM ` + ts.name + ` WHERE k > ? ORDER BY k LIMIT ?`
	return ts
}

// readColumns are what a read scans into a row: key, guard, schedule, document.
func (ts *tableSQL) readColumns() []string {
	cs := []string{"k"}
	if ts.t.Guard != "" {
		cs = append(cs, "guard")
	} else {
		cs = append(cs, "0")
	}
	if ts.t.Schedule != "" {
		cs = append(cs, "sched")
	} else {
		cs = append(cs, "0")
	}
	return append(cs, "doc")
}

// addSQL adds n counters at once, merging into what is there.
func (ts *tableSQL) addSQL(n int) string {
	if v, ok := ts.addN.Load(n); ok {
		return v.(string)
	}
	q := `INSERT INTO ` + ts.name + ` (p, s, c, v) VALUES (?, ?, ?, ?)` + strings.Repeat(`, (?, ?, ?, ?)`, n-1) +
		` ON CONFLICT (p, s, c) DO UPDATE SET v = v + excluded.v`
	ts.addN.Store(n, q)
	return q
}

// tableDDL creates the table.
func (ts *tableSQL) tableDDL() string {
	if ts.t.Kind == projections.Counters {
		return `CREATE TABLE IF NOT EXISTS ` + ts.name + ` (
			p TEXT NOT NULL, s TEXT NOT NULL, c TEXT NOT NULL, v INTEGER NOT NULL,
			PRIMARY KEY (p, s, c)) WITHOUT ROWID`
	}
	var b strings.Builder
	b.WriteString(`CREATE TABLE IF NOT EXISTS ` + ts.name + ` (k TEXT PRIMARY KEY`)
	for i, a := range ts.t.Attrs {
		typ := "TEXT NOT NULL DEFAULT ''"
		if a.Type == projections.Number {
			typ = "INTEGER"
		}
		b.WriteString(", " + ts.cols[i] + " " + typ)
	}
	if ts.t.Guard != "" {
		b.WriteString(", guard INTEGER NOT NULL")
	}
	if ts.t.Schedule != "" {
		b.WriteString(", sched INTEGER NOT NULL")
	}
	b.WriteString(", doc BLOB NOT NULL) WITHOUT ROWID")
	return b.String()
}

// indexName names index ix of the table.
func (ts *tableSQL) indexName(ix *projections.Index) string {
	return ts.name + "_" + strings.ToLower(ix.Name)
}

// indexDDL creates the table's secondary indexes, in (partition, sort, key) order: the
// key makes the order total, which the keyset cursors rely on.
func (ts *tableSQL) indexDDL() []string {
	var out []string
	for i := range ts.t.Indexes {
		ix := &ts.t.Indexes[i]
		sortCol, _ := ts.columnOf(ix.Sort)
		cols := sortCol + ", k"
		if ix.Partition != "" {
			p, _ := ts.columnOf(ix.Partition)
			cols = p + ", " + cols
		}
		out = append(out, `CREATE INDEX IF NOT EXISTS `+ts.indexName(ix)+` ON `+ts.name+` (`+cols+`)`)
	}
	return out
}

// genSQL is the SQL of one generation: its sessions table and every registered table.
type genSQL struct {
	gen           int
	sessions      string
	loadSessions  string
	insertSession string
	updateSession string
	tables        map[string]*tableSQL
}

// sqlOf returns the SQL of generation gen for the tables of reg, cached.
func (db *DB) sqlOf(reg *projections.Registry, gen int) *genSQL {
	key := genKey{reg: reg, gen: gen}
	if v, ok := db.genSQL.Load(key); ok {
		return v.(*genSQL)
	}
	g := &genSQL{gen: gen, sessions: sessionsTable(gen), tables: map[string]*tableSQL{}}
	g.loadSessions = `SELECT id, version, session FROM ` + g.sessions + ` WHERE id IN (SELECT value FROM json_each(?))`
	g.insertSession = `INSERT INTO ` + g.sessions + ` (id, version, session) VALUES (?, 1, ?) ON CONFLICT (id) DO NOTHING`
	g.updateSession = `UPDATE ` + g.sessions + ` SET version = version + 1, session = ? WHERE id = ? AND version = ?`
	for _, t := range reg.Tables() {
		g.tables[t.Name] = newTableSQL(&t, gen)
	}
	v, _ := db.genSQL.LoadOrStore(key, g)
	return v.(*genSQL)
}

type genKey struct {
	reg *projections.Registry
	gen int
}

func sessionsTable(gen int) string { return fmt.Sprintf("sessions_g%d", gen) }

// table returns the SQL of a registered table, or an error naming it.
func (g *genSQL) table(name string) (*tableSQL, error) {
	ts, ok := g.tables[name]
	if !ok {
		return nil, fmt.Errorf("table %s is not a registered read model's", name)
	}
	return ts, nil
}

// ddl creates every table and index of the generation.
func (g *genSQL) ddl() []string {
	out := []string{`CREATE TABLE IF NOT EXISTS ` + g.sessions + ` (
		id      TEXT PRIMARY KEY,
		version INTEGER NOT NULL,
		session BLOB NOT NULL -- domain.Session, binary (codec.go)
	) WITHOUT ROWID`}
	for _, ts := range g.sortedTables() {
		out = append(out, ts.tableDDL())
		out = append(out, ts.indexDDL()...)
	}
	return out
}

// sortedTables lists the tables by name.
func (g *genSQL) sortedTables() []*tableSQL {
	out := slices.Collect(maps.Values(g.tables))
	slices.SortFunc(out, func(a, b *tableSQL) int { return strings.Compare(a.name, b.name) })
	return out
}
