package simulate

import (
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/agentwatch/agentwatch/domain"
)

// sim simulates sessions one at a time. Every session draws from its own random stream,
// seeded from the configuration's seed and the session's number, so a session does not
// depend on the ones before it.
type sim struct {
	seed            uint64
	timing          Timing
	pace            pace
	region, account string
	agents          []agentProfile
	popularity      []float64
	dupRate         float64
	reorderRate     float64
	// malformedP is the probability of a malformed copy per valid object, so that
	// malformed objects make up Config.MalformedRate of all objects, duplicates
	// included.
	malformedP float64
	// windowEndMs, in Generate, is the end of the window (unix ms): long-running tasks
	// still running then never complete. 0 in Live, where they all complete.
	windowEndMs int64
	// collect, in Generate, gathers objects in delivery order, their bodies carved out
	// of shared slabs. Without it (Live), each object goes to sink with a body of its
	// own, as consumers may keep a body for long.
	collect *collector
	sink    func(Object)

	pcg rand.PCG
	rng *rand.Rand

	// Per-session scratch.
	journal []journalEvent
	changes []change
	state   sessionState
	scratch []byte
}

// sessionState is what the encoders need to know about the session being simulated.
type sessionState struct {
	id       string
	agent    *agentProfile
	execName string
	execArn  string
	// input is the execution input, quoted as a JSON string.
	input []byte
	// index is the session's number in the collector.
	index uint32
}

// simConfig is what Generate and Live have in common.
type simConfig struct {
	seed                                uint64
	agents                              int
	agentNames                          []string
	weights                             map[Scenario]float64
	timing                              Timing
	region, account                     string
	dupRate, reorderRate, malformedRate float64
	windowEndMs                         int64
}

// newSim returns a simulator that hands its objects to collect, or to sink without one.
func newSim(c simConfig, collect *collector, sink func(Object)) *sim {
	g := &sim{
		seed:        c.seed,
		timing:      c.timing,
		region:      c.region,
		account:     c.account,
		dupRate:     c.dupRate,
		reorderRate: c.reorderRate,
		malformedP:  c.malformedRate * (1 + c.dupRate) / (1 - c.malformedRate),
		windowEndMs: c.windowEndMs,
		collect:     collect,
		sink:        sink,
	}
	g.pace = newPace(&c.timing)
	g.agents, g.popularity = newAgents(c.seed, c.agents, c.agentNames, c.weights, &c.timing, c.region, c.account)
	g.rng = rand.New(&g.pcg)
	return g
}

// uuidLen is the length of a UUID. Session ids, execution names and event ids are
// UUIDs, as EventBridge event ids (which become session ids, seed 002) and default
// execution names are.
const uuidLen = 36

// session simulates session number i, whose execution starts at startNs (unix ns),
// hands its objects to the collector or the sink and returns its truth.
func (g *sim) session(i uint64, startNs int64) SessionTruth {
	g.pcg.Seed(mix(g.seed, 2*i+1), mix(g.seed, 2*i+2))
	rng := g.rng
	ag := &g.agents[pickAgent(rng, g.popularity)]
	sc := ag.pickScenario(rng)

	var ids [2 * uuidLen]byte
	b := appendUUID(ids[:0], rng.Uint64(), rng.Uint64())
	b = appendUUID(b, rng.Uint64(), rng.Uint64())
	names := string(b) // one allocation for both
	st := &g.state
	*st = sessionState{id: names[:uuidLen], agent: ag, execName: names[uuidLen:]}
	st.execArn = ag.execArnPrefix + st.execName
	if g.collect != nil {
		st.index = g.collect.addSession(st.id)
	}
	st.input = g.appendInput(st.input[:0], st, rng)

	startMs := startNs / int64(time.Millisecond)
	truth := SessionTruth{
		SessionID:     st.id,
		Scenario:      sc,
		Agent:         ag.name,
		ExecutionArn:  st.execArn,
		ExecutionName: st.execName,
		StartedAt:     time.UnixMilli(startMs).UTC(),
		Alert:         AlertNone,
	}
	g.journal, g.changes = g.journal[:0], g.changes[:0]
	p := planner{g: g, ag: ag, rng: rng, startMs: startMs, truth: &truth}
	p.plan(sc)
	g.emit(&truth)
	return truth
}

