package simulate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentwatch/agentwatch/domain"
)

// mustGenerate runs Generate and fails the test on error.
func mustGenerate(t testing.TB, cfg Config) ([]Object, map[string]SessionTruth) {
	t.Helper()
	objs, truth, err := Generate(cfg)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return objs, truth
}

func ndjson(t testing.TB, objs []Object) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteNDJSON(&buf, objs); err != nil {
		t.Fatalf("WriteNDJSON: %v", err)
	}
	return buf.Bytes()
}

// faulty is a configuration with every delivery fault.
func faulty(seed uint64, events int) Config {
	return Config{Seed: seed, Events: events, DuplicateRate: 0.05, ReorderRate: 0.05, MalformedRate: 0.02}
}

func TestGenerateIsDeterministic(t *testing.T) {
	objs1, truth1 := mustGenerate(t, faulty(42, 20_000))
	objs2, truth2 := mustGenerate(t, faulty(42, 20_000))
	out1, out2 := ndjson(t, objs1), ndjson(t, objs2)
	if !bytes.Equal(out1, out2) {
		t.Fatal("same seed, different output")
	}
	if !reflect.DeepEqual(objs1, objs2) {
		t.Fatal("same seed, different objects (times, kinds or flags)")
	}
	if !reflect.DeepEqual(truth1, truth2) {
		t.Fatal("same seed, different truth")
	}
	objs3, _ := mustGenerate(t, faulty(43, 20_000))
	if bytes.Equal(out1, ndjson(t, objs3)) {
		t.Fatal("different seeds, same output")
	}
}

