package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
)

// BulkLoad writes a folded state into generation gen (created when missing) in one
// transaction, for a rebuild: sessions are stored (at a first version, or one above
// the stored version, so that a projector holding an older one conflicts), documents
// upserted under their guard, counters set to the state's values (a zero one deleted).
// Rows it is not given are left as they are. Sessions and documents must not repeat a
// key.
//
// Rows are appended in key order by multi-row inserts while other goroutines encode
// ahead: each table's rows are sorted and encoded as soon as the derivation has them,
// while the sessions are written. Loading a fresh (empty) generation also drops the
// secondary indexes and builds each once at the end.
func (s *ReadModelStore) BulkLoad(ctx context.Context, gen int, data app.GenerationData) error {
	if gen < 1 {
		return fmt.Errorf("bulk load: generation %d: generations start at 1", gen)
	}
	start := time.Now()
	g := s.db.sqlOf(s.reg, gen)
	tables := g.sortedTables()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	encSessions := encodeAhead(ctx, "session", func() []*domain.Session { return data.Sessions },
		func(s **domain.Session) string { return (*s).ID },
		func(b []byte, s **domain.Session) []byte { return encodeSession(b, *s) })
	encDocs := make(map[string]<-chan encChunk[projections.Row], len(tables))
	for _, ts := range tables {
		if ts.t.Kind == projections.Documents {
			encDocs[ts.t.Name] = encodeAhead(ctx, ts.t.Name, func() []projections.Row { return data.RowsOf(ts.t.Name).Documents },
				func(r *projections.Row) string { return r.Key },
				func(b []byte, r *projections.Row) []byte { out, _ := ts.t.EncodeDoc(b, r.Doc); return out })
		}
	}

	var rowsTook, indexTook time.Duration
	counts := map[string]int{}
	err := s.db.writeTx(ctx, func(tx *sql.Tx) error {
		for _, ddl := range g.ddl() {
			if _, err := tx.ExecContext(ctx, ddl); err != nil {
				return fmt.Errorf("create generation %d: %q: %w", gen, firstLine(ddl), err)
			}
		}
		if err := recordGeneration(ctx, tx, gen, ""); err != nil {
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
		fresh, err := isEmpty(ctx, tx, g)
		if err != nil {
			return err
		}
		if fresh {
			// The tables are their key indexes and rows arrive in key order: they grow by
			// appends.
			for _, ts := range tables {
				for i := range ts.t.Indexes {
					if _, err := tx.ExecContext(ctx, `DROP INDEX IF EXISTS `+ts.indexName(&ts.t.Indexes[i])); err != nil {
						return fmt.Errorf("drop index: %w", err)
					}
				}
			}
		}

		ins := newMultiInsert(tx, `INSERT INTO `+g.sessions+` (id, version, session) VALUES `, 3,
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
			counts["sessions"] += len(c.rows)
		}
		if err := ins.flush(ctx); err != nil {
			return fmt.Errorf("load sessions: %w", err)
		}
		for _, ts := range tables {
			var n int
			var err error
			if ts.t.Kind == projections.Documents {
				n, err = loadDocuments(ctx, tx, ts, encDocs[ts.t.Name])
			} else {
				n, err = loadCounters(ctx, tx, ts, data.RowsOf(ts.t.Name).Counters)
			}
			if err != nil {
				return fmt.Errorf("load %s: %w", ts.t.Name, err)
			}
			counts[ts.t.Name] = n
		}
		rowsTook = time.Since(rowsStart)
		if fresh {
			for _, ts := range tables {
				for _, ddl := range ts.indexDDL() {
					if _, err := tx.ExecContext(ctx, ddl); err != nil {
						return fmt.Errorf("create index: %q: %w", ddl, err)
					}
				}
			}
		}
		indexTook = time.Since(rowsStart) - rowsTook
		return nil
	})
	if err != nil {
		return fmt.Errorf("bulk load generation %d: %w", gen, err)
	}
	s.db.logger.Info("read-model generation loaded", "generation", gen, "rows", counts, "rowsTook", rowsTook,
		"indexes", indexTook, "took", time.Since(start))
	return nil
}

// isEmpty reports whether every table of the generation is empty.
func isEmpty(ctx context.Context, tx *sql.Tx, g *genSQL) (bool, error) {
	parts := []string{`(SELECT count(*) FROM (SELECT 1 FROM ` + g.sessions + ` LIMIT 1))`}
	for _, ts := range g.sortedTables() {
		parts = append(parts, `(SELECT count(*) FROM (SELECT 1 FROM `+ts.name+` LIMIT 1))`)
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT `+strings.Join(parts, ` + `)).Scan(&n); err != nil {
		return false, fmt.Errorf("check generation: %w", err)
	}
	return n == 0, nil
}

// loadDocuments upserts a documents table's encoded rows, in key order.
func loadDocuments(ctx context.Context, tx *sql.Tx, ts *tableSQL, enc <-chan encChunk[projections.Row]) (int, error) {
	cols := ts.docColumns()
	var sets []string
	for _, c := range cols[1:] {
		sets = append(sets, c+` = excluded.`+c)
	}
	tail := ` ON CONFLICT (k) DO UPDATE SET ` + strings.Join(sets, ", ")
	if ts.t.Guard != "" {
		tail += ` WHERE excluded.guard >= ` + ts.name + `.guard`
	}
	ins := newMultiInsert(tx, `INSERT INTO `+ts.name+` (`+strings.Join(cols, ", ")+`) VALUES `, len(cols), tail)
	n := 0
	vals := make([]any, 0, len(cols))
	for c := range enc {
		if c.err != nil {
			return n, c.err
		}
		for k, r := range c.rows {
			vals = append(vals[:0], r.Key)
			for _, a := range ts.t.Attrs {
				vals = append(vals, a.Of(r.Doc))
			}
			if ts.t.Guard != "" {
				vals = append(vals, r.Guard)
			}
			if ts.t.Schedule != "" {
				vals = append(vals, r.Schedule)
			}
			vals = append(vals, c.data[k])
			if err := ins.add(ctx, vals...); err != nil {
				return n, err
			}
		}
		n += len(c.rows)
	}
	return n, ins.flush(ctx)
}

// loadCounters sets a counters table's rows to their values.
func loadCounters(ctx context.Context, tx *sql.Tx, ts *tableSQL, rows []projections.CounterRow) (int, error) {
	var all []counterDelta
	for _, r := range rows {
		for c, v := range r.Counters {
			all = append(all, counterDelta{counterKey{ts.t.Name, r.Partition, r.Sort, c}, v})
		}
	}
	slices.SortFunc(all, func(a, b counterDelta) int {
		if c := strings.Compare(a.p, b.p); c != 0 {
			return c
		}
		if c := strings.Compare(a.s, b.s); c != 0 {
			return c
		}
		return strings.Compare(a.c, b.c)
	})
	ins := newMultiInsert(tx, `INSERT INTO `+ts.name+` (p, s, c, v) VALUES `, 4, ` ON CONFLICT (p, s, c) DO UPDATE SET v = excluded.v`)
	for _, d := range all {
		if d.delta == 0 {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+ts.name+` WHERE p = ? AND s = ? AND c = ?`, d.p, d.s, d.c); err != nil {
				return 0, err
			}
			continue
		}
		if err := ins.add(ctx, d.p, d.s, d.c, d.delta); err != nil {
			return 0, err
		}
	}
	return len(rows), ins.flush(ctx)
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
