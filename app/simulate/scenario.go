package simulate

// Scenario is the story of one simulated session: which journal events its agent writes,
// which status changes Step Functions reports for its execution, and when.
type Scenario string

// Scenarios. The comments give the journal events and the execution's status changes.
const (
	// ScenarioHappy: the six agent events of seed 002; RUNNING, SUCCEEDED.
	ScenarioHappy Scenario = "happy"
	// ScenarioInvocationFailure (seed 002 scenario 1): initiated, invocation started,
	// invocation failed; RUNNING, FAILED (the invoker Lambda raised).
	ScenarioInvocationFailure Scenario = "invocation_failure"
	// ScenarioEntrypointFailure (scenario 2): up to entrypoint started, then entrypoint
	// failed; RUNNING, FAILED.
	ScenarioEntrypointFailure Scenario = "entrypoint_failure"
	// ScenarioBackgroundTaskFailure (scenario 3): up to background task started, then
	// background task failed; RUNNING, FAILED.
	ScenarioBackgroundTaskFailure Scenario = "background_task_failure"
	// ScenarioMissingCompletion (scenario 4): the agent crashed after background task
	// started and wrote nothing more; RUNNING, then TIMED_OUT or (a poll loop that gives
	// up and succeeds) SUCCEEDED once Timing.ExecutionTimeout has passed.
	ScenarioMissingCompletion Scenario = "missing_completion"
	// ScenarioNeverStarted: SESSION_INITIATED only, the invoker never ran; RUNNING, then
	// TIMED_OUT after Timing.ExecutionTimeout, or still running.
	ScenarioNeverStarted Scenario = "never_started"
	// ScenarioStalled: the agent hangs after the invocation started, after the
	// entrypoint started or after the background task started, and the execution keeps
	// running; RUNNING only.
	ScenarioStalled Scenario = "stalled"
	// ScenarioLongRunning: a healthy background task that runs Timing.LongRunning, far
	// longer than the agent's usual ones; RUNNING, SUCCEEDED. In Generate, a task still
	// running at the end of the window gets no completion (SessionTruth.CompletesAt says
	// when it would come): RUNNING only.
	ScenarioLongRunning Scenario = "long_running"
	// ScenarioLateCompletion: the background task completes Timing.LateCompletion after
	// it started, long after a detector gave up on it (a recovery); RUNNING, SUCCEEDED.
	ScenarioLateCompletion Scenario = "late_completion"
	// ScenarioAborted: an operator stops the execution while the background task runs;
	// RUNNING, ABORTED.
	ScenarioAborted Scenario = "aborted"
	// ScenarioRedrive: the invocation fails and the execution FAILED; an operator
	// redrives it, the invocation is retried and the session completes; RUNNING, FAILED,
	// RUNNING (redriveCount 1, redriveDate set), SUCCEEDED (redriveCount 1).
	ScenarioRedrive Scenario = "redrive"
	// ScenarioJournalMismatch: Step Functions and the journal disagree: the execution
	// SUCCEEDED while the agent recorded AGENT_BACKGROUND_TASK_FAILED or, in a third of
	// the sessions, the agent completed while the execution FAILED.
	ScenarioJournalMismatch Scenario = "journal_mismatch"
	// ScenarioDroppedStatusChanges: the happy path, but RUNNING, SUCCEEDED or both
	// status changes are never delivered (SessionTruth.Dropped).
	ScenarioDroppedStatusChanges Scenario = "dropped_status_changes"
	// ScenarioInvocationRetry: the first invocation fails (throttled, timed out), the
	// invoker retries and the session completes; RUNNING, SUCCEEDED.
	ScenarioInvocationRetry Scenario = "invocation_retry"
)

// Scenarios lists every scenario.
var Scenarios = [...]Scenario{
	ScenarioHappy,
	ScenarioInvocationFailure,
	ScenarioEntrypointFailure,
	ScenarioBackgroundTaskFailure,
	ScenarioMissingCompletion,
	ScenarioNeverStarted,
	ScenarioStalled,
	ScenarioLongRunning,
	ScenarioLateCompletion,
	ScenarioAborted,
	ScenarioRedrive,
	ScenarioJournalMismatch,
	ScenarioDroppedStatusChanges,
	ScenarioInvocationRetry,
}

// numScenarios is len(Scenarios).
const numScenarios = len(Scenarios)

// index returns s's position in Scenarios, or -1.
func (s Scenario) index() int {
	for i, x := range Scenarios {
		if x == s {
			return i
		}
	}
	return -1
}

// Valid reports whether s is one of Scenarios.
func (s Scenario) Valid() bool { return s.index() >= 0 }

// failing reports whether s is a failure an agent's reliability drives; per-agent
// profiles scale the weights of these scenarios so that agents differ in failure rates.
func (s Scenario) failing() bool {
	switch s {
	case ScenarioInvocationFailure, ScenarioEntrypointFailure, ScenarioBackgroundTaskFailure,
		ScenarioMissingCompletion, ScenarioNeverStarted, ScenarioStalled, ScenarioJournalMismatch,
		ScenarioInvocationRetry:
		return true
	}
	return false
}

// DefaultWeights is a production-like mix: most sessions succeed, some 8% fail in one
// of the ways of seed 002 and say so, and about one in twenty needs the stuck detector.
// Weights are relative; they need not sum to 1.
func DefaultWeights() map[Scenario]float64 {
	return map[Scenario]float64{
		ScenarioHappy:                 78,
		ScenarioInvocationFailure:     3,
		ScenarioEntrypointFailure:     2,
		ScenarioBackgroundTaskFailure: 3,
		ScenarioMissingCompletion:     1.5,
		ScenarioNeverStarted:          1,
		ScenarioStalled:               1,
		ScenarioLongRunning:           1.5,
		ScenarioLateCompletion:        0.5,
		ScenarioAborted:               0.5,
		ScenarioRedrive:               1,
		ScenarioJournalMismatch:       0.5,
		ScenarioDroppedStatusChanges:  2,
		ScenarioInvocationRetry:       4.5,
	}
}

// DemoWeights is a mix for the live demo: every scenario shows up within a minute or
// two at a couple of sessions per second, and about one session in five needs an alert.
func DemoWeights() map[Scenario]float64 {
	return map[Scenario]float64{
		ScenarioHappy:                 50,
		ScenarioInvocationFailure:     5,
		ScenarioEntrypointFailure:     4,
		ScenarioBackgroundTaskFailure: 5,
		ScenarioMissingCompletion:     5,
		ScenarioNeverStarted:          3,
		ScenarioStalled:               5,
		ScenarioLongRunning:           3,
		ScenarioLateCompletion:        4,
		ScenarioAborted:               2,
		ScenarioRedrive:               3,
		ScenarioJournalMismatch:       2,
		ScenarioDroppedStatusChanges:  3,
		ScenarioInvocationRetry:       5,
	}
}
