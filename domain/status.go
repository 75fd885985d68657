// Package domain holds the pure types and rules of agentwatch: journal events, statuses,
// the session lifecycle, Step Functions status changes, and the decoders that turn
// external payloads into them with errors that name the offending field.
//
// It imports only the standard library.
package domain

// Status is the Status attribute of a journal item: one of the nine agent event types,
// one of the EXECUTION_* statuses that agentwatch records for Step Functions status
// changes, or an unknown value written by a newer agent (kept, never fatal).
type Status string

// Agent event types (seed 002).
const (
	StatusSessionInitiated        Status = "SESSION_INITIATED"
	StatusInvocationStarted       Status = "AGENT_RUNTIME_INVOCATION_STARTED"
	StatusInvocationSucceeded     Status = "AGENT_RUNTIME_INVOCATION_SUCCEEDED"
	StatusInvocationFailed        Status = "AGENT_RUNTIME_INVOCATION_FAILED"
	StatusEntrypointStarted       Status = "AGENT_ENTRYPOINT_STARTED"
	StatusBackgroundTaskStarted   Status = "AGENT_BACKGROUND_TASK_STARTED"
	StatusEntrypointFailed        Status = "AGENT_ENTRYPOINT_FAILED"
	StatusBackgroundTaskCompleted Status = "AGENT_BACKGROUND_TASK_COMPLETED"
	StatusBackgroundTaskFailed    Status = "AGENT_BACKGROUND_TASK_FAILED"
)

// Execution statuses recorded in the journal from Step Functions status changes.
const (
	StatusExecutionRunning        Status = "EXECUTION_RUNNING"
	StatusExecutionSucceeded      Status = "EXECUTION_SUCCEEDED"
	StatusExecutionFailed         Status = "EXECUTION_FAILED"
	StatusExecutionTimedOut       Status = "EXECUTION_TIMED_OUT"
	StatusExecutionAborted        Status = "EXECUTION_ABORTED"
	StatusExecutionPendingRedrive Status = "EXECUTION_PENDING_REDRIVE"
)

// ExecutionPrefix prefixes every execution status in the journal.
const ExecutionPrefix = "EXECUTION_"

// AgentStatuses lists the nine agent event types in their expected order.
var AgentStatuses = [...]Status{
	StatusSessionInitiated,
	StatusInvocationStarted,
	StatusInvocationSucceeded,
	StatusInvocationFailed,
	StatusEntrypointStarted,
	StatusBackgroundTaskStarted,
	StatusEntrypointFailed,
	StatusBackgroundTaskCompleted,
	StatusBackgroundTaskFailed,
}

// NumAgentStatuses is the number of agent event types.
const NumAgentStatuses = len(AgentStatuses)

// AgentIndex returns the position of s in AgentStatuses, or -1 for a status that is not
// an agent event type.
func (s Status) AgentIndex() int {
	switch s {
	case StatusSessionInitiated:
		return 0
	case StatusInvocationStarted:
		return 1
	case StatusInvocationSucceeded:
		return 2
	case StatusInvocationFailed:
		return 3
	case StatusEntrypointStarted:
		return 4
	case StatusBackgroundTaskStarted:
		return 5
	case StatusEntrypointFailed:
		return 6
	case StatusBackgroundTaskCompleted:
		return 7
	case StatusBackgroundTaskFailed:
		return 8
	}
	return -1
}

// IsAgent reports whether s is one of the nine agent event types.
func (s Status) IsAgent() bool { return s.AgentIndex() >= 0 }

// IsExecution reports whether s is one of the EXECUTION_* statuses.
func (s Status) IsExecution() bool { return s.ExecStatus().Known() }

// Known reports whether agentwatch understands s.
func (s Status) Known() bool { return s.IsAgent() || s.IsExecution() }

// IsFailure reports whether s is an agent failure event (it carries an ErrorMessage).
func (s Status) IsFailure() bool {
	return s == StatusInvocationFailed || s == StatusEntrypointFailed || s == StatusBackgroundTaskFailed
}

// IsAgentTerminal reports whether s ends the agent's part of a session: the background
// task completed or failed, or an earlier component failed.
func (s Status) IsAgentTerminal() bool {
	return s == StatusBackgroundTaskCompleted || s.IsFailure()
}

// ExecStatus returns the Step Functions execution status that an EXECUTION_* journal
// status records, or "" for any other status.
func (s Status) ExecStatus() ExecStatus {
	if len(s) <= len(ExecutionPrefix) || string(s[:len(ExecutionPrefix)]) != ExecutionPrefix {
		return ""
	}
	e := ExecStatus(s[len(ExecutionPrefix):])
	if !e.Known() {
		return ""
	}
	return e
}

// ExecStatus is a Step Functions execution status as EventBridge and the Step Functions
// API spell it.
type ExecStatus string

// Step Functions execution statuses.
const (
	ExecRunning        ExecStatus = "RUNNING"
	ExecSucceeded      ExecStatus = "SUCCEEDED"
	ExecFailed         ExecStatus = "FAILED"
	ExecTimedOut       ExecStatus = "TIMED_OUT"
	ExecAborted        ExecStatus = "ABORTED"
	ExecPendingRedrive ExecStatus = "PENDING_REDRIVE"
)

// ExecStatuses lists every Step Functions execution status.
var ExecStatuses = [...]ExecStatus{ExecRunning, ExecSucceeded, ExecFailed, ExecTimedOut, ExecAborted, ExecPendingRedrive}

// Known reports whether e is a Step Functions execution status.
func (e ExecStatus) Known() bool { return e.rank() > 0 }

// Terminal reports whether e ends an execution (until a redrive reopens it).
func (e ExecStatus) Terminal() bool { return e.rank() >= 3 }

// JournalStatus is the journal Status that records e.
func (e ExecStatus) JournalStatus() Status { return Status(ExecutionPrefix + string(e)) }

// rank orders the statuses of one execution attempt: a redrive request comes first,
// then RUNNING, then a terminal status. Terminal statuses get distinct ranks only so
// that an impossible tie still resolves the same way whatever the arrival order.
func (e ExecStatus) rank() int {
	switch e {
	case ExecPendingRedrive:
		return 1
	case ExecRunning:
		return 2
	case ExecSucceeded:
		return 3
	case ExecFailed:
		return 4
	case ExecTimedOut:
		return 5
	case ExecAborted:
		return 6
	}
	return 0
}

// Rank orders the status changes of one execution: a higher redrive count always wins,
// and within one attempt a terminal status beats RUNNING, which beats PENDING_REDRIVE.
// A late RUNNING therefore never replaces a terminal status, and a redrive reopens.
func Rank(e ExecStatus, redriveCount int) int64 {
	return int64(redriveCount)*8 + int64(e.rank())
}