// appendInput appends the execution input, quoted as a JSON string: what the trigger
// passed to StartExecution, Python's json.dumps style. Ids and agent names need no
// escaping (see validAgentName), so the input is written quoted.
func (g *sim) appendInput(dst []byte, st *sessionState, rng *rand.Rand) []byte {
	dst = append(dst, `"{\"session_id\": \"`...)
	dst = append(dst, st.id...)
	dst = append(dst, `\", \"agentName\": \"`...)
	dst = append(dst, st.agent.name...)
	dst = append(dst, `\", \"trigger\": \"execute-agent\", \"priority\": \"`...)
	if rng.IntN(5) == 0 {
		dst = append(dst, "high"...)
	} else {
		dst = append(dst, "normal"...)
	}
	return append(dst, `\"}"`...)
}

// planner lays out the events of one session.
type planner struct {
	g       *sim
	ag      *agentProfile
	rng     *rand.Rand
	startMs int64
	// t is the time of the agent's latest event (unix ms).
	t int64
	// redriveCount and redriveMs describe the execution's current attempt.
	redriveCount int
	redriveMs    int64
	truth        *SessionTruth
}

// ms converts a duration in nanoseconds to whole milliseconds, at least 1.
func ms(ns int64) int64 { return max(1, ns/int64(time.Millisecond)) }

// gap is a pause between two agent events.
func (p *planner) gap() int64 {
	return ms(int64(float64(p.g.pace.stageGap.draw(p.rng)) * p.ag.gapScale))
}

// task is the duration of a healthy background task (ms).
func (p *planner) task() int64 {
	t := &p.g.timing
	d := p.ag.taskMedianNs * math.Exp(t.TaskSigma*p.rng.NormFloat64())
	d = min(max(d, float64(t.StageGap.Min)), float64(t.TaskMax))
	return ms(int64(d))
}

// write records an agent event at at (ms), never in the same millisecond as the one
// before (agents' sort keys are EVENT#<ms> and would collide).
func (p *planner) write(status domain.Status, at int64, msg string) {
	at = max(at, p.t+1)
	p.g.journal = append(p.g.journal, journalEvent{status: status, atMs: at, msg: msg})
	p.t = at
	if msg != "" {
		p.truth.ErrorMessage = msg
	}
}

// step records the next agent event after a stage gap.
func (p *planner) step(status domain.Status) { p.write(status, p.t+p.gap(), "") }

// exec records a status change of the current attempt at at (ms).
func (p *planner) exec(status domain.ExecStatus, at int64, errCode, cause, output string) {
	c := change{status: status, atMs: at, startMs: p.startMs, redriveCount: p.redriveCount,
		redriveMs: p.redriveMs, errCode: errCode, cause: cause, output: output}
	if status != domain.ExecRunning {
		c.stopMs = at
		p.truth.ExecEndAt = time.UnixMilli(at).UTC()
	}
	p.g.changes = append(p.g.changes, c)
}

// pollDelay is how long after the agent's terminal event the state machine notices.
func (p *planner) pollDelay() int64 {
	return ms(200*int64(time.Millisecond) + p.rng.Int64N(int64(p.g.timing.PollInterval)))
}

// stall ends the agent's journal in the stage opened by its latest event.
func (p *planner) stall(stage domain.Stage) {
	p.truth.Stage, p.truth.StalledAt = stage, time.UnixMilli(p.t).UTC()
}

// fault marks the session faulty; alert is what a detector should raise.
func (p *planner) fault(alert AlertKind, observableMs int64) {
	p.truth.Faulty, p.truth.Alert = true, alert
	p.truth.ObservableAt = time.UnixMilli(observableMs).UTC()
}

// Outputs of succeeded executions: what the state machine's last state returns.
const (
	outputCompleted = "AGENT_BACKGROUND_TASK_COMPLETED"
	outputFailed    = "AGENT_BACKGROUND_TASK_FAILED"
	outputPollLimit = "POLL_LIMIT_REACHED"
)

