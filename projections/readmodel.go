package projections

import (
	"github.com/agentwatch/agentwatch/domain"
)

// ReadModel is one read model: a pure derivation from session aggregates to the rows of
// its tables. Every read model derives from the same sessions (domain.Session), which
// depend only on the set of journal events applied, so that duplication and
// interleaving of the feeds never show in a read model.
//
// The projector asks each registered read model what changes when a session moves
// from before to after, and commits the sessions' new versions with every model's
// changes at once; stores persist those changes knowing nothing of how they were
// derived. A rebuild derives every row from the empty session (or through BulkDeriver).
//
// Implementations must be safe for concurrent use (they hold configuration only).
type ReadModel interface {
	// Name identifies the read model for good: in listings, in `rebuild --projection`,
	// in the generation record. Letters, digits and '_'.
	Name() string
	// Version is the version of the derivation. A stored generation built by another
	// version of a read model is rebuilt.
	Version() int
	// Tables declares the tables the read model writes, which stores create in every
	// generation. Names are unique across read models.
	Tables() []Table
	// Changes appends to out the writes that turn the read model's rows for session
	// before into those for after. before is the zero Session when the session is new.
	// It is a pure function of its arguments.
	Changes(before, after *domain.Session, env Env, out *Changes)
}

// BulkDeriver is a ReadModel that derives the rows of many sessions at once faster than
// session by session (a rebuild uses it when present). The result must equal applying
// Changes(empty, s) for every session in turn.
type BulkDeriver interface {
	DeriveAll(sessions []*domain.Session, env Env) Changes
}

// Env is what a derivation may know besides the session.
type Env struct {
	// NowMs is the time of the commit (unix ms).
	NowMs int64
	// Replay is set when a rebuild replays history: nothing is due at once for being
	// overdue (a replay raises no alert).
	Replay bool
}

// Never is the schedule of a document that nothing will make due but a new change.
const Never = int64(1<<63 - 1)

// Changes are the writes of one session's derivation, or of many.
type Changes struct {
	Puts    []Put
	Deletes []Delete
	Adds    []Add
}

// Put writes a document.
type Put struct {
	// Table is the table's name.
	Table string
	// Key identifies the document in its table.
	Key string
	// Doc is the document: a pointer to the table's document type (Table.New).
	Doc any
	// Guard, in a table with a guard, makes the write conditional: it replaces a stored
	// document only if the stored guard is at most this one (a late RUNNING never
	// overwrites a terminal status; a redrive, with a higher guard, does).
	Guard int64
	// Schedule, in a table with a schedule, is when the document's owner must look at
	// it next (unix ms; Never: not until it changes).
	Schedule int64
}

// Delete removes a document.
type Delete struct {
	Table string
	Key   string
}

// Add adds deltas to counters of one row of a counters table. Increments are applied
// atomically and commute, so stores apply them in any order.
type Add struct {
	Table     string
	Partition string
	Sort      string
	Counters  map[string]int64
}

// Append adds o's writes to c.
func (c *Changes) Append(o Changes) {
	c.Puts = append(c.Puts, o.Puts...)
	c.Deletes = append(c.Deletes, o.Deletes...)
	c.Adds = append(c.Adds, o.Adds...)
}

// Empty reports whether c writes nothing.
func (c *Changes) Empty() bool { return len(c.Puts)+len(c.Deletes)+len(c.Adds) == 0 }

// Reset empties c, keeping its capacity.
func (c *Changes) Reset() {
	c.Puts, c.Deletes, c.Adds = c.Puts[:0], c.Deletes[:0], c.Adds[:0]
}

// CounterPresenter is a read model whose counters tables, partitioned by agentName and
// sorted by the stats buckets, sum to something people read (the per-agent statistics
// show it beside their own).
type CounterPresenter interface {
	// Present renders the summed counters of table.
	Present(table string, counters map[string]int64) any
}

// Transient is a ReadModel some of whose documents stand only until their owner handles
// them (a closed stuck entry waits for the detector's last look, then goes): whether one
// exists depends on how events were batched into commits, not only on the events, so
// comparisons of read models leave them out.
type Transient interface {
	Transient(table string, doc any) bool
}

// Settled reports whether a document belongs to its read model's settled state (see
// Transient).
func (r *Registry) Settled(table string, doc any) bool {
	m, ok := r.Model(r.Owner(table))
	if !ok {
		return true
	}
	tr, ok := m.(Transient)
	return !ok || !tr.Transient(table, doc)
}
