package domain_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/domain"
)

var t0 = time.Date(2024, 11, 4, 10, 30, 0, 0, time.UTC)

// ev builds an agent event n seconds after t0.
func ev(n int, st domain.Status, msg string) domain.Event {
	at := t0.Add(time.Duration(n) * time.Second)
	return domain.Event{SessionID: "abc-123-def", SK: domain.EventKeyPrefix + domain.FormatTime(at), Status: st, Timestamp: at, ErrorMessage: msg}
}

// exec builds a status change n seconds after t0.
func exec(n int, st domain.ExecStatus, redrive int) domain.Event {
	at := t0.Add(time.Duration(n) * time.Second)
	arn := "arn:aws:states:us-east-1:123456789012:execution:my-agent:abc-123-def"
	e := domain.Event{SessionID: "abc-123-def", Status: st.JournalStatus(), Timestamp: at,
		SK: domain.ExecutionSortKey(at, st, redrive, arn)}
	e.Exec = domain.Execution{ExecutionArn: arn, StateMachineArn: "arn:aws:states:us-east-1:123456789012:stateMachine:my-agent",
		ExecutionName: "abc-123-def", AgentName: "my-agent", StartDate: t0, RedriveCount: redrive}
	if st.Terminal() {
		e.Exec.StopDate = at
	}
	if st == domain.ExecFailed || st == domain.ExecTimedOut {
		e.Exec.Error, e.Exec.Cause = "States.TaskFailed", "boom"
	}
	return e
}

func session(evs ...domain.Event) *domain.Session {
	var s domain.Session
	for i := range evs {
		s.Apply(&evs[i])
	}
	return &s
}

var (
	initiated = ev(0, domain.StatusSessionInitiated, "")
	invStart  = ev(1, domain.StatusInvocationStarted, "")
	invOK     = ev(2, domain.StatusInvocationSucceeded, "")
	entry     = ev(3, domain.StatusEntrypointStarted, "")
	bgStart   = ev(4, domain.StatusBackgroundTaskStarted, "")
	bgDone    = ev(345, domain.StatusBackgroundTaskCompleted, "")
)

