package simulate

import (
	"time"

	"github.com/agentwatch/agentwatch/domain"
)

// AlertKind is the alert a stuck detector should raise for a session. The values are
// the stuck detector's alert kinds (projections/stuck), plus AlertNone.
type AlertKind string

// Alert kinds.
const (
	// AlertNone: nothing to raise. Sessions that failed and said so (seed 002 scenarios
	// 1-3), completed, were aborted or run long but healthy.
	AlertNone AlertKind = "none"
	// AlertStuck: the session stopped progressing in a stage while its execution runs.
	AlertStuck AlertKind = "stuck"
	// AlertMissingCompletion: the execution ended and the agent never wrote its
	// terminal event (seed 002 scenario 4).
	AlertMissingCompletion AlertKind = "missing_completion"
	// AlertNeverStarted: SESSION_INITIATED and nothing after.
	AlertNeverStarted AlertKind = "never_started"
	// AlertJournalMismatch: Step Functions and the journal disagree on the outcome.
	AlertJournalMismatch AlertKind = "journal_mismatch"
)

// SessionTruth is what really happened in a simulated session, whatever was delivered:
// the ground truth of the stuck detector's precision/recall tests.
type SessionTruth struct {
	// SessionID is the session id (the input's session_id, the journal's PK).
	SessionID string
	// Scenario is the session's story.
	Scenario Scenario
	// Agent is the agent (and state machine) name.
	Agent string
	// ExecutionArn and ExecutionName identify the execution.
	ExecutionArn  string
	ExecutionName string
	// StartedAt is the execution's startDate.
	StartedAt time.Time
	// Statuses are the agent's journal events, in the order they happened.
	Statuses []domain.Status
	// ErrorMessage is the ErrorMessage of the agent's last failure event, if any.
	ErrorMessage string
	// ExecStatuses are the execution's status changes, in the order they happened,
	// delivered or not.
	ExecStatuses []domain.ExecStatus
	// Dropped are the status changes that were never delivered.
	Dropped []domain.ExecStatus
	// FinalExecStatus is the execution's status at the end: the last of ExecStatuses.
	FinalExecStatus domain.ExecStatus
	// ExecEndAt is when the execution stopped (its last stopDate); zero while it runs.
	ExecEndAt time.Time
	// Faulty reports whether something went wrong in the session: a component failed,
	// hung or crashed, or Step Functions and the journal disagree. Sessions that
	// recovered through a retry or a redrive, aborted sessions and long-running ones are
	// not faulty.
	Faulty bool
	// Alert is the alert a stuck detector should raise, eventually, given stage timeouts
	// longer than healthy stages and shorter than the session's stall (see Timing).
	// Expect says what it should have raised by a given time.
	Alert AlertKind
	// Stage and StalledAt are set when the agent's journal ends without a terminal event
	// (stalled, missing completion, never started, aborted, a long-running task left
	// running) or pauses before a late completion: the stage in progress and the time
	// of its last event.
	Stage     domain.Stage
	StalledAt time.Time
	// ObservableAt is when the fault became observable: the stall's start for stuck
	// and never-started sessions, the execution's end for a missing completion, the
	// later of the execution's end and the agent's terminal event for a journal
	// mismatch, the failure event for seed 002 scenarios 1-3. Zero when nothing is wrong.
	ObservableAt time.Time
	// RecoveredAt is when a late completion arrived (ScenarioLateCompletion).
	RecoveredAt time.Time
	// CompletesAt is when a long-running background task completes. In Generate, a task
	// that would complete after the window is left running: its completion is not among
	// the objects.
	CompletesAt time.Time
}

// AlertDue is when a stuck detector with these stage timeouts and completion grace
// raises t.Alert, judging by event times, or the zero time for AlertNone and for a late
// completion that comes before the timeout. It follows
// projections/stuck.Evaluate: a stall is due its stage's timeout after StalledAt; a
// missing completion CompletionGrace after the execution ended; a never-started session
// its initiated-stage timeout after StalledAt, unless the execution ended before that,
// then CompletionGrace after the end; a mismatch at ObservableAt. stuck.Config's Timeout
// method fits timeout.
func (t *SessionTruth) AlertDue(timeout func(agent string, stage domain.Stage) time.Duration, grace time.Duration) time.Time {
	switch t.Alert {
	case AlertStuck:
		due := t.StalledAt.Add(timeout(t.Agent, t.Stage))
		if !t.RecoveredAt.IsZero() && t.RecoveredAt.Before(due) {
			return time.Time{}
		}
		return due
	case AlertMissingCompletion:
		return t.ExecEndAt.Add(grace)
	case AlertNeverStarted:
		due := t.StalledAt.Add(timeout(t.Agent, domain.StageInitiated))
		if !t.ExecEndAt.IsZero() && t.ExecEndAt.Before(due) {
			return t.ExecEndAt.Add(grace)
		}
		return due
	case AlertJournalMismatch:
		return t.ObservableAt
	}
	return time.Time{}
}

// Expect is the alert a correct stuck detector with these stage timeouts and completion
// grace has raised for the session by now, judging by what was delivered: t.Alert once
// AlertDue has passed, else AlertNone. A long-running task left running is the
// exception: once its background-task timeout has passed, no detector can tell it from
// a hung one, so Expect says AlertStuck although the session is healthy.
func (t *SessionTruth) Expect(now time.Time, timeout func(agent string, stage domain.Stage) time.Duration, grace time.Duration) AlertKind {
	if t.Scenario == ScenarioLongRunning {
		if t.Stage != "" && !now.Before(t.StalledAt.Add(timeout(t.Agent, t.Stage))) {
			return AlertStuck
		}
		return AlertNone
	}
	if due := t.AlertDue(timeout, grace); !due.IsZero() && !now.Before(due) {
		return t.Alert
	}
	return AlertNone
}
