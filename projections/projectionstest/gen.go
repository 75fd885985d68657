// Package projectionstest generates random but well-formed journal events for tests and
// benchmarks of the projections and of every store: sessions of every scenario of seed
// 002, with redrives, retries, unknown statuses and missing execution events.
package projectionstest

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/agentwatch/agentwatch/domain"
)

// Base is the time generated sessions start after.
var Base = time.Date(2024, 11, 4, 10, 30, 0, 0, time.UTC)

// Sessions generates n sessions' events, session by session in time order, from seed.
func Sessions(seed uint64, n int, agents int) []domain.Event {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var out []domain.Event
	for i := 0; i < n; i++ {
		out = appendSession(r, out, fmt.Sprintf("s-%d-%06d", seed%1000, i), fmt.Sprintf("agent-%d", r.IntN(max(agents, 1))))
	}
	return out
}

// Shuffled returns a copy of evs in random order with about dupRate of them repeated.
func Shuffled(r *rand.Rand, evs []domain.Event, dupRate float64) []domain.Event {
	out := make([]domain.Event, 0, len(evs)+int(float64(len(evs))*dupRate)+1)
	out = append(out, evs...)
	for i := range evs {
		if r.Float64() < dupRate {
			out = append(out, evs[i])
		}
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func appendSession(r *rand.Rand, out []domain.Event, id, agent string) []domain.Event {
	t := Base.Add(time.Duration(r.IntN(72*3600)) * time.Second).Add(time.Duration(r.IntN(1000)) * time.Millisecond)
	sm := "arn:aws:states:us-east-1:123456789012:stateMachine:" + agent
	arn := "arn:aws:states:us-east-1:123456789012:execution:" + agent + ":" + id
	start := t
	agentEv := func(st domain.Status, msg string) {
		t = t.Add(time.Duration(50+r.IntN(3000)) * time.Millisecond)
		out = append(out, domain.Event{SessionID: id, SK: domain.EventKeyPrefix + domain.FormatTime(t), Status: st,
			Timestamp: t, ErrorMessage: msg})
	}
	exec := func(st domain.ExecStatus, redrive int, at time.Time, errCode string) {
		e := domain.Event{SessionID: id, Status: st.JournalStatus(), Timestamp: at}
		e.SK = domain.ExecutionSortKey(at, st, redrive, arn)
		e.Exec = domain.Execution{ExecutionArn: arn, StateMachineArn: sm, ExecutionName: id, AgentName: agent,
			StartDate: start, RedriveCount: redrive, SourceEventID: fmt.Sprintf("%s-%s-%d", id, st, redrive)}
		if st.Terminal() {
			e.Exec.StopDate = at
			e.Exec.Error = errCode
		}
		out = append(out, e)
	}
	dropExec := r.IntN(10) == 0
	if !dropExec {
		exec(domain.ExecRunning, 0, start, "")
	}
	agentEv(domain.StatusSessionInitiated, "")
	errs := []string{"ClientError: ThrottlingException - Rate exceeded", "Failed to invoke AgentCore: Timeout",
		"ValueError: Invalid request format", "KeyError: 'x'"}
	final := domain.ExecSucceeded
	switch scenario := r.IntN(10); scenario {
	case 0: // never started
		final = domain.ExecTimedOut
	case 1: // invocation failure, maybe retried
		agentEv(domain.StatusInvocationStarted, "")
		agentEv(domain.StatusInvocationFailed, errs[r.IntN(len(errs))])
		final = domain.ExecFailed
		if r.IntN(2) == 0 {
			agentEv(domain.StatusInvocationStarted, "")
			agentEv(domain.StatusInvocationSucceeded, "")
			agentEv(domain.StatusEntrypointStarted, "")
			agentEv(domain.StatusBackgroundTaskStarted, "")
			agentEv(domain.StatusBackgroundTaskCompleted, "")
			final = domain.ExecSucceeded
		}
	case 2: // entrypoint failure
		agentEv(domain.StatusInvocationStarted, "")
		agentEv(domain.StatusInvocationSucceeded, "")
		agentEv(domain.StatusEntrypointStarted, "")
		agentEv(domain.StatusEntrypointFailed, errs[r.IntN(len(errs))])
		final = domain.ExecFailed
	case 3, 4: // background task failure / missing completion
		agentEv(domain.StatusInvocationStarted, "")
		agentEv(domain.StatusInvocationSucceeded, "")
		agentEv(domain.StatusEntrypointStarted, "")
		agentEv(domain.StatusBackgroundTaskStarted, "")
		if scenario == 3 {
			agentEv(domain.StatusBackgroundTaskFailed, errs[r.IntN(len(errs))])
			final = domain.ExecFailed
		}
	case 5: // unknown status from a newer agent, then success
		agentEv(domain.StatusInvocationStarted, "")
		agentEv("AGENT_TOOL_CALLED", "")
		agentEv(domain.StatusInvocationSucceeded, "")
		agentEv(domain.StatusEntrypointStarted, "")
		agentEv(domain.StatusBackgroundTaskStarted, "")
		agentEv(domain.StatusBackgroundTaskCompleted, "")
	default: // happy path
		agentEv(domain.StatusInvocationStarted, "")
		agentEv(domain.StatusInvocationSucceeded, "")
		agentEv(domain.StatusEntrypointStarted, "")
		agentEv(domain.StatusBackgroundTaskStarted, "")
		if r.IntN(8) != 0 { // else still running
			agentEv(domain.StatusBackgroundTaskCompleted, "")
		} else {
			final = domain.ExecRunning
		}
	}
	if dropExec || final == domain.ExecRunning {
		return out
	}
	t = t.Add(time.Duration(100+r.IntN(2000)) * time.Millisecond)
	errCode := ""
	if final != domain.ExecSucceeded {
		errCode = "States.TaskFailed"
	}
	exec(final, 0, t, errCode)
	if final == domain.ExecFailed && r.IntN(3) == 0 { // redrive
		t = t.Add(time.Duration(1+r.IntN(60)) * time.Second)
		exec(domain.ExecPendingRedrive, 1, t, "")
		t = t.Add(time.Second)
		exec(domain.ExecRunning, 1, t, "")
		t = t.Add(time.Duration(1+r.IntN(60)) * time.Second)
		exec(domain.ExecSucceeded, 1, t, "")
	}
	return out
}

// RequireAllSet fails when a field of v (a struct, recursively through structs, arrays
// and slices of structs) is zero: codec round-trip tests must exercise every field, so
// that a field added to a type and forgotten by its codec fails them.
func RequireAllSet(t testing.TB, v reflect.Value, path string) {
	t.Helper()
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			if v.IsZero() {
				t.Fatalf("%s is zero", path)
			}
			return
		}
		for i := range v.NumField() {
			RequireAllSet(t, v.Field(i), path+"."+v.Type().Field(i).Name)
		}
	case reflect.Slice:
		if v.Len() == 0 {
			t.Fatalf("%s is empty", path)
		}
		for i := range v.Len() {
			RequireAllSet(t, v.Index(i), path)
		}
	case reflect.Array:
		for i := range v.Len() {
			RequireAllSet(t, v.Index(i), path)
		}
	default:
		if v.IsZero() {
			t.Fatalf("%s is zero", path)
		}
	}
}
