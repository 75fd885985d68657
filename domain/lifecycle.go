package domain

import (
	"fmt"
	"strings"
	"time"
)

// Stage is the part of a session's lifecycle that is in progress: what the session is
// waiting for next.
type Stage string

// Stages, in lifecycle order.
const (
	// StageInitiated: SESSION_INITIATED seen, waiting for the invocation to start.
	StageInitiated Stage = "initiated"
	// StageInvocation: the Lambda invoker called AgentCore, waiting for its answer.
	StageInvocation Stage = "invocation"
	// StageEntrypoint: AgentCore accepted the request, waiting for the background task.
	StageEntrypoint Stage = "entrypoint"
	// StageBackgroundTask: the background task runs, waiting for it to complete or fail.
	StageBackgroundTask Stage = "background_task"
	// StageDone: the agent recorded a terminal event.
	StageDone Stage = "done"
)

// Stages lists the stages that can time out, in lifecycle order.
var Stages = [...]Stage{StageInitiated, StageInvocation, StageEntrypoint, StageBackgroundTask}

// Outcome classifies a session.
type Outcome string

// Outcomes of a diagnosis.
const (
	OutcomeCompleted            Outcome = "completed"
	OutcomeInProgress           Outcome = "in_progress"
	OutcomeInvocationFailed     Outcome = "invocation_failed"      // seed 002 scenario 1
	OutcomeEntrypointFailed     Outcome = "entrypoint_failed"      // scenario 2
	OutcomeBackgroundTaskFailed Outcome = "background_task_failed" // scenario 3
	OutcomeMissingCompletion    Outcome = "missing_completion"     // scenario 4
	OutcomeNeverStarted         Outcome = "never_started"
	OutcomeAborted              Outcome = "aborted"
	// OutcomeExecutionOnly: Step Functions reported the execution but the agent wrote
	// no journal events; the journal cannot say more.
	OutcomeExecutionOnly Outcome = "execution_only"
	OutcomeEmpty         Outcome = "empty"
)

// Failed reports whether the outcome is one of the failure scenarios 1-4.
func (o Outcome) Failed() bool { return o.Scenario() > 0 }

// Scenario is the failure scenario of seed 002 (1-4), or 0.
func (o Outcome) Scenario() int {
	switch o {
	case OutcomeInvocationFailed:
		return 1
	case OutcomeEntrypointFailed:
		return 2
	case OutcomeBackgroundTaskFailed:
		return 3
	case OutcomeMissingCompletion:
		return 4
	}
	return 0
}

// Diagnosis says where a session stands and, if it failed, where and why.
type Diagnosis struct {
	Outcome Outcome `json:"outcome"`
	// Scenario is the failure scenario of seed 002 (1-4), 0 otherwise.
	Scenario int `json:"scenario,omitempty"`
	// Stage is the stage in progress, or the stage that failed.
	Stage Stage `json:"stage,omitempty"`
	// Component is the component that failed or is being waited on.
	Component string `json:"component,omitempty"`
	// ErrorMessage is the failure event's ErrorMessage.
	ErrorMessage string `json:"errorMessage,omitempty"`
	// ExecStatus is the current execution's status, if any.
	ExecStatus ExecStatus `json:"executionStatus,omitempty"`
	// Mismatch is set when Step Functions and the journal disagree: the execution
	// SUCCEEDED while the agent recorded a failure, or FAILED/TIMED_OUT while the agent
	// completed.
	Mismatch bool `json:"journalMismatch,omitempty"`
	// Summary is one sentence for people.
	Summary string `json:"summary"`
}

// Component names, as seed 002 calls them.
const (
	ComponentStepFunction   = "Step Function"
	ComponentLambdaInvoker  = "Lambda invoker"
	ComponentEntrypoint     = "Agent entrypoint"
	ComponentBackgroundTask = "Agent background task"
)

func (st Stage) component() string {
	switch st {
	case StageInitiated:
		return ComponentStepFunction
	case StageInvocation:
		return ComponentLambdaInvoker
	case StageEntrypoint:
		return ComponentEntrypoint
	case StageBackgroundTask:
		return ComponentBackgroundTask
	}
	return ""
}

// progress lists the non-terminal agent statuses with the stage each one opens.
var progress = [...]struct {
	status Status
	stage  Stage
}{
	{StatusSessionInitiated, StageInitiated},
	{StatusInvocationStarted, StageInvocation},
	{StatusInvocationSucceeded, StageEntrypoint},
	{StatusEntrypointStarted, StageEntrypoint},
	{StatusBackgroundTaskStarted, StageBackgroundTask},
}

// HasAgentEvents reports whether the agent wrote any known event for the session.
func (s *Session) HasAgentEvents() bool { return s.Seen != 0 }

// CurrentStage returns the furthest stage the session reached and when that stage
// began (the latest event that opened it). A session with no agent events has no stage.
func (s *Session) CurrentStage() (Stage, time.Time) {
	var stage Stage
	var at int64
	for _, p := range progress {
		i := p.status.AgentIndex()
		if s.Seen&(1<<i) == 0 {
			continue
		}
		if stage != p.stage {
			stage, at = p.stage, s.At[i]
		} else if s.At[i] > at {
			at = s.At[i]
		}
	}
	if stage == "" {
		return "", time.Time{}
	}
	return stage, time.UnixMilli(at).UTC()
}

// lastProgress is the latest time of any non-terminal agent event.
func (s *Session) lastProgress() int64 {
	var last int64
	for _, p := range progress {
		if i := p.status.AgentIndex(); s.Seen&(1<<i) != 0 && s.At[i] > last {
			last = s.At[i]
		}
	}
	return last
}