func TestGenerateIsTheSameOnAnyNumberOfCPUs(t *testing.T) {
	for _, cfg := range []Config{faulty(42, 30_000), {Seed: 1, Sessions: 3000, ReorderRate: 0.1}, {Seed: 2, Events: 5}} {
		objs1, truth1, err := generate(cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, workers := range []int{2, 3, 8} {
			objs, truth, err := generate(cfg, workers)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(objs, objs1) || !reflect.DeepEqual(truth, truth1) {
				t.Fatalf("%d workers: %d objects, %d sessions; 1 worker: %d objects, %d sessions", workers, len(objs), len(truth), len(objs1), len(truth1))
			}
		}
	}
}

func TestGenerateSortsByDeliveryTime(t *testing.T) {
	objs, _ := mustGenerate(t, faulty(7, 20_000))
	if !slices.IsSortedFunc(objs, func(a, b Object) int { return a.At.Compare(b.At) }) {
		t.Fatal("objects are not in delivery order")
	}
}

// parsed is the content of a generation, decoded through domain.
type parsed struct {
	// journal holds each session's journal items by time, status changes by rank.
	journal  map[string][]domain.Event
	changes  map[string][]domain.StatusChange
	sessions map[string]*domain.Session
}

// parse decodes every object through domain.DecodeInput, requiring valid objects to
// decode and malformed ones to be rejected, and folds them into sessions.
func parse(t *testing.T, objs []Object) parsed {
	t.Helper()
	p := parsed{journal: map[string][]domain.Event{}, changes: map[string][]domain.StatusChange{}, sessions: map[string]*domain.Session{}}
	for i, o := range objs {
		if bytes.ContainsAny(o.Body, "\n\r") {
			t.Fatalf("object %d holds a line break: %s", i, o.Body)
		}
		in, err := domain.DecodeInput(o.Body)
		if o.Kind == KindMalformed {
			if err == nil {
				t.Fatalf("malformed object %d decodes: %s", i, o.Body)
			}
			continue
		}
		if !json.Valid(o.Body) {
			t.Fatalf("object %d is not valid JSON: %s", i, o.Body)
		}
		if err != nil {
			t.Fatalf("object %d (%s): %v\n%s", i, o.Kind, err, o.Body)
		}
		var ev domain.Event
		switch o.Kind {
		case KindStatusChange:
			if in.StatusChange == nil {
				t.Fatalf("object %d: a status change decodes as %s", i, in.Kind)
			}
			ev, err = domain.MapStatusChange(context.Background(), *in.StatusChange, nil, domain.MappingConfig{})
			if err != nil {
				t.Fatalf("object %d: map: %v", i, err)
			}
			if !o.Redelivery {
				p.changes[ev.SessionID] = append(p.changes[ev.SessionID], *in.StatusChange)
			}
		case KindJournalItem:
			if in.Event == nil || in.Kind != domain.InputJournalItem {
				t.Fatalf("object %d: a journal item decodes as %s", i, in.Kind)
			}
			ev = *in.Event
			if !o.Redelivery {
				p.journal[ev.SessionID] = append(p.journal[ev.SessionID], ev)
			}
		default:
			t.Fatalf("object %d: kind %v", i, o.Kind)
		}
		if ev.SessionID != o.SessionID {
			t.Fatalf("object %d: session %q, object says %q", i, ev.SessionID, o.SessionID)
		}
		s := p.sessions[ev.SessionID]
		if s == nil {
			s = &domain.Session{}
			p.sessions[ev.SessionID] = s
		}
		s.Apply(&ev)
	}
	for _, evs := range p.journal {
		slices.SortStableFunc(evs, func(a, b domain.Event) int { return a.Timestamp.Compare(b.Timestamp) })
	}
	for _, scs := range p.changes {
		slices.SortStableFunc(scs, func(a, b domain.StatusChange) int {
			return int(domain.Rank(a.Status, a.RedriveCount) - domain.Rank(b.Status, b.RedriveCount))
		})
	}
	return p
}

// Shorthands for the expected sequences.
const (
	sInit  = domain.StatusSessionInitiated
	sInvS  = domain.StatusInvocationStarted
	sInvOK = domain.StatusInvocationSucceeded
	sInvF  = domain.StatusInvocationFailed
	sEpS   = domain.StatusEntrypointStarted
	sEpF   = domain.StatusEntrypointFailed
	sBtS   = domain.StatusBackgroundTaskStarted
	sBtC   = domain.StatusBackgroundTaskCompleted
	sBtF   = domain.StatusBackgroundTaskFailed
)

func seq(s ...domain.Status) []domain.Status { return s }

func execs(s ...domain.ExecStatus) []domain.ExecStatus { return s }

var happy = seq(sInit, sInvS, sInvOK, sEpS, sBtS, sBtC)

// scenarioCase is what a scenario must produce: one of journals, with one of the
// matching executions (by index, or executions[0] for all), and the diagnosis.
type scenarioCase struct {
	journals   [][]domain.Status
	executions [][]domain.ExecStatus
	outcomes   []domain.Outcome
	alert      AlertKind
	faulty     bool
	mismatch   bool
}

var scenarioCases = map[Scenario]scenarioCase{
	ScenarioHappy: {
		journals:   [][]domain.Status{happy},
		executions: [][]domain.ExecStatus{execs(domain.ExecRunning, domain.ExecSucceeded)},
		outcomes:   []domain.Outcome{domain.OutcomeCompleted}, alert: AlertNone,
	},
	ScenarioInvocationFailure: {
		journals:   [][]domain.Status{seq(sInit, sInvS, sInvF)},
		executions: [][]domain.ExecStatus{execs(domain.ExecRunning, domain.ExecFailed)},
		outcomes:   []domain.Outcome{domain.OutcomeInvocationFailed}, alert: AlertNone, faulty: true,
	},
	ScenarioEntrypointFailure: {
		journals:   [][]domain.Status{seq(sInit, sInvS, sInvOK, sEpS, sEpF)},
		executions: [][]domain.ExecStatus{execs(domain.ExecRunning, domain.ExecFailed)},
		outcomes:   []domain.Outcome{domain.OutcomeEntrypointFailed}, alert: AlertNone, faulty: true,
	},
	ScenarioBackgroundTaskFailure: {
		journals:   [][]domain.Status{seq(sInit, sInvS, sInvOK, sEpS, sBtS, sBtF)},
		executions: [][]domain.ExecStatus{execs(domain.ExecRunning, domain.ExecFailed)},
		outcomes:   []domain.Outcome{domain.OutcomeBackgroundTaskFailed}, alert: AlertNone, faulty: true,
	},
	ScenarioMissingCompletion: {
		journals: [][]domain.Status{seq(sInit, sInvS, sInvOK, sEpS, sBtS)},
		executions: [][]domain.ExecStatus{
			execs(domain.ExecRunning, domain.ExecTimedOut),
			execs(domain.ExecRunning, domain.ExecSucceeded),
		},
		outcomes: []domain.Outcome{domain.OutcomeMissingCompletion}, alert: AlertMissingCompletion, faulty: true,
	},
	ScenarioNeverStarted: {
		journals:   [][]domain.Status{seq(sInit)},
		executions: [][]domain.ExecStatus{execs(domain.ExecRunning, domain.ExecTimedOut), execs(domain.ExecRunning)},
		outcomes:   []domain.Outcome{domain.OutcomeNeverStarted, domain.OutcomeInProgress}, alert: AlertNeverStarted, faulty: true,
	},
	ScenarioStalled: {
		journals: [][]domain.Status{
			seq(sInit, sInvS), seq(sInit, sInvS, sInvOK, sEpS), seq(sInit, sInvS, sInvOK, sEpS, sBtS),
		},
		executions: [][]domain.ExecStatus{execs(domain.ExecRunning)},
		outcomes:   []domain.Outcome{domain.OutcomeInProgress}, alert: AlertStuck, faulty: true,
	},
	ScenarioLongRunning: {
		journals:   [][]domain.Status{seq(sInit, sInvS, sInvOK, sEpS, sBtS), happy},
		executions: [][]domain.ExecStatus{execs(domain.ExecRunning), execs(domain.ExecRunning, domain.ExecSucceeded)},
		outcomes:   []domain.Outcome{domain.OutcomeInProgress, domain.OutcomeCompleted}, alert: AlertNone,
	},
	ScenarioLateCompletion: {
		journals:   [][]domain.Status{happy},
		executions: [][]domain.ExecStatus{execs(domain.ExecRunning, domain.ExecSucceeded)},
		outcomes:   []domain.Outcome{domain.OutcomeCompleted}, alert: AlertStuck, faulty: true,
	},
	ScenarioAborted: {
		journals:   [][]domain.Status{seq(sInit, sInvS, sInvOK, sEpS, sBtS)},
		executions: [][]domain.ExecStatus{execs(domain.ExecRunning, domain.ExecAborted)},
		outcomes:   []domain.Outcome{domain.OutcomeAborted}, alert: AlertNone,
	},
	ScenarioRedrive: {
		journals:   [][]domain.Status{seq(sInit, sInvS, sInvF, sInvS, sInvOK, sEpS, sBtS, sBtC)},
		executions: [][]domain.ExecStatus{execs(domain.ExecRunning, domain.ExecFailed, domain.ExecRunning, domain.ExecSucceeded)},
		outcomes:   []domain.Outcome{domain.OutcomeCompleted}, alert: AlertNone,
	},
	ScenarioJournalMismatch: {
		journals: [][]domain.Status{seq(sInit, sInvS, sInvOK, sEpS, sBtS, sBtF), happy},
		executions: [][]domain.ExecStatus{
			execs(domain.ExecRunning, domain.ExecSucceeded),
			execs(domain.ExecRunning, domain.ExecFailed),
		},
		outcomes: []domain.Outcome{domain.OutcomeBackgroundTaskFailed, domain.OutcomeCompleted},
		alert:    AlertJournalMismatch, faulty: true, mismatch: true,
	},
	ScenarioDroppedStatusChanges: {
		journals: [][]domain.Status{happy},
		// What is delivered: one of the two, or nothing.
		executions: [][]domain.ExecStatus{execs(domain.ExecRunning), execs(domain.ExecSucceeded), execs()},
		outcomes:   []domain.Outcome{domain.OutcomeCompleted}, alert: AlertNone,
	},
	ScenarioInvocationRetry: {
		journals:   [][]domain.Status{seq(sInit, sInvS, sInvF, sInvS, sInvOK, sEpS, sBtS, sBtC)},
		executions: [][]domain.ExecStatus{execs(domain.ExecRunning, domain.ExecSucceeded)},
		outcomes:   []domain.Outcome{domain.OutcomeCompleted}, alert: AlertNone,
	},
}

func TestEveryScenarioProducesItsStory(t *testing.T) {
	if len(scenarioCases) != numScenarios {
		t.Fatalf("%d scenario cases for %d scenarios", len(scenarioCases), numScenarios)
	}
	for _, sc := range Scenarios {
		t.Run(string(sc), func(t *testing.T) {
			want := scenarioCases[sc]
			cfg := Config{Seed: 3, Sessions: 200, Weights: map[Scenario]float64{sc: 1}}
			objs, truth := mustGenerate(t, cfg)
			if len(truth) != cfg.Sessions {
				t.Fatalf("%d sessions, want %d", len(truth), cfg.Sessions)
			}
			p := parse(t, objs)
			seenJournals := map[int]bool{}
			for id, tr := range truth {
				if tr.Scenario != sc {
					t.Fatalf("%s: scenario %s", id, tr.Scenario)
				}
				var got []domain.Status
				for _, ev := range p.journal[id] {
					got = append(got, ev.Status)
				}
				if !slices.Equal(got, tr.Statuses) {
					t.Fatalf("%s: journal %v, truth says %v", id, got, tr.Statuses)
				}
				j := slices.IndexFunc(want.journals, func(w []domain.Status) bool { return slices.Equal(w, got) })
				if j < 0 {
					t.Fatalf("%s: journal %v, want one of %v", id, got, want.journals)
				}
				seenJournals[j] = true
				var delivered []domain.ExecStatus
				for _, c := range p.changes[id] {
					delivered = append(delivered, c.Status)
				}
				if !slices.ContainsFunc(want.executions, func(w []domain.ExecStatus) bool { return slices.Equal(w, delivered) }) {
					t.Fatalf("%s: status changes %v, want one of %v", id, delivered, want.executions)
				}
				if len(delivered)+len(tr.Dropped) != len(tr.ExecStatuses) {
					t.Fatalf("%s: %d delivered + %d dropped != %d status changes", id, len(delivered), len(tr.Dropped), len(tr.ExecStatuses))
				}
				if tr.FinalExecStatus != tr.ExecStatuses[len(tr.ExecStatuses)-1] {
					t.Fatalf("%s: final status %s, status changes %v", id, tr.FinalExecStatus, tr.ExecStatuses)
				}
				if tr.Alert != want.alert || tr.Faulty != want.faulty {
					t.Fatalf("%s: alert %s faulty %v, want %s %v", id, tr.Alert, tr.Faulty, want.alert, want.faulty)
				}
				if s := p.sessions[id]; s != nil && len(tr.Dropped) == 0 {
					d := s.Classify()
					if !slices.Contains(want.outcomes, d.Outcome) || d.Mismatch != want.mismatch {
						t.Fatalf("%s: domain classifies %s (mismatch %v), want one of %v (mismatch %v)",
							id, d.Outcome, d.Mismatch, want.outcomes, want.mismatch)
					}
					if x := s.Exec(); x == nil || x.Arn != tr.ExecutionArn || x.AgentName != tr.Agent || x.Status != tr.FinalExecStatus {
						t.Fatalf("%s: execution %+v, truth %s %s %s", id, x, tr.ExecutionArn, tr.Agent, tr.FinalExecStatus)
					}
				}
				checkTruthTimes(t, &tr, p.journal[id])
			}
			if len(seenJournals) != len(want.journals) {
				t.Errorf("%d of %d journal variants seen", len(seenJournals), len(want.journals))
			}
		})
	}
}

// checkTruthTimes checks the truth's times against the journal.
func checkTruthTimes(t *testing.T, tr *SessionTruth, journal []domain.Event) {
	t.Helper()
	last := journal[len(journal)-1]
	if tr.Alert != AlertNone && tr.ObservableAt.IsZero() {
		t.Fatalf("%s: alert %s with no observable time", tr.SessionID, tr.Alert)
	}
	windowEnd := DefaultStart.Add(time.Hour)
	switch tr.Scenario {
	case ScenarioStalled, ScenarioMissingCompletion, ScenarioNeverStarted, ScenarioAborted:
		if !tr.StalledAt.Equal(last.Timestamp) {
			t.Fatalf("%s: stalled at %s, last event at %s", tr.SessionID, tr.StalledAt, last.Timestamp)
		}
	case ScenarioLongRunning:
		started := journal[len(journal)-1].Timestamp
		if last.Status == sBtC {
			started = journal[len(journal)-2].Timestamp
			if !tr.CompletesAt.Equal(last.Timestamp) || tr.CompletesAt.After(windowEnd) || tr.Stage != "" {
				t.Fatalf("%s: completes at %s, completion at %s, window end %s, stage %q", tr.SessionID, tr.CompletesAt, last.Timestamp, windowEnd, tr.Stage)
			}
		} else if !tr.StalledAt.Equal(started) || !tr.CompletesAt.After(windowEnd) || tr.Stage != domain.StageBackgroundTask {
			t.Fatalf("%s: left running, stalled at %s, completes at %s", tr.SessionID, tr.StalledAt, tr.CompletesAt)
		}
		if d := tr.CompletesAt.Sub(started); d < DefaultTiming().LongRunning.Min || d > DefaultTiming().LongRunning.Max {
			t.Fatalf("%s: long-running task takes %s", tr.SessionID, d)
		}
	case ScenarioLateCompletion:
		if !tr.RecoveredAt.Equal(last.Timestamp) || tr.RecoveredAt.Sub(tr.StalledAt) < DefaultTiming().LateCompletion.Min {
			t.Fatalf("%s: stalled at %s, recovered at %s, completion at %s", tr.SessionID, tr.StalledAt, tr.RecoveredAt, last.Timestamp)
		}
	}
	if tr.Stage != "" {
		s := domain.Session{}
		for i := range journal {
			s.Apply(&journal[i])
		}
		if stage, _ := s.CurrentStage(); stage != tr.Stage && tr.Scenario != ScenarioLateCompletion {
			t.Fatalf("%s: stage %s, journal says %s", tr.SessionID, tr.Stage, stage)
		}
	}
}

var (
	uuidRE    = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	secondRE  = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
	millisRE  = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	envelope  = []string{"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
	detailKey = []string{"executionArn", "stateMachineArn", "name", "status", "startDate", "stopDate", "input",
		"inputDetails", "output", "outputDetails", "error", "cause", "redriveCount", "redriveDate", "redriveStatus",
		"redriveStatusReason"}
)

func TestObjectsHaveTheShapeAWSAndAgentsGiveThem(t *testing.T) {
	objs, truth := mustGenerate(t, Config{Seed: 11, Events: 30_000})
	byArn := map[string]*SessionTruth{}
	for id := range truth {
		tr := truth[id]
		byArn[tr.ExecutionArn] = &tr
	}
	for i, o := range objs {
		var m map[string]any
		if err := json.Unmarshal(o.Body, &m); err != nil {
			t.Fatalf("object %d: %v", i, err)
		}
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("object %d: %s\n%s", i, fmt.Sprintf(format, args...), o.Body)
		}
		switch o.Kind {
		case KindJournalItem:
			keys := []string{"PK", "SK", "Status", "Timestamp"}
			st := domain.Status(m["Status"].(string))
			if st.IsFailure() {
				keys = append(keys, "ErrorMessage")
				if msg, _ := m["ErrorMessage"].(string); msg == "" {
					fail("failure without a message")
				}
			}
			if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, slices.Sorted(slices.Values(keys))) {
				fail("keys %v, want %v", got, keys)
			}
			ts := m["Timestamp"].(string)
			if !millisRE.MatchString(ts) || m["SK"] != domain.EventKeyPrefix+ts || m["PK"] != domain.SessionKeyPrefix+o.SessionID {
				fail("keys and timestamp disagree")
			}
			if !st.IsAgent() {
				fail("status %s", st)
			}
		case KindStatusChange:
			if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, slices.Sorted(slices.Values(envelope))) {
				fail("envelope keys %v", got)
			}
			d := m["detail"].(map[string]any)
			if got := slices.Sorted(maps.Keys(d)); !slices.Equal(got, slices.Sorted(slices.Values(detailKey))) {
				fail("detail keys %v", got)
			}
			if m["version"] != "0" || m["detail-type"] != domain.StatusChangeDetailType || m["source"] != "aws.states" ||
				m["account"] != DefaultAccount || m["region"] != DefaultRegion || !uuidRE.MatchString(m["id"].(string)) ||
				!secondRE.MatchString(m["time"].(string)) {
				fail("envelope")
			}
			arn := d["executionArn"].(string)
			tr := byArn[arn]
			if tr == nil || !reflect.DeepEqual(m["resources"], []any{arn}) || tr.SessionID != o.SessionID {
				fail("execution ARN %s", arn)
			}
			if want := "arn:aws:states:us-east-1:123456789012:execution:" + tr.Agent + ":" + tr.ExecutionName; arn != want {
				fail("execution ARN %s, want %s", arn, want)
			}
			if d["stateMachineArn"] != "arn:aws:states:us-east-1:123456789012:stateMachine:"+tr.Agent || d["name"] != tr.ExecutionName {
				fail("state machine ARN or name")
			}
			var input map[string]any
			if err := json.Unmarshal([]byte(d["input"].(string)), &input); err != nil || input["session_id"] != tr.SessionID || input["agentName"] != tr.Agent {
				fail("input %v (%v)", input, err)
			}
			if _, ok := d["startDate"].(float64); !ok || !reflect.DeepEqual(d["inputDetails"], map[string]any{"included": true}) {
				fail("startDate or inputDetails")
			}
			status := domain.ExecStatus(d["status"].(string))
			terminal := status != domain.ExecRunning
			if _, ok := d["stopDate"].(float64); ok != terminal {
				fail("stopDate %v for %s", d["stopDate"], status)
			}
			errored := status == domain.ExecFailed || status == domain.ExecTimedOut || status == domain.ExecAborted
			for _, k := range []string{"error", "cause"} {
				if s, ok := d[k].(string); ok != errored || ok && s == "" {
					fail("%s %v for %s", k, d[k], status)
				}
			}
			if out, ok := d["output"].(string); ok != (status == domain.ExecSucceeded) || ok && !json.Valid([]byte(out)) {
				fail("output %v for %s", d["output"], status)
			}
			rc := d["redriveCount"].(float64)
			if _, ok := d["redriveDate"].(float64); ok != (rc > 0) {
				fail("redriveDate %v with redriveCount %v", d["redriveDate"], rc)
			}
			if wantRS := map[bool]string{true: "REDRIVABLE", false: "NOT_REDRIVABLE"}[errored]; d["redriveStatus"] != wantRS {
				fail("redriveStatus %v for %s", d["redriveStatus"], status)
			}
		default:
			fail("kind %s without malformed objects configured", o.Kind)
		}
	}
}

