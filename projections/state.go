package projections

import (
	"cmp"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/agentwatch/agentwatch/domain"
)

// Row is a stored document.
type Row struct {
	Key string
	// Doc is the document (a pointer to its table's document type).
	Doc any
	// Guard and Schedule are the document's guard and schedule, in tables that have
	// them.
	Guard, Schedule int64
}

// CounterRow is one row of a counters table.
type CounterRow struct {
	Partition, Sort string
	Counters        map[string]int64
}

// State holds read-model tables in memory: what applying changes to empty stores leaves.
// A rebuild derives a whole generation into one; tests use it as the reference stores
// must equal. It is not safe for concurrent writes.
type State struct {
	reg      *Registry
	docs     map[string]map[string]Row
	counters map[string]map[[2]string]map[string]int64
}

// NewState returns empty tables of the registry's read models.
func NewState(reg *Registry) *State {
	s := &State{reg: reg, docs: map[string]map[string]Row{}, counters: map[string]map[[2]string]map[string]int64{}}
	for _, t := range reg.Tables() {
		if t.Kind == Documents {
			s.docs[t.Name] = map[string]Row{}
		} else {
			s.counters[t.Name] = map[[2]string]map[string]int64{}
		}
	}
	return s
}

// Apply applies changes as a store does: a guarded Put replaces a stored document only
// when the stored guard is at most its own, deletes remove, counters add up and a
// counter back at zero is gone.
func (s *State) Apply(c *Changes) {
	for _, p := range c.Puts {
		docs := s.docs[p.Table]
		if docs == nil {
			continue
		}
		if t, _ := s.reg.Table(p.Table); t.Guard != "" {
			if old, ok := docs[p.Key]; ok && old.Guard > p.Guard {
				continue
			}
		}
		docs[p.Key] = Row{Key: p.Key, Doc: p.Doc, Guard: p.Guard, Schedule: p.Schedule}
	}
	for _, d := range c.Deletes {
		delete(s.docs[d.Table], d.Key)
	}
	for _, a := range c.Adds {
		rows := s.counters[a.Table]
		if rows == nil {
			continue
		}
		k := [2]string{a.Partition, a.Sort}
		cs := rows[k]
		if cs == nil {
			cs = map[string]int64{}
			rows[k] = cs
		}
		AddCounters(cs, a.Counters)
		if len(cs) == 0 {
			delete(rows, k)
		}
	}
}

// AddCounters adds src to dst; counters that reach zero are deleted, so that equal rows
// have equal maps.
func AddCounters(dst, src map[string]int64) {
	for k, v := range src {
		if n := dst[k] + v; n != 0 {
			dst[k] = n
		} else {
			delete(dst, k)
		}
	}
}

// Documents returns the documents of a table, sorted by key.
func (s *State) Documents(table string) []Row {
	rows := slices.Collect(maps.Values(s.docs[table]))
	slices.SortFunc(rows, func(a, b Row) int { return strings.Compare(a.Key, b.Key) })
	return rows
}

// Document returns one document.
func (s *State) Document(table, key string) (Row, bool) {
	r, ok := s.docs[table][key]
	return r, ok
}

// CounterRows returns the rows of a counters table, sorted by partition and sort key.
func (s *State) CounterRows(table string) []CounterRow {
	out := make([]CounterRow, 0, len(s.counters[table]))
	for k, cs := range s.counters[table] {
		out = append(out, CounterRow{Partition: k[0], Sort: k[1], Counters: cs})
	}
	SortCounterRows(out)
	return out
}

// SortCounterRows sorts rows by partition, then sort key.
func SortCounterRows(rows []CounterRow) {
	slices.SortFunc(rows, func(a, b CounterRow) int {
		return cmp.Or(strings.Compare(a.Partition, b.Partition), strings.Compare(a.Sort, b.Sort))
	})
}

// Derive derives every read model's rows for the sessions into a new State, each read
// model on a goroutine of its own (through its BulkDeriver when it has one).
func Derive(reg *Registry, sessions []*domain.Session, env Env) *State {
	st := NewState(reg)
	parts := make([]Changes, len(reg.Models()))
	var wg sync.WaitGroup
	for i, m := range reg.Models() {
		wg.Go(func() { parts[i] = DeriveModel(m, sessions, env) })
	}
	wg.Wait()
	for i := range parts {
		st.Apply(&parts[i])
	}
	return st
}

// DeriveModel derives one read model's changes for sessions, from the empty session.
// Sessions are split among the CPUs.
func DeriveModel(m ReadModel, sessions []*domain.Session, env Env) Changes {
	if b, ok := m.(BulkDeriver); ok {
		return b.DeriveAll(sessions, env)
	}
	n := min(runtime.GOMAXPROCS(0), max(1, len(sessions)/1024))
	parts := make([]Changes, n)
	var wg sync.WaitGroup
	for p := range n {
		wg.Go(func() {
			var empty domain.Session
			for _, s := range sessions[p*len(sessions)/n : (p+1)*len(sessions)/n] {
				m.Changes(&empty, s, env, &parts[p])
			}
		})
	}
	wg.Wait()
	var out Changes
	for i := range parts {
		out.Append(parts[i])
	}
	return out
}