func TestDiagnose(t *testing.T) {
	tests := []struct {
		name     string
		events   []domain.Event
		outcome  domain.Outcome
		scenario int
		stage    domain.Stage
		errMsg   string
		mismatch bool
		summary  string
	}{
		{name: "happy path of seed 002", events: []domain.Event{initiated, invStart, invOK, entry, bgStart, bgDone, exec(0, domain.ExecRunning, 0), exec(346, domain.ExecSucceeded, 0)},
			outcome: domain.OutcomeCompleted, stage: domain.StageDone, summary: "completed"},
		{name: "scenario 1: Lambda invocation failure", events: []domain.Event{initiated, invStart, ev(2, domain.StatusInvocationFailed, "Failed to invoke AgentCore: Timeout")},
			outcome: domain.OutcomeInvocationFailed, scenario: 1, stage: domain.StageInvocation, errMsg: "Failed to invoke AgentCore: Timeout", summary: "scenario 1: Lambda invoker failed"},
		{name: "scenario 2: entrypoint failure", events: []domain.Event{initiated, invStart, invOK, entry, ev(4, domain.StatusEntrypointFailed, "ValueError: Invalid request format")},
			outcome: domain.OutcomeEntrypointFailed, scenario: 2, stage: domain.StageEntrypoint, errMsg: "ValueError: Invalid request format"},
		{name: "scenario 3: background task failure", events: []domain.Event{initiated, invStart, invOK, entry, bgStart, ev(345, domain.StatusBackgroundTaskFailed, "ClientError: ThrottlingException - Rate exceeded")},
			outcome: domain.OutcomeBackgroundTaskFailed, scenario: 3, stage: domain.StageBackgroundTask, errMsg: "ClientError: ThrottlingException - Rate exceeded"},
		{name: "scenario 4: missing completion, execution over", events: []domain.Event{initiated, invStart, invOK, entry, bgStart, exec(0, domain.ExecRunning, 0), exec(900, domain.ExecTimedOut, 0)},
			outcome: domain.OutcomeMissingCompletion, scenario: 4, stage: domain.StageBackgroundTask, errMsg: "States.TaskFailed: boom", summary: "scenario 4: execution TIMED_OUT but no completion event"},
		{name: "scenario 4 shape while the execution runs: in progress", events: []domain.Event{initiated, invStart, invOK, entry, bgStart},
			outcome: domain.OutcomeInProgress, stage: domain.StageBackgroundTask, summary: "in progress: waiting on the Agent background task"},
		{name: "never started: initiated, nothing after, execution over", events: []domain.Event{initiated, exec(0, domain.ExecRunning, 0), exec(60, domain.ExecFailed, 0)},
			outcome: domain.OutcomeNeverStarted, stage: domain.StageInitiated, summary: "never started"},
		{name: "initiated only, execution running: in progress", events: []domain.Event{initiated},
			outcome: domain.OutcomeInProgress, stage: domain.StageInitiated},
		{name: "waiting on AgentCore", events: []domain.Event{initiated, invStart},
			outcome: domain.OutcomeInProgress, stage: domain.StageInvocation},
		{name: "waiting on the entrypoint", events: []domain.Event{initiated, invStart, invOK},
			outcome: domain.OutcomeInProgress, stage: domain.StageEntrypoint},
		{name: "aborted by an operator", events: []domain.Event{initiated, invStart, invOK, entry, bgStart, exec(100, domain.ExecAborted, 0)},
			outcome: domain.OutcomeAborted, stage: domain.StageBackgroundTask},
		{name: "invocation retried after a failure, then completed", events: []domain.Event{initiated, invStart, ev(2, domain.StatusInvocationFailed, "Timeout"),
			ev(5, domain.StatusInvocationStarted, ""), ev(6, domain.StatusInvocationSucceeded, ""), ev(7, domain.StatusEntrypointStarted, ""),
			ev(8, domain.StatusBackgroundTaskStarted, ""), ev(20, domain.StatusBackgroundTaskCompleted, "")},
			outcome: domain.OutcomeCompleted, stage: domain.StageDone},
		{name: "invocation retried after a failure, still running", events: []domain.Event{initiated, invStart, ev(2, domain.StatusInvocationFailed, "Timeout"), ev(5, domain.StatusInvocationStarted, "")},
			outcome: domain.OutcomeInProgress, stage: domain.StageInvocation},
		{name: "journal mismatch: execution SUCCEEDED, agent failed", events: []domain.Event{initiated, invStart, invOK, entry, bgStart, ev(30, domain.StatusBackgroundTaskFailed, "KeyError: 'x'"), exec(31, domain.ExecSucceeded, 0)},
			outcome: domain.OutcomeBackgroundTaskFailed, scenario: 3, stage: domain.StageBackgroundTask, errMsg: "KeyError: 'x'", mismatch: true, summary: "but Step Functions says SUCCEEDED"},
		{name: "journal mismatch: agent completed, execution FAILED", events: []domain.Event{initiated, invStart, invOK, entry, bgStart, bgDone, exec(400, domain.ExecFailed, 0)},
			outcome: domain.OutcomeCompleted, stage: domain.StageDone, mismatch: true, summary: "but Step Functions says FAILED"},
		{name: "execution only: no journal events", events: []domain.Event{exec(0, domain.ExecRunning, 0), exec(5, domain.ExecSucceeded, 0)},
			outcome: domain.OutcomeExecutionOnly},
		{name: "unknown statuses only", events: []domain.Event{ev(0, "AGENT_TOOL_CALLED", "")},
			outcome: domain.OutcomeEmpty},
		{name: "redriven after missing completion, then completed", events: []domain.Event{initiated, invStart, invOK, entry, bgStart, exec(0, domain.ExecRunning, 0),
			exec(100, domain.ExecFailed, 0), exec(200, domain.ExecRunning, 1), bgDone, exec(400, domain.ExecSucceeded, 1)},
			outcome: domain.OutcomeCompleted, stage: domain.StageDone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := session(tt.events...)
			d := s.Diagnose()
			assert.Equal(t, tt.outcome, d.Outcome)
			assert.Equal(t, tt.scenario, d.Scenario)
			assert.Equal(t, tt.scenario, d.Outcome.Scenario())
			if tt.stage != "" {
				assert.Equal(t, tt.stage, d.Stage)
			}
			assert.Equal(t, tt.errMsg, d.ErrorMessage)
			assert.Equal(t, tt.mismatch, d.Mismatch)
			assert.Contains(t, d.Summary, tt.summary)
			assert.NotEmpty(t, d.Summary)
			// Classify agrees with Diagnose on everything but the summary.
			c := s.Classify()
			assert.Equal(t, d.Outcome, c.Outcome)
			assert.Equal(t, d.Mismatch, c.Mismatch)
			// The diagnosis never depends on the order of the events.
			rev := make([]domain.Event, len(tt.events))
			for i := range tt.events {
				rev[len(rev)-1-i] = tt.events[i]
			}
			assert.Equal(t, d, session(rev...).Diagnose(), "reversed order")
		})
	}
}

