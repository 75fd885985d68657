package domain

import (
	"slices"
	"strings"
	"time"
)

// Session is everything the journal says about one session, folded into a state that
// depends only on the SET of events applied: applying an event twice, or the events in
// any order, gives the same Session. Every read model derives from it, which is what
// makes them order-proof and idempotent.
type Session struct {
	// ID is the session id.
	ID string `json:"id"`
	// Seen has bit i set when AgentStatuses[i] was seen.
	Seen uint16 `json:"seen"`
	// At holds, per agent status, the latest time it was seen (unix ms; 0 = never).
	At [NumAgentStatuses]int64 `json:"at"`
	// Errors holds the ErrorMessage of the latest invocation, entrypoint and background
	// task failure events, each cut to MaxSessionErrorBytes (Truncate): the journal
	// keeps the whole message, while everything derived from the session is bounded.
	Errors [3]string `json:"errors,omitempty"`
	// FirstAt and LastAt bound the timestamps of every event of the session (unix ms).
	FirstAt int64 `json:"firstAt"`
	LastAt  int64 `json:"lastAt"`
	// LastStatus is the status of the event at LastAt (ties: the greatest status).
	LastStatus Status `json:"lastStatus"`
	// Execs holds the session's Step Functions executions, sorted by ARN (usually one).
	Execs []ExecState `json:"execs,omitempty"`
}

// ExecState is the merged view of one execution's status changes.
type ExecState struct {
	Arn             string     `json:"arn"`
	StateMachineArn string     `json:"stateMachineArn,omitempty"`
	Name            string     `json:"name,omitempty"`
	AgentName       string     `json:"agentName,omitempty"`
	Status          ExecStatus `json:"status"`
	RedriveCount    int        `json:"redriveCount,omitempty"`
	// Rank is Rank(Status, RedriveCount) of the status change that set Status.
	Rank       int64  `json:"rank"`
	StartMs    int64  `json:"startMs,omitempty"`
	StopMs     int64  `json:"stopMs,omitempty"`
	Error      string `json:"error,omitempty"`
	Cause      string `json:"cause,omitempty"`
	LastMs     int64  `json:"lastMs"`
	InputIncl  *bool  `json:"inputIncluded,omitempty"`
	OutputIncl *bool  `json:"outputIncluded,omitempty"`
}

// Failure indices into Session.Errors.
const (
	errInvocation = iota
	errEntrypoint
	errBackground
)

func failureSlot(s Status) int {
	switch s {
	case StatusInvocationFailed:
		return errInvocation
	case StatusEntrypointFailed:
		return errEntrypoint
	case StatusBackgroundTaskFailed:
		return errBackground
	}
	return -1
}

// Apply folds ev into the session and reports whether anything changed. It is
// idempotent and commutative: see Session.
func (s *Session) Apply(ev *Event) bool {
	if s.ID == "" {
		s.ID = ev.SessionID
	}
	ms := ev.Timestamp.UnixMilli()
	changed := false
	if s.FirstAt == 0 || ms < s.FirstAt {
		s.FirstAt, changed = ms, true
	}
	if ms > s.LastAt || (ms == s.LastAt && ev.Status > s.LastStatus) {
		s.LastAt, s.LastStatus, changed = ms, ev.Status, true
	}
	if i := ev.Status.AgentIndex(); i >= 0 {
		bit := uint16(1) << i
		if s.Seen&bit == 0 {
			s.Seen |= bit
			changed = true
		}
		prev := s.At[i]
		if ms > prev {
			s.At[i] = ms
			changed = true
		}
		if slot := failureSlot(ev.Status); slot >= 0 {
			// The message of the latest failure wins; at equal times the greatest
			// message, so that the result does not depend on arrival order. Messages
			// are compared as kept (cut), which keeps that true.
			msg, _ := Truncate(ev.ErrorMessage, MaxSessionErrorBytes)
			if ms > prev || (ms == prev && msg > s.Errors[slot]) {
				if s.Errors[slot] != msg {
					s.Errors[slot] = msg
					changed = true
				}
			}
		}
		return changed
	}
	if es := ev.Status.ExecStatus(); es != "" && ev.Exec.ExecutionArn != "" {
		if s.applyExec(es, ev, ms) {
			changed = true
		}
	}
	return changed
}

