// Package stuck is the read model behind the stuck-session detector: per open session,
// what the detector needs to decide whether the session stopped progressing, missed its
// completion event, never started, or disagrees with Step Functions — and, once an alert
// went out, whether a late event resolved it.
//
// Entries are derived from sessions (EntryOf); Evaluate decides what is due at a given
// instant. Nothing here sends anything.
package stuck

import (
	"time"

	"github.com/agentwatch/agentwatch/domain"
)

// Kind is an alert kind.
type Kind string

// Alert kinds.
const (
	KindStuck             Kind = "stuck"
	KindMissingCompletion Kind = "missing_completion"
	KindNeverStarted      Kind = "never_started"
	KindJournalMismatch   Kind = "journal_mismatch"
	KindRecovered         Kind = "recovered"
)

// Kinds lists every alert kind.
var Kinds = [...]Kind{KindStuck, KindMissingCompletion, KindNeverStarted, KindJournalMismatch, KindRecovered}

// Bit is k's bit in a KindSet.
func (k Kind) Bit() KindSet {
	for i, x := range Kinds {
		if x == k {
			return 1 << i
		}
	}
	return 0
}

// KindSet is a set of kinds.
type KindSet uint8

// Has reports whether k is in the set.
func (s KindSet) Has(k Kind) bool { return s&k.Bit() != 0 }

// problems are the kinds a late event can resolve.
const problems = KindSet(1<<0 | 1<<1 | 1<<2) // stuck, missing_completion, never_started

// Config sets the deadlines.
type Config struct {
	// Timeouts is how long each stage may last before the session counts as stuck.
	Timeouts map[domain.Stage]time.Duration
	// AgentTimeouts overrides Timeouts per agent and stage.
	AgentTimeouts map[string]map[domain.Stage]time.Duration
	// CompletionGrace is how long after Step Functions ended an execution the agent's
	// terminal event may still arrive before the session misses its completion.
	CompletionGrace time.Duration
	// Adaptive derives deadlines from each agent's own stage durations.
	Adaptive Adaptive
	// Adapted holds the deadlines Adaptive derived, per agent and stage (see
	// AdaptedTimeouts). Explicit AgentTimeouts win over them; they win over Timeouts.
	Adapted map[string]map[domain.Stage]time.Duration
}

// Adaptive configures deadlines derived from an agent's own p99 duration of a stage:
// p99 times Factor, clamped to [Floor, Ceiling], once the agent has MinSamples
// finished stages of that kind.
type Adaptive struct {
	Enabled    bool
	Factor     float64
	Floor      time.Duration
	Ceiling    time.Duration
	MinSamples int64
}

// SetDefaults fills zero fields.
func (a *Adaptive) SetDefaults() {
	if a.Factor == 0 {
		a.Factor = 3
	}
	if a.Floor == 0 {
		a.Floor = 30 * time.Second
	}
	if a.Ceiling == 0 {
		a.Ceiling = 2 * time.Hour
	}
	if a.MinSamples == 0 {
		a.MinSamples = 20
	}
}

// StageP99 is what AdaptedTimeouts needs of one agent's stage: how many samples, and
// their p99.
type StageP99 struct {
	Count int64
	P99   time.Duration
}

// AdaptedTimeouts derives per-agent stage deadlines from observed p99s.
func (a *Adaptive) AdaptedTimeouts(observed map[string]map[domain.Stage]StageP99) map[string]map[domain.Stage]time.Duration {
	out := map[string]map[domain.Stage]time.Duration{}
	for agent, stages := range observed {
		for st, q := range stages {
			if q.Count < a.MinSamples || q.P99 <= 0 {
				continue
			}
			d := time.Duration(float64(q.P99) * a.Factor)
			d = min(max(d, a.Floor), a.Ceiling)
			if out[agent] == nil {
				out[agent] = map[domain.Stage]time.Duration{}
			}
			out[agent][st] = d
		}
	}
	return out
}