func TestDeliveryFaultsAreRoughlyAsConfigured(t *testing.T) {
	cfg := Config{Seed: 5, Events: 60_000, DuplicateRate: 0.1, ReorderRate: 0.2, MalformedRate: 0.05}
	objs, _ := mustGenerate(t, cfg)
	var originals, redeliveries, delayed, malformed int
	delivered := map[string]bool{}
	timing := DefaultTiming()
	for i, o := range objs {
		switch {
		case o.Kind == KindMalformed:
			malformed++
			continue
		case o.Redelivery:
			redeliveries++
			if !delivered[string(o.Body)] {
				t.Fatalf("object %d: a redelivery before the first delivery", i)
			}
			continue
		}
		originals++
		delivered[string(o.Body)] = true
		if o.Delayed {
			delayed++
			if lag := o.At.Sub(eventTime(t, o)); lag < timing.ReorderDelay.Min {
				t.Fatalf("object %d: delayed but delivered %s after its event", i, lag)
			}
		}
	}
	near := func(name string, got, want float64) {
		t.Helper()
		if got < want*0.85 || got > want*1.15 {
			t.Errorf("%s: %.4f, want about %.4f", name, got, want)
		} else {
			t.Logf("%s: %.4f (configured %.4f)", name, got, want)
		}
	}
	near("duplicate rate", float64(redeliveries)/float64(originals), cfg.DuplicateRate)
	near("reorder rate", float64(delayed)/float64(originals), cfg.ReorderRate)
	near("malformed rate", float64(malformed)/float64(len(objs)), cfg.MalformedRate)

	// Delivery is out of order within sessions, more so for delayed objects.
	inversions := 0
	last := map[string]time.Time{}
	for _, o := range objs {
		if o.Kind == KindMalformed || o.Redelivery {
			continue
		}
		at := eventTime(t, o)
		if at.Before(last[o.SessionID]) {
			inversions++
		}
		if at.After(last[o.SessionID]) {
			last[o.SessionID] = at
		}
	}
	if inversions < delayed/4 {
		t.Errorf("%d objects arrive after a later event of their session, with %d delayed", inversions, delayed)
	}
}

