// Package agentstats is the per-agent statistics read model: per agent and per hour
// and day bucket (by session start), sessions started, final statuses, outcomes,
// failures by stage, duration quantiles from a mergeable sketch, and top error classes.
//
// Each session contributes exactly one Contribution to its agent's buckets. When a
// session changes, the projector removes its old contribution and adds the new one, so
// a bucket is always the sum over its sessions' current states — whatever the order or
// duplication of the events that built them.
package agentstats

import (
	"time"

	"github.com/agentwatch/agentwatch/domain"
)

// Failure stages counted per bucket.
const (
	FailureInvocation        = "invocation"
	FailureEntrypoint        = "entrypoint"
	FailureBackgroundTask    = "background_task"
	FailureMissingCompletion = "missing_completion"
)

// Contribution is what one session adds to its agent's buckets. It is comparable: a
// projector writes only when a session's contribution changes.
type Contribution struct {
	Agent string
	// StartMs is the session start (unix ms); it picks the hour and day buckets.
	StartMs int64
	// ExecStatus is the current execution's status, "" when none was seen.
	ExecStatus domain.ExecStatus
	Outcome    domain.Outcome
	// Failure is the failure stage, "" when the session did not fail.
	Failure string
	// ErrorClass is the leading class of the failure's error message.
	ErrorClass string
	// DurationBin is the sketch bin of the session's duration; HasDuration says
	// whether there is one (a finished execution, or a finished agent session).
	DurationBin int32
	HasDuration bool
	// StageBins are the sketch bins of how long each stage of domain.Stages took (the
	// adaptive stuck deadlines read their p99); HasStage says which stages finished.
	StageBins [len(domain.Stages)]int32
	HasStage  [len(domain.Stages)]bool
}

// ContributionOf derives the contribution of s. ok is false for a session with no
// known event (nothing to count).
func ContributionOf(s *domain.Session) (c Contribution, ok bool) {
	d := s.Classify()
	return ContributionOfWithClass(s, &d, ErrorClass(ErrorSource(s, &d)))
}

// ErrorSource is the error message whose class a session counts: its failure event's
// ErrorMessage, or its failed execution's error; "" for none. d is s.Classify().
func ErrorSource(s *domain.Session, d *domain.Diagnosis) string {
	if failureOf(d.Outcome) != "" {
		return d.ErrorMessage
	}
	if exec := s.Exec(); exec != nil && exec.Status.Terminal() && exec.Status != domain.ExecSucceeded {
		return exec.Error
	}
	return ""
}

func failureOf(o domain.Outcome) string {
	switch o {
	case domain.OutcomeInvocationFailed:
		return FailureInvocation
	case domain.OutcomeEntrypointFailed:
		return FailureEntrypoint
	case domain.OutcomeBackgroundTaskFailed:
		return FailureBackgroundTask
	case domain.OutcomeMissingCompletion:
		return FailureMissingCompletion
	}
	return ""
}

// ContributionOfWithClass is ContributionOf for a caller that already classified the
// session (d = s.Classify()) and its ErrorSource (ErrorClass allocates; the fold reuses
// the last answer).
func ContributionOfWithClass(s *domain.Session, d *domain.Diagnosis, errorClass string) (c Contribution, ok bool) {
	exec := s.Exec()
	if s.Seen == 0 && exec == nil {
		return c, false
	}
	c.Agent = Unknown
	c.StartMs = s.FirstAt
	var durMs int64 = -1
	if exec != nil {
		if exec.AgentName != "" {
			c.Agent = exec.AgentName
		}
		if exec.StartMs != 0 {
			c.StartMs = exec.StartMs
		}
		c.ExecStatus = exec.Status
		if exec.Status.Terminal() && exec.StopMs != 0 && exec.StartMs != 0 {
			durMs = exec.StopMs - exec.StartMs
		}
	}
	c.Outcome = d.Outcome
	c.Failure = failureOf(d.Outcome)
	c.ErrorClass = errorClass
	if durMs < 0 && s.HasAgentEvents() && (d.Stage == domain.StageDone || c.Failure != "" && c.Failure != FailureMissingCompletion) {
		durMs = s.LastAt - s.FirstAt
	}
	if durMs >= 0 {
		c.DurationBin, c.HasDuration = DurationBin(time.Duration(durMs)*time.Millisecond), true
	}
	for i, d := range StageDurations(s) {
		if d >= 0 {
			c.StageBins[i], c.HasStage[i] = DurationBin(d), true
		}
	}
	return c, true
}

// StageDurations returns how long each stage of domain.Stages took in s, or -1 for a
// stage that did not finish (or whose start was not seen). A stage starts at the latest
// event that opened it and ends at the first event of a later stage or its failure.
func StageDurations(s *domain.Session) [len(domain.Stages)]time.Duration {
	at := func(st domain.Status) int64 {
		if !s.Has(st) {
			return 0
		}
		return s.At[st.AgentIndex()]
	}
	span := func(start int64, ends ...int64) time.Duration {
		if start == 0 {
			return -1
		}
		var end int64
		for _, e := range ends {
			if e != 0 && (end == 0 || e < end) {
				end = e
			}
		}
		if end == 0 || end < start {
			return -1
		}
		return time.Duration(end-start) * time.Millisecond
	}
	var out [len(domain.Stages)]time.Duration
	out[0] = span(at(domain.StatusSessionInitiated), at(domain.StatusInvocationStarted))
	out[1] = span(at(domain.StatusInvocationStarted), at(domain.StatusInvocationSucceeded), at(domain.StatusInvocationFailed))
	entry := max(at(domain.StatusInvocationSucceeded), at(domain.StatusEntrypointStarted))
	out[2] = span(entry, at(domain.StatusBackgroundTaskStarted), at(domain.StatusEntrypointFailed))
	out[3] = span(at(domain.StatusBackgroundTaskStarted), at(domain.StatusBackgroundTaskCompleted), at(domain.StatusBackgroundTaskFailed))
	return out
}

// Unknown is the agent of a session whose agent is not known (yet).
const Unknown = "unknown"
