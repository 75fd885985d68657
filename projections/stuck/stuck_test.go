package stuck_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

var t0 = time.Date(2024, 11, 4, 10, 30, 0, 0, time.UTC)

func ev(n int, st domain.Status) domain.Event {
	at := t0.Add(time.Duration(n) * time.Second)
	return domain.Event{SessionID: "s1", SK: domain.EventKeyPrefix + domain.FormatTime(at), Status: st, Timestamp: at}
}

func execEv(n int, st domain.ExecStatus) domain.Event {
	at := t0.Add(time.Duration(n) * time.Second)
	arn := "arn:aws:states:us-east-1:123456789012:execution:a:s1"
	e := domain.Event{SessionID: "s1", Status: st.JournalStatus(), Timestamp: at, SK: domain.ExecutionSortKey(at, st, 0, arn)}
	e.Exec = domain.Execution{ExecutionArn: arn, AgentName: "a", StartDate: t0}
	if st.Terminal() {
		e.Exec.StopDate = at
	}
	return e
}

func entryOf(t *testing.T, evs ...domain.Event) stuck.Entry {
	t.Helper()
	var s domain.Session
	for i := range evs {
		s.Apply(&evs[i])
	}
	e, _ := stuck.EntryOf(&s)
	return e
}

func cfg() *stuck.Config {
	c := stuck.DefaultConfig()
	c.Timeouts[domain.StageBackgroundTask] = 10 * time.Minute
	c.AgentTimeouts = map[string]map[domain.Stage]time.Duration{"slow": {domain.StageBackgroundTask: time.Hour}}
	return &c
}

func kinds(fs []stuck.Finding) []stuck.Kind {
	var out []stuck.Kind
	for _, f := range fs {
		out = append(out, f.Kind)
	}
	return out
}

func TestEvaluate(t *testing.T) {
	running := []domain.Event{execEv(0, domain.ExecRunning), ev(0, domain.StatusSessionInitiated), ev(1, domain.StatusInvocationStarted),
		ev(2, domain.StatusInvocationSucceeded), ev(3, domain.StatusEntrypointStarted), ev(4, domain.StatusBackgroundTaskStarted)}
	tests := []struct {
		name   string
		evs    []domain.Event
		raised stuck.KindSet
		open   stuck.KindSet
		at     time.Duration
		want   []stuck.Kind
		next   time.Duration // -1: Never
	}{
		{name: "within the background task deadline", evs: running, at: 5 * time.Minute, next: 4*time.Second + 10*time.Minute},
		{name: "past the deadline: stuck", evs: running, at: 11 * time.Minute, want: []stuck.Kind{stuck.KindStuck}, next: -1},
		{name: "stuck already raised: nothing again", evs: running, raised: stuck.KindStuck.Bit(), open: stuck.KindStuck.Bit(), at: 20 * time.Minute, next: -1},
		{name: "initiated only past its deadline: never started", evs: running[:2], at: 3 * time.Minute, want: []stuck.Kind{stuck.KindNeverStarted}, next: -1},
		{name: "execution ended without completion, within grace", evs: append(append([]domain.Event{}, running...), execEv(60, domain.ExecSucceeded)),
			at: 61 * time.Second, next: 60*time.Second + 2*time.Minute},
		{name: "execution ended without completion, past grace", evs: append(append([]domain.Event{}, running...), execEv(60, domain.ExecSucceeded)),
			at: 3 * time.Minute, want: []stuck.Kind{stuck.KindMissingCompletion}, next: -1},
		{name: "aborted: an operator's decision, nothing", evs: append(append([]domain.Event{}, running...), execEv(60, domain.ExecAborted)),
			at: time.Hour, next: -1},
		{name: "late completion after a stuck alert: recovered", evs: append(append([]domain.Event{}, running...), ev(900, domain.StatusBackgroundTaskCompleted)),
			raised: stuck.KindStuck.Bit(), open: stuck.KindStuck.Bit(), at: 16 * time.Minute, want: []stuck.Kind{stuck.KindRecovered}, next: -1},
		{name: "completion without an alert: nothing", evs: append(append([]domain.Event{}, running...), ev(60, domain.StatusBackgroundTaskCompleted)),
			at: time.Hour, next: -1},
		{name: "mismatch: agent failed, execution succeeded", evs: append(append([]domain.Event{}, running...), ev(30, domain.StatusBackgroundTaskFailed), execEv(31, domain.ExecSucceeded)),
			at: 32 * time.Second, want: []stuck.Kind{stuck.KindJournalMismatch}, next: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := entryOf(t, tt.evs...)
			fs, next := stuck.Evaluate(&e, tt.raised, tt.open, t0.Add(tt.at), cfg())
			assert.Equal(t, tt.want, kinds(fs))
			if tt.next < 0 {
				assert.Equal(t, stuck.Never, next)
			} else {
				assert.Equal(t, t0.Add(tt.next).UnixMilli(), next)
			}
			for _, f := range fs {
				assert.Equal(t, "s1", f.SessionID)
				assert.GreaterOrEqual(t, f.OverdueBy, time.Duration(0))
			}
		})
	}
}

func TestPerAgentTimeout(t *testing.T) {
	c := cfg()
	assert.Equal(t, time.Hour, c.Timeout("slow", domain.StageBackgroundTask))
	assert.Equal(t, 10*time.Minute, c.Timeout("other", domain.StageBackgroundTask))
	assert.Equal(t, 2*time.Minute, c.Timeout("slow", domain.StageInitiated))
}

func TestEntryClosed(t *testing.T) {
	e := entryOf(t, ev(0, domain.StatusSessionInitiated), ev(1, domain.StatusBackgroundTaskCompleted))
	require.True(t, e.Closed)
	e = entryOf(t, ev(0, domain.StatusSessionInitiated))
	require.False(t, e.Closed)
}

func TestAdaptiveTimeouts(t *testing.T) {
	a := stuck.Adaptive{Enabled: true}
	a.SetDefaults()
	got := a.AdaptedTimeouts(map[string]map[domain.Stage]stuck.StageP99{
		"fast": {domain.StageBackgroundTask: {Count: 100, P99: 20 * time.Second}, domain.StageInvocation: {Count: 100, P99: time.Second}},
		"slow": {domain.StageBackgroundTask: {Count: 100, P99: 2 * time.Hour}},
		"new":  {domain.StageBackgroundTask: {Count: 3, P99: time.Minute}},
	})
	assert.Equal(t, 60*time.Second, got["fast"][domain.StageBackgroundTask], "p99 x 3")
	assert.Equal(t, 30*time.Second, got["fast"][domain.StageInvocation], "floor")
	assert.Equal(t, 2*time.Hour, got["slow"][domain.StageBackgroundTask], "ceiling")
	assert.NotContains(t, got, "new", "too few samples")
	c := cfg()
	c.Adapted = got
	assert.Equal(t, 60*time.Second, c.Timeout("fast", domain.StageBackgroundTask))
	assert.Equal(t, time.Hour, c.Timeout("slow", domain.StageBackgroundTask), "explicit per-agent deadlines win")
}