// eventTime is when the event an object records happened (ms precision).
func eventTime(t *testing.T, o Object) time.Time {
	t.Helper()
	in, err := domain.DecodeInput(o.Body)
	if err != nil {
		t.Fatal(err)
	}
	if in.Event != nil {
		return in.Event.Timestamp
	}
	ev, err := domain.MapStatusChange(context.Background(), *in.StatusChange, nil, domain.MappingConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return ev.Timestamp
}

func TestMalformedObjectsAreRejectedAndValidOnesAccepted(t *testing.T) {
	objs, truth := mustGenerate(t, Config{Seed: 9, Events: 20_000, MalformedRate: 0.1})
	p := parse(t, objs) // requires both
	kinds := map[string]int{}
	for _, o := range objs {
		if o.Kind != KindMalformed {
			continue
		}
		if _, ok := truth[o.SessionID]; !ok {
			t.Fatalf("malformed object of unknown session %q", o.SessionID)
		}
		_, err := domain.DecodeInput(o.Body)
		switch msg := err.Error(); {
		case !json.Valid(o.Body):
			kinds["bad JSON"]++
		case strings.Contains(msg, "startDate"):
			kinds["startDate type"]++
		case strings.Contains(msg, "PK"):
			kinds["missing PK"]++
		case strings.Contains(msg, "Timestamp"):
			kinds["bad Timestamp"]++
		case strings.Contains(msg, "Status"):
			kinds["Status type"]++
		default:
			t.Errorf("unexpected rejection: %v", err)
		}
		if !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("rejection does not match ErrInvalid: %v", err)
		}
	}
	if len(kinds) != 5 {
		t.Errorf("malformations seen: %v", kinds)
	}
	if len(p.sessions) != len(truth) {
		t.Errorf("%d sessions in the objects, %d in the truth", len(p.sessions), len(truth))
	}
}