// plan lays out the session's journal events and status changes for scenario sc.
func (p *planner) plan(sc Scenario) {
	g, rng, pc := p.g, p.rng, &p.g.pace
	p.exec(domain.ExecRunning, p.startMs, "", "", "")
	p.t = p.startMs
	p.write(domain.StatusSessionInitiated, p.startMs+ms(pc.initiation.draw(rng)), "")
	if sc == ScenarioNeverStarted {
		p.stall(domain.StageInitiated)
		p.fault(AlertNeverStarted, p.t)
		if rng.IntN(10) < 7 {
			p.timeOut(p.t + ms(pc.executionTimeout.draw(rng)))
		}
		return
	}

	p.step(domain.StatusInvocationStarted)
	switch sc {
	case ScenarioInvocationFailure:
		f := pickFailure(rng, p.ag.invocation)
		p.write(domain.StatusInvocationFailed, p.t+p.gap(), f.msg)
		p.fault(AlertNone, p.t)
		p.exec(domain.ExecFailed, p.t+ms(p.rng.Int64N(int64(300*time.Millisecond))), f.errorType, p.lambdaCause(f), "")
		return
	case ScenarioRedrive:
		f := pickFailure(rng, p.ag.retry)
		p.write(domain.StatusInvocationFailed, p.t+p.gap(), f.msg)
		failed := p.t + ms(p.rng.Int64N(int64(300*time.Millisecond)))
		p.exec(domain.ExecFailed, failed, f.errorType, p.lambdaCause(f), "")
		p.redriveCount, p.redriveMs = 1, failed+ms(pc.redriveAfter.draw(rng))
		p.exec(domain.ExecRunning, p.redriveMs, "", "", "")
		p.truth.ExecEndAt = time.Time{}
		p.write(domain.StatusInvocationStarted, p.redriveMs+ms(pc.initiation.draw(rng)), "")
	case ScenarioInvocationRetry:
		f := pickFailure(rng, p.ag.retry)
		p.write(domain.StatusInvocationFailed, p.t+p.gap(), f.msg)
		p.write(domain.StatusInvocationStarted, p.t+ms(pc.retryBackoff.draw(rng)), "")
	case ScenarioStalled:
		if rng.IntN(3) == 0 {
			p.stall(domain.StageInvocation)
			p.fault(AlertStuck, p.t)
			return
		}
	}

	p.step(domain.StatusInvocationSucceeded)
	p.step(domain.StatusEntrypointStarted)
	switch sc {
	case ScenarioEntrypointFailure:
		f := pickFailure(rng, p.ag.entrypoint)
		p.write(domain.StatusEntrypointFailed, p.t+p.gap(), f.msg)
		p.fault(AlertNone, p.t)
		p.exec(domain.ExecFailed, p.t+p.pollDelay(), "AgentEntrypointFailed", f.msg, "")
		return
	case ScenarioStalled:
		if rng.IntN(2) == 0 {
			p.stall(domain.StageEntrypoint)
			p.fault(AlertStuck, p.t)
			return
		}
	}

	p.step(domain.StatusBackgroundTaskStarted)
	switch sc {
	case ScenarioBackgroundTaskFailure:
		f := pickFailure(rng, p.ag.background)
		// Failures strike somewhere during what would have been the task.
		p.write(domain.StatusBackgroundTaskFailed, p.t+max(1, int64(float64(p.task())*(0.05+0.95*rng.Float64()))), f.msg)
		p.fault(AlertNone, p.t)
		p.exec(domain.ExecFailed, p.t+p.pollDelay(), "AgentBackgroundTaskFailed", f.msg, "")
	case ScenarioJournalMismatch:
		if rng.IntN(3) > 0 {
			// The state machine treats any terminal event as done.
			f := pickFailure(rng, p.ag.background)
			p.write(domain.StatusBackgroundTaskFailed, p.t+p.task(), f.msg)
			p.exec(domain.ExecSucceeded, p.t+p.pollDelay(), "", "", outputFailed)
		} else {
			// The agent completed, but the poller Lambda crashed.
			p.write(domain.StatusBackgroundTaskCompleted, p.t+p.task(), "")
			p.exec(domain.ExecFailed, p.t+p.pollDelay(), "Lambda.Unknown",
				"The cause could not be determined because Lambda did not return an error type.", "")
		}
		end := p.truth.ExecEndAt.UnixMilli()
		p.fault(AlertJournalMismatch, max(end, p.t))
	case ScenarioMissingCompletion:
		p.stall(domain.StageBackgroundTask)
		end := p.t + ms(pc.executionTimeout.draw(rng))
		if rng.IntN(10) < 7 {
			p.timeOut(end)
		} else {
			p.exec(domain.ExecSucceeded, end, "", "", outputPollLimit)
		}
		p.fault(AlertMissingCompletion, end)
	case ScenarioStalled:
		p.stall(domain.StageBackgroundTask)
		p.fault(AlertStuck, p.t)
	case ScenarioLongRunning:
		done := p.t + ms(pc.longRunning.draw(rng))
		p.truth.CompletesAt = time.UnixMilli(done).UTC()
		if g.windowEndMs != 0 && done > g.windowEndMs {
			p.stall(domain.StageBackgroundTask) // still running at the end of the window
			break
		}
		p.write(domain.StatusBackgroundTaskCompleted, done, "")
		p.exec(domain.ExecSucceeded, p.t+p.pollDelay(), "", "", outputCompleted)
	case ScenarioLateCompletion:
		p.stall(domain.StageBackgroundTask)
		p.fault(AlertStuck, p.t)
		p.write(domain.StatusBackgroundTaskCompleted, p.t+ms(pc.lateCompletion.draw(rng)), "")
		p.truth.RecoveredAt = time.UnixMilli(p.t).UTC()
		p.exec(domain.ExecSucceeded, p.t+p.pollDelay(), "", "", outputCompleted)
	case ScenarioAborted:
		p.abort(domain.StageBackgroundTask)
	default: // happy, redrive, invocation retry, dropped status changes
		p.write(domain.StatusBackgroundTaskCompleted, p.t+p.task(), "")
		p.exec(domain.ExecSucceeded, p.t+p.pollDelay(), "", "", outputCompleted)
		if sc == ScenarioDroppedStatusChanges {
			switch rng.IntN(3) {
			case 0:
				g.changes[0].dropped = true
			case 1:
				g.changes[len(g.changes)-1].dropped = true
			default:
				g.changes[0].dropped = true
				g.changes[len(g.changes)-1].dropped = true
			}
		}
	}
}