func (s *Session) applyExec(es ExecStatus, ev *Event, ms int64) bool {
	x := &ev.Exec
	i, found := slices.BinarySearchFunc(s.Execs, x.ExecutionArn, func(e ExecState, arn string) int {
		return strings.Compare(e.Arn, arn)
	})
	if !found {
		s.Execs = slices.Insert(s.Execs, i, ExecState{Arn: x.ExecutionArn})
	}
	e := &s.Execs[i]
	before := *e
	rank := Rank(es, x.RedriveCount)
	win := rank > e.Rank
	if win {
		e.Rank = rank
		e.Status = es
		e.RedriveCount = x.RedriveCount
		e.StopMs = unixMs(x.StopDate)
		e.Error, _ = Truncate(x.Error, MaxSessionErrorBytes)
		e.Cause, _ = Truncate(x.Cause, MaxSessionErrorBytes)
		e.OutputIncl = x.OutputIncluded
	}
	// Identity fields are the same on every status change of an execution; a winner
	// overrides, anyone fills a gap.
	fill := func(dst *string, v string) {
		if v != "" && (win || *dst == "") {
			*dst = v
		}
	}
	fill(&e.StateMachineArn, x.StateMachineArn)
	fill(&e.Name, x.ExecutionName)
	fill(&e.AgentName, x.AgentName)
	if st := unixMs(x.StartDate); st != 0 && (e.StartMs == 0 || st < e.StartMs) {
		e.StartMs = st
	}
	if x.InputIncluded != nil && (win || e.InputIncl == nil) {
		e.InputIncl = x.InputIncluded
	}
	if ms > e.LastMs {
		e.LastMs = ms
	}
	return !found || !before.equal(e)
}

func (a *ExecState) equal(b *ExecState) bool {
	return a.Arn == b.Arn && a.StateMachineArn == b.StateMachineArn && a.Name == b.Name &&
		a.AgentName == b.AgentName && a.Status == b.Status && a.RedriveCount == b.RedriveCount &&
		a.Rank == b.Rank && a.StartMs == b.StartMs && a.StopMs == b.StopMs && a.Error == b.Error &&
		a.Cause == b.Cause && a.LastMs == b.LastMs && boolPtrEq(a.InputIncl, b.InputIncl) &&
		boolPtrEq(a.OutputIncl, b.OutputIncl)
}

// Equal reports whether two sessions hold the same state.
func (s *Session) Equal(o *Session) bool {
	if s.ID != o.ID || s.Seen != o.Seen || s.At != o.At || s.Errors != o.Errors ||
		s.FirstAt != o.FirstAt || s.LastAt != o.LastAt || s.LastStatus != o.LastStatus ||
		len(s.Execs) != len(o.Execs) {
		return false
	}
	for i := range s.Execs {
		if !s.Execs[i].equal(&o.Execs[i]) {
			return false
		}
	}
	return true
}

// Clone returns a deep copy.
func (s *Session) Clone() Session {
	c := *s
	c.Execs = slices.Clone(s.Execs)
	return c
}

func boolPtrEq(a, b *bool) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func unixMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// Has reports whether the agent status st was seen.
func (s *Session) Has(st Status) bool {
	i := st.AgentIndex()
	return i >= 0 && s.Seen&(1<<i) != 0
}

// AtTime returns when the agent status st was (last) seen, or the zero time.
func (s *Session) AtTime(st Status) time.Time {
	i := st.AgentIndex()
	if i < 0 || s.At[i] == 0 {
		return time.Time{}
	}
	return time.UnixMilli(s.At[i]).UTC()
}

// Exec returns the session's current execution: the one that started last (ties: the
// greatest ARN), or nil when no status change has been seen.
func (s *Session) Exec() *ExecState {
	var cur *ExecState
	for i := range s.Execs {
		e := &s.Execs[i]
		if cur == nil || e.StartMs > cur.StartMs || (e.StartMs == cur.StartMs && e.Arn > cur.Arn) {
			cur = e
		}
	}
	return cur
}

// AgentName is the agent the session belongs to, from its current execution, or "".
func (s *Session) AgentName() string {
	if e := s.Exec(); e != nil {
		return e.AgentName
	}
	return ""
}

// StartTime is when the session started: its current execution's start, else its first
// event.
func (s *Session) StartTime() time.Time {
	if e := s.Exec(); e != nil && e.StartMs != 0 {
		return time.UnixMilli(e.StartMs).UTC()
	}
	if s.FirstAt == 0 {
		return time.Time{}
	}
	return time.UnixMilli(s.FirstAt).UTC()
}