func TestEventCountIsCloseToTheRequest(t *testing.T) {
	for _, n := range []int{1, 100, 1000, 10_000, 100_000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			objs, truth := mustGenerate(t, Config{Seed: uint64(n), Events: n, DuplicateRate: 0.01, ReorderRate: 0.02})
			if len(objs) < n || len(objs) > n+30 {
				t.Errorf("%d objects for %d requested", len(objs), n)
			}
			if n >= 10_000 {
				// Sessions spread over the window.
				var first, last time.Time
				for _, tr := range truth {
					if first.IsZero() || tr.StartedAt.Before(first) {
						first = tr.StartedAt
					}
					if tr.StartedAt.After(last) {
						last = tr.StartedAt
					}
				}
				if first.Sub(DefaultStart) > time.Minute || last.Sub(DefaultStart) < 50*time.Minute || last.Sub(DefaultStart) > 70*time.Minute {
					t.Errorf("sessions start from %s to %s", first, last)
				}
			}
		})
	}
	objs, truth := mustGenerate(t, Config{Seed: 1, Sessions: 500})
	if len(truth) != 500 {
		t.Errorf("%d sessions for 500 requested", len(truth))
	}
	ids := map[string]bool{}
	for _, o := range objs {
		ids[o.SessionID] = true
	}
	if len(ids) != 500 {
		t.Errorf("objects of %d sessions", len(ids))
	}
}