// timeOut ends the execution with TIMED_OUT at end (ms).
func (p *planner) timeOut(end int64) {
	secs := (end - p.startMs) / 1000
	p.exec(domain.ExecTimedOut, end, "States.Timeout",
		"The execution timed out after "+strconv.FormatInt(secs, 10)+" seconds waiting for the agent's completion event.", "")
}

// abort has an operator stop the execution AbortAfter after the agent's latest event.
func (p *planner) abort(stage domain.Stage) {
	p.stall(stage)
	p.exec(domain.ExecAborted, p.t+ms(p.g.pace.abortAfter.draw(p.rng)), "OperatorAbort",
		"Stopped by an operator from the Step Functions console", "")
}

// lambdaCause is the cause Step Functions reports when the invoker Lambda raised: the
// Lambda's error payload, a JSON document.
func (p *planner) lambdaCause(f failure) string {
	b := p.g.scratch[:0]
	b = append(b, `{"errorMessage": `...)
	b = appendQuoted(b, f.msg)
	b = append(b, `, "errorType": "`...)
	b = append(b, f.errorType...)
	b = append(b, `", "requestId": "`...)
	b = appendUUID(b, p.rng.Uint64(), p.rng.Uint64())
	b = append(b, `", "stackTrace": [`...)
	b = appendQuoted(b, "  File \"/var/task/invoker.py\", line 87, in handler\n    response = agentcore.invoke_agent_runtime(\n")
	b = append(b, ", "...)
	b = appendQuoted(b, "  File \"/var/lang/lib/python3.12/site-packages/botocore/client.py\", line 569, in _api_call\n    return self._make_api_call(operation_name, kwargs)\n")
	b = append(b, "]}"...)
	p.g.scratch = b
	return string(b)
}