// DefaultConfig is a starting point for agents whose background tasks take minutes.
func DefaultConfig() Config {
	return Config{
		Timeouts: map[domain.Stage]time.Duration{
			domain.StageInitiated:      2 * time.Minute,
			domain.StageInvocation:     2 * time.Minute,
			domain.StageEntrypoint:     5 * time.Minute,
			domain.StageBackgroundTask: 30 * time.Minute,
		},
		CompletionGrace: 2 * time.Minute,
	}
}

// Timeout is the deadline of stage for agent.
func (c *Config) Timeout(agent string, stage domain.Stage) time.Duration {
	if m, ok := c.AgentTimeouts[agent]; ok {
		if d, ok := m[stage]; ok {
			return d
		}
	}
	if m, ok := c.Adapted[agent]; ok {
		if d, ok := m[stage]; ok {
			return d
		}
	}
	if d, ok := c.Timeouts[stage]; ok {
		return d
	}
	return DefaultConfig().Timeouts[stage]
}

// Entry is the detector's view of one open session (or one with something left to
// say). It is derived from the session alone.
type Entry struct {
	SessionID    string            `json:"sessionId"`
	Agent        string            `json:"agentName"`
	ExecutionArn string            `json:"executionArn,omitempty"`
	LastStatus   domain.Status     `json:"lastStatus"`
	LastEventMs  int64             `json:"lastEventMs"`
	Stage        domain.Stage      `json:"stage"`
	StageStartMs int64             `json:"stageStartMs"`
	ExecStatus   domain.ExecStatus `json:"executionStatus,omitempty"`
	ExecEndMs    int64             `json:"executionEndMs,omitempty"`
	Outcome      domain.Outcome    `json:"outcome"`
	Mismatch     bool              `json:"journalMismatch,omitempty"`
	// Closed is set when the detector has nothing left to watch: it looks once more
	// (a late event may resolve an open alert), then drops the entry.
	Closed bool `json:"closed,omitempty"`
}

// EntryOf derives the detector entry of s. ok is false (and e.Closed true) when the
// detector has nothing to watch: the agent is done and the execution, if any, is over
// without mismatch. A closed entry still matters once, if an alert is open for the
// session: Evaluate then reports the recovery.
func EntryOf(s *domain.Session) (e Entry, ok bool) {
	e, ok = entryOf(s)
	e.Closed = !ok
	return e, ok
}

func entryOf(s *domain.Session) (e Entry, ok bool) {
	d := s.Classify()
	e = Entry{
		SessionID:   s.ID,
		Agent:       s.AgentName(),
		LastStatus:  s.LastAgentStatus(),
		LastEventMs: s.LastAt,
		Outcome:     d.Outcome,
		Mismatch:    d.Mismatch,
		ExecStatus:  d.ExecStatus,
	}
	if e.Agent == "" {
		e.Agent = "unknown"
	}
	if e.LastStatus == "" {
		e.LastStatus = s.LastStatus
	}
	stage, at := s.CurrentStage()
	e.Stage, e.StageStartMs = stage, at.UnixMilli()
	if d.Stage == domain.StageDone || d.Outcome.Failed() && d.Outcome != domain.OutcomeMissingCompletion {
		e.Stage = domain.StageDone
	}
	if x := s.Exec(); x != nil {
		e.ExecutionArn = x.Arn
		if x.Status.Terminal() {
			e.ExecEndMs = x.StopMs
			if e.ExecEndMs == 0 {
				e.ExecEndMs = x.LastMs
			}
		}
	}
	switch d.Outcome {
	case domain.OutcomeInProgress, domain.OutcomeMissingCompletion, domain.OutcomeNeverStarted:
		return e, true
	case domain.OutcomeEmpty, domain.OutcomeExecutionOnly, domain.OutcomeAborted:
		return e, false
	}
	// Completed or failed: only a mismatch is left to report.
	return e, d.Mismatch
}

// Finding is something the detector must tell: an alert to raise or a recovery.
type Finding struct {
	Kind         Kind          `json:"kind"`
	SessionID    string        `json:"sessionId"`
	Agent        string        `json:"agentName"`
	ExecutionArn string        `json:"executionArn,omitempty"`
	Stage        domain.Stage  `json:"stage,omitempty"`
	LastStatus   domain.Status `json:"lastStatus"`
	LastEventAt  time.Time     `json:"lastEventAt"`
	// Deadline is when the condition became due; OverdueBy is now - Deadline.
	Deadline  time.Time      `json:"deadline"`
	OverdueBy time.Duration  `json:"overdueBy"`
	Outcome   domain.Outcome `json:"outcome"`
	// Resolves lists the kinds a recovery resolves.
	Resolves []Kind `json:"resolves,omitempty"`
}