func TestScenarioMixFollowsTheWeights(t *testing.T) {
	_, truth := mustGenerate(t, Config{Seed: 2, Sessions: 20_000})
	counts := map[Scenario]int{}
	for _, tr := range truth {
		counts[tr.Scenario]++
	}
	w := DefaultWeights()
	total := 0.0
	for _, v := range w {
		total += v
	}
	for _, sc := range Scenarios {
		want := w[sc] / total
		got := float64(counts[sc]) / float64(len(truth))
		// Agents scale failure weights, so the mix is only roughly the configured one.
		if got < want*0.5 || got > want*2 {
			t.Errorf("%s: %.4f of sessions, weight %.4f", sc, got, want)
		}
	}
}

func TestAgentsDiffer(t *testing.T) {
	_, truth := mustGenerate(t, Config{Seed: 4, Sessions: 5000, Agents: 3})
	type stats struct {
		n, failed int
		tasks     []time.Duration
		errors    map[string]int
	}
	per := map[string]*stats{}
	for _, tr := range truth {
		s := per[tr.Agent]
		if s == nil {
			s = &stats{errors: map[string]int{}}
			per[tr.Agent] = s
		}
		s.n++
		if tr.Faulty {
			s.failed++
		}
		if tr.ErrorMessage != "" {
			s.errors[tr.ErrorMessage]++
		}
	}
	if len(per) != 3 {
		t.Fatalf("agents %v", slices.Collect(maps.Keys(per)))
	}
	names := slices.Sorted(maps.Keys(per))
	for _, n := range names {
		t.Logf("%s: %d sessions, %.1f%% faulty, %d distinct errors", n, per[n].n, 100*float64(per[n].failed)/float64(per[n].n), len(per[n].errors))
	}
	if per[DefaultAgentNames[0]].n <= per[DefaultAgentNames[2]].n {
		t.Errorf("the first agent should carry more traffic than the third")
	}
}