// emit encodes the planned session and delivers its objects; it completes truth with
// what was planned.
func (g *sim) emit(truth *SessionTruth) {
	st := &g.state
	truth.Statuses = make([]domain.Status, len(g.journal))
	for i := range g.journal {
		ev := &g.journal[i]
		truth.Statuses[i] = ev.status
		g.deliver(KindJournalItem, ev.atMs, func(dst []byte, mal malformation) []byte {
			return appendJournalItem(dst, st.id, ev, mal)
		})
	}
	truth.ExecStatuses = make([]domain.ExecStatus, len(g.changes))
	for i := range g.changes {
		c := &g.changes[i]
		truth.ExecStatuses[i] = c.status
		truth.FinalExecStatus = c.status
		if c.dropped {
			truth.Dropped = append(truth.Dropped, c.status)
			continue
		}
		idHi, idLo := g.rng.Uint64(), g.rng.Uint64()
		g.deliver(KindStatusChange, c.atMs, func(dst []byte, mal malformation) []byte {
			return appendEnvelope(dst, st, c, idHi, idLo, g.region, g.account, mal)
		})
	}
}

// deliver encodes one object, delivers it with the configured faults and, now and
// then, a malformed copy of it.
func (g *sim) deliver(kind Kind, eventMs int64, encode func(dst []byte, mal malformation) []byte) {
	rng, pc := g.rng, &g.pace
	body, ref := g.body(encode, wellFormed)
	at := eventMs*int64(time.Millisecond) + pc.deliveryLatency.draw(rng)
	delayed := g.reorderRate > 0 && rng.Float64() < g.reorderRate
	if delayed {
		at += pc.reorderDelay.draw(rng)
	}
	g.put(kind, at, body, ref, false, delayed)
	if g.dupRate > 0 && rng.Float64() < g.dupRate {
		g.put(kind, at+pc.redeliveryDelay.draw(rng), body, ref, true, false)
	}
	if g.malformedP > 0 && rng.Float64() < g.malformedP {
		mal := malTruncated
		if kind == KindStatusChange {
			if rng.IntN(2) == 0 {
				mal = malStartDateString
			}
		} else {
			mal = [...]malformation{malTruncated, malMissingPK, malBadTimestamp, malStatusNumber}[rng.IntN(4)]
		}
		var bad []byte
		var badRef bodyRef
		if mal == malTruncated {
			bad, badRef = g.body(func(dst []byte, _ malformation) []byte {
				return append(dst, body[:len(body)*2/3]...)
			}, mal)
		} else {
			bad, badRef = g.body(encode, mal)
		}
		g.put(KindMalformed, at+pc.deliveryLatency.draw(rng), bad, badRef, false, false)
	}
}

// put hands one delivery to the collector or the sink.
func (g *sim) put(kind Kind, at int64, body []byte, ref bodyRef, redelivery, delayed bool) {
	if c := g.collect; c != nil {
		var flags uint8
		if redelivery {
			flags |= flagRedelivery
		}
		if delayed {
			flags |= flagDelayed
		}
		c.push(record{at: at, body: ref, session: g.state.index, kind: kind, flags: flags})
		return
	}
	g.sink(Object{Body: body, At: time.Unix(0, at).UTC(), SessionID: g.state.id, Kind: kind,
		Redelivery: redelivery, Delayed: delayed})
}

// body encodes one object body, in the collector's slabs when there is a collector.
func (g *sim) body(encode func(dst []byte, mal malformation) []byte, mal malformation) ([]byte, bodyRef) {
	if g.collect == nil {
		b := encode(g.scratch[:0], mal)
		g.scratch = b
		return append([]byte(nil), b...), bodyRef{}
	}
	return g.collect.body(encode, mal)
}
