package storetest

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/agentwatch/agentwatch/domain"
)

// SeedSessionID is the session of the example items of seed 002.
const SeedSessionID = "abc-123-def"

// seedItems are the example event records of seed 002, verbatim. Some share a sort key
// (the seed shows alternatives: completed or failed at 10:35:45.678Z).
var seedItems = map[string]string{
	"initiated":          `{"PK": "SESSION#abc-123-def", "SK": "EVENT#2024-11-04T10:30:00.000Z", "Status": "SESSION_INITIATED", "Timestamp": "2024-11-04T10:30:00.000Z"}`,
	"invocationStarted":  `{"PK": "SESSION#abc-123-def", "SK": "EVENT#2024-11-04T10:30:01.234Z", "Status": "AGENT_RUNTIME_INVOCATION_STARTED", "Timestamp": "2024-11-04T10:30:01.234Z"}`,
	"invocationSucceded": `{"PK": "SESSION#abc-123-def", "SK": "EVENT#2024-11-04T10:30:02.456Z", "Status": "AGENT_RUNTIME_INVOCATION_SUCCEEDED", "Timestamp": "2024-11-04T10:30:02.456Z"}`,
	"entrypointStarted":  `{"PK": "SESSION#abc-123-def", "SK": "EVENT#2024-11-04T10:30:03.789Z", "Status": "AGENT_ENTRYPOINT_STARTED", "Timestamp": "2024-11-04T10:30:03.789Z"}`,
	"taskStarted":        `{"PK": "SESSION#abc-123-def", "SK": "EVENT#2024-11-04T10:30:04.012Z", "Status": "AGENT_BACKGROUND_TASK_STARTED", "Timestamp": "2024-11-04T10:30:04.012Z"}`,
	"taskCompleted":      `{"PK": "SESSION#abc-123-def", "SK": "EVENT#2024-11-04T10:35:45.678Z", "Status": "AGENT_BACKGROUND_TASK_COMPLETED", "Timestamp": "2024-11-04T10:35:45.678Z"}`,
	"taskFailed":         `{"PK": "SESSION#abc-123-def", "SK": "EVENT#2024-11-04T10:35:45.678Z", "Status": "AGENT_BACKGROUND_TASK_FAILED", "Timestamp": "2024-11-04T10:35:45.678Z", "ErrorMessage": "ClientError: ThrottlingException - Rate exceeded"}`,
	"invocationFailed":   `{"PK": "SESSION#abc-123-def", "SK": "EVENT#2024-11-04T10:30:02.456Z", "Status": "AGENT_RUNTIME_INVOCATION_FAILED", "Timestamp": "2024-11-04T10:30:02.456Z", "ErrorMessage": "Failed to invoke AgentCore: Timeout"}`,
	"entrypointFailed":   `{"PK": "SESSION#abc-123-def", "SK": "EVENT#2024-11-04T10:30:03.789Z", "Status": "AGENT_ENTRYPOINT_FAILED", "Timestamp": "2024-11-04T10:30:03.789Z", "ErrorMessage": "ValueError: Invalid request format"}`,
}

// seedEvent decodes the seed item name, moved to session id when id is not "".
func seedEvent(t testing.TB, name, id string) domain.Event {
	t.Helper()
	raw, ok := seedItems[name]
	if !ok {
		t.Fatalf("no seed item %q", name)
	}
	if id != "" {
		raw = strings.Replace(raw, "SESSION#"+SeedSessionID, "SESSION#"+id, 1)
	}
	ev, err := domain.DecodeJournalItemJSON([]byte(raw))
	if err != nil {
		t.Fatalf("seed item %s: %v", name, err)
	}
	return ev
}

// seedEvents decodes several seed items into session id.
func seedEvents(t testing.TB, id string, names ...string) []domain.Event {
	t.Helper()
	out := make([]domain.Event, len(names))
	for i, n := range names {
		out[i] = seedEvent(t, n, id)
	}
	return out
}

// seedSuccess is the successful flow of seed 002, in order.
var seedSuccess = []string{"initiated", "invocationStarted", "invocationSucceded", "entrypointStarted", "taskStarted", "taskCompleted"}

// Agents are the agent names GenerateEvents uses.
var Agents = []string{"research-agent", "billing-agent", "support-agent", "triage-agent"}

// GenerateEvents returns the journal of n sessions ("s-0000000", "s-0000001", ...) that
// start around start, a few seconds apart, deterministic for a seed: every flow of seed 002 (success, the four
// failure scenarios, in progress), Step Functions status changes (RUNNING and a
// terminal status, redrives, late and repeated deliveries), an occasional unknown status,
// and sessions with no execution events. Events are grouped by session, in time order.
func GenerateEvents(seed uint64, n int, start time.Time) []domain.Event {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([]domain.Event, 0, n*9)
	for i := range n {
		out = appendSession(out, r, i, start.Add(time.Duration(i)*3*time.Second+time.Duration(r.IntN(3000))*time.Millisecond))
	}
	return out
}