func TestAlertDue(t *testing.T) {
	t0 := time.Date(2024, 11, 4, 10, 0, 0, 0, time.UTC)
	timeout := func(agent string, stage domain.Stage) time.Duration {
		if stage == domain.StageBackgroundTask {
			return 30 * time.Minute
		}
		return 2 * time.Minute
	}
	grace := time.Minute
	tests := []struct {
		name  string
		truth SessionTruth
		want  time.Time
	}{
		{"none", SessionTruth{Alert: AlertNone}, time.Time{}},
		{"stuck", SessionTruth{Alert: AlertStuck, Stage: domain.StageBackgroundTask, StalledAt: t0}, t0.Add(30 * time.Minute)},
		{"missing completion", SessionTruth{Alert: AlertMissingCompletion, StalledAt: t0, ExecEndAt: t0.Add(10 * time.Minute)}, t0.Add(11 * time.Minute)},
		{"never started, running", SessionTruth{Alert: AlertNeverStarted, StalledAt: t0}, t0.Add(2 * time.Minute)},
		{"never started, timed out late", SessionTruth{Alert: AlertNeverStarted, StalledAt: t0, ExecEndAt: t0.Add(10 * time.Minute)}, t0.Add(2 * time.Minute)},
		{"never started, timed out early", SessionTruth{Alert: AlertNeverStarted, StalledAt: t0, ExecEndAt: t0.Add(30 * time.Second)}, t0.Add(90 * time.Second)},
		{"mismatch", SessionTruth{Alert: AlertJournalMismatch, ObservableAt: t0}, t0},
		{"late completion after the timeout", SessionTruth{Alert: AlertStuck, Stage: domain.StageBackgroundTask, StalledAt: t0,
			RecoveredAt: t0.Add(time.Hour)}, t0.Add(30 * time.Minute)},
		{"late completion before the timeout", SessionTruth{Alert: AlertStuck, Stage: domain.StageBackgroundTask, StalledAt: t0,
			RecoveredAt: t0.Add(20 * time.Minute)}, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.truth.AlertDue(timeout, grace); !got.Equal(tt.want) {
				t.Errorf("AlertDue = %s, want %s", got, tt.want)
			}
			if tt.want.IsZero() {
				return
			}
			if got := tt.truth.Expect(tt.want.Add(-time.Millisecond), timeout, grace); got != AlertNone {
				t.Errorf("Expect before due = %s", got)
			}
			if got := tt.truth.Expect(tt.want, timeout, grace); got != tt.truth.Alert {
				t.Errorf("Expect when due = %s, want %s", got, tt.truth.Alert)
			}
		})
	}
	t.Run("long running", func(t *testing.T) {
		open := SessionTruth{Scenario: ScenarioLongRunning, Alert: AlertNone, Stage: domain.StageBackgroundTask, StalledAt: t0}
		if got := open.Expect(t0.Add(29*time.Minute), timeout, grace); got != AlertNone {
			t.Errorf("Expect within the timeout = %s", got)
		}
		if got := open.Expect(t0.Add(30*time.Minute), timeout, grace); got != AlertStuck {
			t.Errorf("Expect after the timeout = %s", got)
		}
		done := SessionTruth{Scenario: ScenarioLongRunning, Alert: AlertNone}
		if got := done.Expect(t0.Add(time.Hour), timeout, grace); got != AlertNone {
			t.Errorf("Expect of a completed task = %s", got)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"defaults", func(*Config) {}, ""},
		{"events and sessions", func(c *Config) { c.Sessions = 10 }, "set one, not both"},
		{"negative events", func(c *Config) { c.Events = -1 }, "events: must not be negative"},
		{"too many agents", func(c *Config) { c.Agents = maxAgents + 1 }, "agents: must be between"},
		{"more agents than names", func(c *Config) { c.AgentNames = []string{"a"}; c.Agents = 2 }, "only 1 agent names"},
		{"bad agent name", func(c *Config) { c.AgentNames = []string{"a:b"}; c.Agents = 1 }, "agent names[0]"},
		{"unknown scenario", func(c *Config) { c.Weights = map[Scenario]float64{"nope": 1} }, `unknown scenario "nope"`},
		{"zero weights", func(c *Config) { c.Weights = map[Scenario]float64{ScenarioHappy: 0} }, "positive weight"},
		{"negative weight", func(c *Config) { c.Weights = map[Scenario]float64{ScenarioHappy: -1} }, "non-negative"},
		{"duplicate rate", func(c *Config) { c.DuplicateRate = 1.5 }, "duplicate rate"},
		{"malformed rate", func(c *Config) { c.MalformedRate = 0.5 }, "malformed rate"},
		{"window", func(c *Config) { c.Window = -time.Second }, "window"},
		{"timing", func(c *Config) { c.Timing.StageGap = DurationRange{time.Second, time.Millisecond} }, "timing stage gap"},
		{"account", func(c *Config) { c.Account = "12" }, "account"},
		{"start", func(c *Config) { c.Start = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC) }, "start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.modify(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.want)
			}
			if tt.want != "" {
				if _, _, err := Generate(c); err == nil {
					t.Fatal("Generate accepts an invalid config")
				}
			}
		})
	}
}

func TestAgentNamesAreUsed(t *testing.T) {
	_, truth := mustGenerate(t, Config{Seed: 1, Sessions: 200, AgentNames: []string{"alpha", "beta"}})
	for _, tr := range truth {
		if tr.Agent != "alpha" && tr.Agent != "beta" {
			t.Fatalf("agent %q", tr.Agent)
		}
	}
	_, truth = mustGenerate(t, Config{Seed: 1, Sessions: 2000, Agents: 20})
	agents := map[string]bool{}
	for _, tr := range truth {
		agents[tr.Agent] = true
	}
	if !agents["agent-13"] || len(agents) < 15 {
		t.Errorf("agents %v", slices.Sorted(maps.Keys(agents)))
	}
}
