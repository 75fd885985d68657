package projections

import (
	"slices"
	"strings"

	"github.com/agentwatch/agentwatch/domain"
)

// Model folds journal events into session aggregates in memory. A rebuild folds the
// whole journal into one and derives the read models from its sessions (Derive); tests
// use it as the reference the stores must match. It is not safe for concurrent use,
// except that once the fold is done (no more Apply) its read methods may run
// concurrently.
type Model struct {
	sessions map[string]*domain.Session
	slab     []domain.Session
	// Events counts Apply calls; Changed those that changed a session.
	Events, Changed int64
}

// NewModel returns an empty model.
func NewModel() *Model {
	return &Model{sessions: map[string]*domain.Session{}}
}

// Apply folds one event. It reports whether the event changed anything.
func (m *Model) Apply(ev *domain.Event) bool {
	m.Events++
	s := m.sessions[ev.SessionID]
	if s == nil {
		s = m.newSession()
		m.sessions[ev.SessionID] = s
	}
	if !s.Apply(ev) {
		return false
	}
	m.Changed++
	return true
}

// newSession allocates sessions in slabs: one allocation per 256 sessions, not per
// session.
func (m *Model) newSession() *domain.Session {
	if len(m.slab) == 0 {
		m.slab = make([]domain.Session, 256)
	}
	s := &m.slab[0]
	m.slab = m.slab[1:]
	return s
}

// Len is the number of sessions.
func (m *Model) Len() int { return len(m.sessions) }

// Session returns the session with the given id, or nil.
func (m *Model) Session(id string) *domain.Session { return m.sessions[id] }

// Sessions returns every session, sorted by id.
func (m *Model) Sessions() []*domain.Session {
	out := make([]*domain.Session, 0, len(m.sessions))
	for _, s := range m.sessions {
		out = append(out, s)
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

// Derive derives every registered read model from the model's sessions.
func (m *Model) Derive(reg *Registry, env Env) *State { return Derive(reg, m.Sessions(), env) }
