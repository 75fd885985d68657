package projections

import (
	"slices"
	"strings"

	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/agentstats"
	"github.com/agentwatch/agentwatch/projections/executionindex"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// Model folds journal events through all three read models in memory. A rebuild folds
// the whole journal into one; tests use it as the reference the stores must match.
// It is not safe for concurrent use, except that once the fold is done (no more Apply),
// its read methods (Sessions, Index, Stats, Stuck, ...) may run concurrently.
type Model struct {
	sessions map[string]*entry
	// stats is maintained event by event only in incremental mode; otherwise Stats
	// derives it from the final sessions, once per session rather than once per event.
	stats       *agentstats.Accumulator
	incremental bool
	slab        []entry
	// Events counts Apply calls; Changed those that changed a session.
	Events, Changed int64
}

type entry struct {
	s        domain.Session
	contrib  agentstats.Contribution
	counted  bool
	classMsg string // the message contrib.ErrorClass was computed from
	class    string
}

// NewModel returns an empty model that derives its read models when asked: the fastest
// fold, as a rebuild wants.
func NewModel() *Model {
	return &Model{sessions: map[string]*entry{}}
}

// NewIncrementalModel returns an empty model that maintains its stats event by event,
// removing a session's old contribution and adding its new one, as the live projector
// does. Tests compare it with NewModel.
func NewIncrementalModel() *Model {
	return &Model{sessions: map[string]*entry{}, stats: agentstats.NewAccumulator(), incremental: true}
}

// Apply folds one event. It reports whether the event changed anything.
func (m *Model) Apply(ev *domain.Event) bool {
	m.Events++
	e := m.sessions[ev.SessionID]
	if e == nil {
		e = m.newEntry()
		m.sessions[ev.SessionID] = e
	}
	if !e.s.Apply(ev) {
		return false
	}
	m.Changed++
	if !m.incremental {
		return true
	}
	c, ok := contributionOf(e)
	if ok && e.counted && c == e.contrib {
		return true
	}
	if e.counted {
		m.stats.Add(&e.contrib, -1)
	}
	if ok {
		m.stats.Add(&c, +1)
	}
	e.contrib, e.counted = c, ok
	return true
}

// contributionOf is agentstats.ContributionOf with the error class reused while its
// source message stays the same (ErrorClass allocates).
func contributionOf(e *entry) (agentstats.Contribution, bool) {
	d := e.s.Classify()
	if msg := agentstats.ErrorSource(&e.s, &d); msg != e.classMsg || (msg != "" && e.class == "") {
		e.classMsg, e.class = msg, agentstats.ErrorClass(msg)
	}
	return agentstats.ContributionOfWithClass(&e.s, &d, e.class)
}

// newEntry allocates entries in slabs: one allocation per 256 sessions, not per
// session.
func (m *Model) newEntry() *entry {
	if len(m.slab) == 0 {
		m.slab = make([]entry, 256)
	}
	e := &m.slab[0]
	m.slab = m.slab[1:]
	return e
}

// Len is the number of sessions.
func (m *Model) Len() int { return len(m.sessions) }

// Session returns the session with the given id, or nil.
func (m *Model) Session(id string) *domain.Session {
	if e := m.sessions[id]; e != nil {
		return &e.s
	}
	return nil
}

// Sessions returns every session, sorted by id.
func (m *Model) Sessions() []*domain.Session {
	out := make([]*domain.Session, 0, len(m.sessions))
	for _, e := range m.sessions {
		out = append(out, &e.s)
	}
	slices.SortFunc(out, func(a, b *domain.Session) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// SessionValues returns copies of every session, sorted by id.
func (m *Model) SessionValues() []domain.Session {
	ss := m.Sessions()
	out := make([]domain.Session, len(ss))
	for i, s := range ss {
		out[i] = *s
	}
	return out
}

// Index returns the execution index, sorted by executionArn.
func (m *Model) Index() []executionindex.Item {
	// Sort small references, then build the (large) items once, in place.
	type ref struct {
		s *domain.Session
		x *domain.ExecState
	}
	refs := make([]ref, 0, len(m.sessions))
	for _, e := range m.sessions {
		for i := range e.s.Execs {
			refs = append(refs, ref{&e.s, &e.s.Execs[i]})
		}
	}
	slices.SortFunc(refs, func(a, b ref) int { return strings.Compare(a.x.Arn, b.x.Arn) })
	out := make([]executionindex.Item, len(refs))
	for i, r := range refs {
		out[i] = executionindex.ItemOf(r.s, r.x)
	}
	return out
}

// Stats returns every stats bucket, sorted by agent and bucket.
func (m *Model) Stats() []agentstats.Bucket {
	if m.incremental {
		return m.stats.Buckets()
	}
	acc := agentstats.NewAccumulator()
	for _, e := range m.sessions {
		if c, ok := contributionOf(e); ok {
			acc.Add(&c, 1)
		}
	}
	return acc.Buckets()
}

// Stuck returns the detector entries of every session the detector watches, sorted by
// session id.
func (m *Model) Stuck() []stuck.Entry {
	var out []stuck.Entry
	for _, e := range m.sessions {
		if en, ok := stuck.EntryOf(&e.s); ok {
			out = append(out, en)
		}
	}
	slices.SortFunc(out, func(a, b stuck.Entry) int { return strings.Compare(a.SessionID, b.SessionID) })
	return out
}