func appendSession(out []domain.Event, r *rand.Rand, i int, t0 time.Time) []domain.Event {
	id := fmt.Sprintf("s-%07d", i)
	agent := Agents[r.IntN(len(Agents))]
	arn := fmt.Sprintf("arn:aws:states:us-east-1:123456789012:execution:%s-sm:%s", agent, id)
	smArn := fmt.Sprintf("arn:aws:states:us-east-1:123456789012:stateMachine:%s-sm", agent)
	at := t0
	step := func() time.Time {
		at = at.Add(time.Duration(200+r.IntN(3000)) * time.Millisecond)
		return at
	}
	agentEv := func(st domain.Status, ts time.Time, msg string) domain.Event {
		ts = ts.UTC().Truncate(time.Millisecond)
		return domain.Event{SessionID: id, SK: domain.EventKeyPrefix + domain.FormatTime(ts), Status: st, Timestamp: ts, ErrorMessage: msg}
	}
	execEv := func(es domain.ExecStatus, ts, startDate, stop time.Time, redrives int, errName, cause string) domain.Event {
		ts = ts.UTC().Truncate(time.Millisecond)
		in := true
		return domain.Event{
			SessionID: id,
			SK:        domain.ExecutionSortKey(ts, es, redrives, arn),
			Status:    es.JournalStatus(),
			Timestamp: ts,
			Exec: domain.Execution{
				ExecutionArn: arn, StateMachineArn: smArn, ExecutionName: id, AgentName: agent,
				StartDate: startDate.UTC().Truncate(time.Millisecond), StopDate: stop.UTC().Truncate(time.Millisecond),
				Error: errName, Cause: cause, RedriveCount: redrives,
				SourceEventID: fmt.Sprintf("%s-%s-%d", id, es, redrives), InputIncluded: &in,
			},
		}
	}

	withExec := r.IntN(10) != 0 // some agents run outside Step Functions
	start := at
	if withExec {
		out = append(out, execEv(domain.ExecRunning, start, start, time.Time{}, 0, "", ""))
	}
	out = append(out, agentEv(domain.StatusSessionInitiated, start, ""))
	out = append(out, agentEv(domain.StatusInvocationStarted, step(), ""))

	scenario := r.IntN(20)
	terminal := domain.ExecSucceeded
	errName, cause := "", ""
	switch {
	case scenario == 0: // scenario 1
		out = append(out, agentEv(domain.StatusInvocationFailed, step(), pick(r, "Failed to invoke AgentCore: Timeout", "AccessDeniedException: not authorized")))
		terminal, errName, cause = domain.ExecFailed, "States.TaskFailed", "invoker failed"
	case scenario == 1: // scenario 2
		out = append(out, agentEv(domain.StatusInvocationSucceeded, step(), ""))
		out = append(out, agentEv(domain.StatusEntrypointStarted, step(), ""))
		out = append(out, agentEv(domain.StatusEntrypointFailed, step(), pick(r, "ValueError: Invalid request format", "KeyError: 'prompt'")))
	case scenario <= 3: // scenario 3
		out = append(out, agentEv(domain.StatusInvocationSucceeded, step(), ""))
		out = append(out, agentEv(domain.StatusEntrypointStarted, step(), ""))
		out = append(out, agentEv(domain.StatusBackgroundTaskStarted, step(), ""))
		out = append(out, agentEv(domain.StatusBackgroundTaskFailed, step(), pick(r, "ClientError: ThrottlingException - Rate exceeded", "MemoryError: out of memory")))
	case scenario == 4: // scenario 4: no completion event
		out = append(out, agentEv(domain.StatusInvocationSucceeded, step(), ""))
		out = append(out, agentEv(domain.StatusEntrypointStarted, step(), ""))
		out = append(out, agentEv(domain.StatusBackgroundTaskStarted, step(), ""))
		terminal = []domain.ExecStatus{domain.ExecSucceeded, domain.ExecTimedOut, domain.ExecFailed}[r.IntN(3)]
		if terminal != domain.ExecSucceeded {
			errName, cause = "States.Timeout", "the background task did not report"
		}
	case scenario == 5: // still in progress
		out = append(out, agentEv(domain.StatusInvocationSucceeded, step(), ""))
		out = append(out, agentEv(domain.StatusEntrypointStarted, step(), ""))
		out = append(out, agentEv(domain.StatusBackgroundTaskStarted, step(), ""))
		terminal = ""
	default: // success
		out = append(out, agentEv(domain.StatusInvocationSucceeded, step(), ""))
		out = append(out, agentEv(domain.StatusEntrypointStarted, step(), ""))
		if r.IntN(15) == 0 {
			out = append(out, agentEv("AGENT_TOOL_CALLED", step(), "")) // a newer agent's event
		}
		out = append(out, agentEv(domain.StatusBackgroundTaskStarted, step(), ""))
		out = append(out, agentEv(domain.StatusBackgroundTaskCompleted, step(), ""))
	}
	if !withExec || terminal == "" {
		return out
	}
	stop := step()
	if r.IntN(12) == 0 && terminal != domain.ExecSucceeded {
		// Failed, then redriven and succeeded.
		out = append(out, execEv(terminal, stop, start, stop, 0, errName, cause))
		out = append(out, execEv(domain.ExecRunning, step(), start, time.Time{}, 1, "", ""))
		stop = step()
		return append(out, execEv(domain.ExecSucceeded, stop, start, stop, 1, "", ""))
	}
	return append(out, execEv(terminal, stop, start, stop, 0, errName, cause))
}

func pick(r *rand.Rand, s ...string) string { return s[r.IntN(len(s))] }

// ShuffleWithDuplicates returns events in a random order with about one in five
// repeated, as at-least-once feeds deliver them.
func ShuffleWithDuplicates(seed uint64, events []domain.Event) []domain.Event {
	r := rand.New(rand.NewPCG(seed, ^seed))
	out := make([]domain.Event, 0, len(events)+len(events)/5)
	out = append(out, events...)
	for range len(events) / 5 {
		out = append(out, events[r.IntN(len(events))])
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}