// decisiveFailure returns the failure that ended the session, if any: a failure event
// with no progress after it (an agent that retried and went on has not failed), the
// furthest stage first.
func (s *Session) decisiveFailure() (Status, bool) {
	last := s.lastProgress()
	for _, f := range [...]Status{StatusBackgroundTaskFailed, StatusEntrypointFailed, StatusInvocationFailed} {
		if i := f.AgentIndex(); s.Seen&(1<<i) != 0 && s.At[i] >= last {
			return f, true
		}
	}
	return "", false
}

// AgentTerminal reports whether the agent's part of the session is over: the
// background task completed, or a component failed for good.
func (s *Session) AgentTerminal() bool {
	if s.Has(StatusBackgroundTaskCompleted) {
		return true
	}
	_, failed := s.decisiveFailure()
	return failed
}

// Classify is Diagnose without the Summary: cheap enough for the projection hot path
// (no allocation).
func (s *Session) Classify() Diagnosis {
	var d Diagnosis
	exec := s.Exec()
	execEnded := false
	if exec != nil {
		d.ExecStatus = exec.Status
		execEnded = exec.Status.Terminal()
	}
	if s.Has(StatusBackgroundTaskCompleted) {
		d.Outcome, d.Stage = OutcomeCompleted, StageDone
		d.Mismatch = exec != nil && (exec.Status == ExecFailed || exec.Status == ExecTimedOut)
		return d
	}
	if f, ok := s.decisiveFailure(); ok {
		switch f {
		case StatusInvocationFailed:
			d.Outcome, d.Stage = OutcomeInvocationFailed, StageInvocation
		case StatusEntrypointFailed:
			d.Outcome, d.Stage = OutcomeEntrypointFailed, StageEntrypoint
		default:
			d.Outcome, d.Stage = OutcomeBackgroundTaskFailed, StageBackgroundTask
		}
		d.Scenario = d.Outcome.Scenario()
		d.Component = d.Stage.component()
		d.ErrorMessage = s.Errors[failureSlot(f)]
		d.Mismatch = exec != nil && exec.Status == ExecSucceeded
		return d
	}
	stage, _ := s.CurrentStage()
	switch {
	case s.Seen == 0 && exec == nil:
		d.Outcome = OutcomeEmpty
	case s.Seen == 0:
		d.Outcome = OutcomeExecutionOnly
	case execEnded && exec.Status == ExecAborted:
		d.Outcome, d.Stage, d.Component = OutcomeAborted, stage, stage.component()
	case execEnded && stage == StageInitiated:
		d.Outcome, d.Stage, d.Component = OutcomeNeverStarted, stage, ComponentLambdaInvoker
	case execEnded:
		d.Outcome, d.Scenario = OutcomeMissingCompletion, 4
		d.Stage, d.Component = stage, stage.component()
		d.ErrorMessage = exec.Error
	default:
		d.Outcome, d.Stage, d.Component = OutcomeInProgress, stage, stage.component()
	}
	return d
}

// Diagnose classifies the session from its events alone (no clock): completed, in
// progress (and which stage), one of the four failure scenarios of seed 002, never
// started (initiated, nothing after, execution over), aborted, or execution only, with
// a one-sentence summary. Time-based judgements (stuck, never started while the
// execution still runs) belong to the stuck detector.
func (s *Session) Diagnose() Diagnosis {
	d := s.Classify()
	exec := s.Exec()
	switch d.Outcome {
	case OutcomeCompleted:
		d.Summary = "completed: the background task finished"
		if d.Mismatch {
			d.Summary += fmt.Sprintf(", but Step Functions says %s", exec.Status)
		}
	case OutcomeInvocationFailed, OutcomeEntrypointFailed, OutcomeBackgroundTaskFailed:
		d.Summary = fmt.Sprintf("scenario %d: %s failed", d.Scenario, d.Component)
		if d.ErrorMessage != "" {
			d.Summary += ": " + d.ErrorMessage
		}
		if d.Mismatch {
			d.Summary += ", but Step Functions says SUCCEEDED"
		}
	case OutcomeEmpty:
		d.Summary = "no known events"
	case OutcomeExecutionOnly:
		d.Summary = fmt.Sprintf("execution %s; the agent wrote no journal events", exec.Status)
	case OutcomeAborted:
		d.Summary = fmt.Sprintf("aborted by an operator during the %s stage", d.Stage)
	case OutcomeNeverStarted:
		d.Summary = fmt.Sprintf("never started: initiated, nothing after; execution %s", exec.Status)
	case OutcomeMissingCompletion:
		if exec.Cause != "" {
			d.ErrorMessage = strings.TrimPrefix(exec.Error+": "+exec.Cause, ": ")
		}
		d.Summary = fmt.Sprintf("scenario 4: execution %s but no completion event (last: %s)", exec.Status, s.LastAgentStatus())
	case OutcomeInProgress:
		d.Summary = fmt.Sprintf("in progress: waiting on the %s (last: %s)", d.Component, s.LastAgentStatus())
	}
	return d
}

// LastAgentStatus is the latest agent event type seen (ties: the furthest in the
// lifecycle), or "".
func (s *Session) LastAgentStatus() Status {
	var last Status
	var at int64 = -1
	for i, st := range AgentStatuses {
		if s.Seen&(1<<i) != 0 && s.At[i] >= at {
			last, at = st, s.At[i]
		}
	}
	return last
}