func TestExecutionRankNeverLetsLateRunningWin(t *testing.T) {
	s := session(exec(100, domain.ExecSucceeded, 0), exec(0, domain.ExecRunning, 0))
	require.Len(t, s.Execs, 1)
	x := s.Execs[0]
	assert.Equal(t, domain.ExecSucceeded, x.Status)
	assert.Equal(t, t0.Add(100*time.Second).UnixMilli(), x.StopMs)
	assert.Equal(t, t0.UnixMilli(), x.StartMs)

	// A redrive reopens; its terminal status closes again.
	s = session(exec(0, domain.ExecRunning, 0), exec(100, domain.ExecFailed, 0), exec(200, domain.ExecRunning, 1))
	assert.Equal(t, domain.ExecRunning, s.Execs[0].Status)
	assert.Equal(t, 1, s.Execs[0].RedriveCount)
	assert.Zero(t, s.Execs[0].StopMs, "a reopened execution has no stop date")
	s = session(exec(300, domain.ExecSucceeded, 1), exec(200, domain.ExecRunning, 1), exec(100, domain.ExecFailed, 0), exec(150, domain.ExecPendingRedrive, 1))
	assert.Equal(t, domain.ExecSucceeded, s.Execs[0].Status)
}

func TestApplyIsIdempotent(t *testing.T) {
	evs := []domain.Event{initiated, invStart, ev(2, domain.StatusInvocationFailed, "x"), exec(0, domain.ExecRunning, 0), exec(9, domain.ExecFailed, 0)}
	s := session(evs...)
	before := s.Clone()
	for i := range evs {
		assert.False(t, s.Apply(&evs[i]), "event %d changed the session again", i)
	}
	assert.True(t, before.Equal(s))
}

func TestFailureMessageIsOrderIndependent(t *testing.T) {
	a := ev(10, domain.StatusBackgroundTaskFailed, "B: second")
	b := ev(10, domain.StatusBackgroundTaskFailed, "A: first")
	b.SK += "#x"
	assert.Equal(t, session(a, b).Errors, session(b, a).Errors)
}

func TestCurrentStage(t *testing.T) {
	for i, tc := range []struct {
		evs   []domain.Event
		stage domain.Stage
		since int
	}{
		{[]domain.Event{initiated}, domain.StageInitiated, 0},
		{[]domain.Event{initiated, invStart}, domain.StageInvocation, 1},
		{[]domain.Event{initiated, invStart, invOK}, domain.StageEntrypoint, 2},
		{[]domain.Event{initiated, invStart, invOK, entry}, domain.StageEntrypoint, 3},
		{[]domain.Event{initiated, invStart, invOK, entry, bgStart}, domain.StageBackgroundTask, 4},
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			st, at := session(tc.evs...).CurrentStage()
			assert.Equal(t, tc.stage, st)
			assert.Equal(t, t0.Add(time.Duration(tc.since)*time.Second), at)
		})
	}
}

func TestStatusSets(t *testing.T) {
	assert.Len(t, domain.AgentStatuses, 9)
	for i, s := range domain.AgentStatuses {
		assert.Equal(t, i, s.AgentIndex())
		assert.True(t, s.Known())
		assert.False(t, s.IsExecution())
	}
	for _, e := range domain.ExecStatuses {
		js := e.JournalStatus()
		assert.True(t, js.IsExecution(), js)
		assert.Equal(t, e, js.ExecStatus())
	}
	assert.False(t, domain.Status("AGENT_TOOL_CALLED").Known())
	assert.False(t, domain.Status("EXECUTION_").IsExecution())
	assert.False(t, domain.Status("EXECUTION_EXPLODED").IsExecution())
	assert.True(t, domain.StatusBackgroundTaskFailed.IsAgentTerminal())
	assert.False(t, domain.StatusBackgroundTaskStarted.IsAgentTerminal())
}