// Never is the next-check time of an entry with nothing left to wait for.
const Never = int64(1<<63 - 1)

// Evaluate decides what is due for e at now, given the kinds already raised for the
// session (raised; a kind is raised at most once, ever) and the problem kinds still
// open (unresolved). It returns the findings to act on, in a fixed order, and when the
// entry must next be looked at (Never if nothing can become due without a new event).
func Evaluate(e *Entry, raised, open KindSet, now time.Time, cfg *Config) (findings []Finding, nextMs int64) {
	nowMs := now.UnixMilli()
	nextMs = Never
	base := Finding{SessionID: e.SessionID, Agent: e.Agent, ExecutionArn: e.ExecutionArn, Stage: e.Stage,
		LastStatus: e.LastStatus, LastEventAt: time.UnixMilli(e.LastEventMs).UTC(), Outcome: e.Outcome}
	emit := func(k Kind, dueMs int64) {
		f := base
		f.Kind = k
		f.Deadline = time.UnixMilli(dueMs).UTC()
		f.OverdueBy = time.Duration(nowMs-dueMs) * time.Millisecond
		findings = append(findings, f)
	}
	consider := func(k Kind, dueMs int64) (active bool) {
		if dueMs > nowMs {
			if !raised.Has(k) && dueMs < nextMs {
				nextMs = dueMs
			}
			return false
		}
		if !raised.Has(k) {
			emit(k, dueMs)
		}
		return true
	}

	var active KindSet
	execEnded := e.ExecEndMs != 0 && e.ExecStatus.Terminal()
	aborted := e.ExecStatus == domain.ExecAborted
	if !aborted && e.Stage != domain.StageDone && e.Stage != "" {
		switch {
		case execEnded && e.Stage == domain.StageInitiated:
			if consider(KindNeverStarted, e.ExecEndMs+cfg.CompletionGrace.Milliseconds()) {
				active |= KindNeverStarted.Bit()
			}
		case execEnded:
			if consider(KindMissingCompletion, e.ExecEndMs+cfg.CompletionGrace.Milliseconds()) {
				active |= KindMissingCompletion.Bit()
			}
		case e.Stage == domain.StageInitiated:
			if consider(KindNeverStarted, e.StageStartMs+cfg.Timeout(e.Agent, e.Stage).Milliseconds()) {
				active |= KindNeverStarted.Bit()
			}
		default:
			if consider(KindStuck, e.StageStartMs+cfg.Timeout(e.Agent, e.Stage).Milliseconds()) {
				active |= KindStuck.Bit()
			}
		}
	}
	if e.Mismatch {
		due := max(e.ExecEndMs, e.LastEventMs)
		if consider(KindJournalMismatch, due) {
			active |= KindJournalMismatch.Bit()
		}
	}
	// A problem that was raised and is no longer active was resolved by a later event.
	if resolved := open & problems &^ active; resolved != 0 && !raised.Has(KindRecovered) && (e.Stage == domain.StageDone || progressed(e)) {
		f := base
		f.Kind = KindRecovered
		f.Deadline = now.UTC()
		for _, k := range Kinds {
			if resolved.Has(k) {
				f.Resolves = append(f.Resolves, k)
			}
		}
		findings = append(findings, f)
	}
	return findings, nextMs
}

// progressed reports whether a session is moving again: not past its stage deadline.
// Evaluate only asks after the problem stopped being active, so this holds whenever
// the session reached a new stage.
func progressed(e *Entry) bool { return e.Outcome == domain.OutcomeInProgress }

// FirstCheckMs is when a fresh entry must first be evaluated: now, so that an entry
// whose state changed is looked at once (it may resolve an open alert), then as
// Evaluate says.
func FirstCheckMs(now time.Time) int64 { return now.UnixMilli() }
