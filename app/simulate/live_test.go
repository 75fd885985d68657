package simulate

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agentwatch/agentwatch/domain"
)

// fakeClock is a clock that moves only when Live waits on it.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

// runLive runs Live on a fake clock until MaxSessions sessions are delivered.
func runLive(t *testing.T, cfg LiveConfig) ([]Object, []SessionTruth, time.Time) {
	t.Helper()
	clock := &fakeClock{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	start := clock.now
	cfg.Clock, cfg.After = clock.Now, clock.After
	var truths []SessionTruth
	cfg.OnSession = func(tr SessionTruth) { truths = append(truths, tr) }
	var objs []Object
	err := Live(t.Context(), cfg, func(o Object) error {
		if o.At.After(clock.now) {
			t.Fatalf("object due at %s emitted at %s", o.At, clock.now)
		}
		if n := len(objs); n > 0 && o.At.Before(objs[n-1].At) {
			t.Fatalf("object due at %s emitted after one due at %s", o.At, objs[n-1].At)
		}
		objs = append(objs, o)
		return nil
	})
	if err != nil {
		t.Fatalf("Live: %v", err)
	}
	return objs, truths, start
}

func TestLiveDeliversEverySessionOnTime(t *testing.T) {
	cfg := LiveConfig{Seed: 8, MaxSessions: 300, SessionsPerSecond: 5, DuplicateRate: 0.02, ReorderRate: 0.05}
	objs, truths, start := runLive(t, cfg)
	if len(truths) != cfg.MaxSessions {
		t.Fatalf("%d sessions, want %d", len(truths), cfg.MaxSessions)
	}
	perSession := map[string]int{}
	for _, o := range objs {
		if !o.Redelivery {
			perSession[o.SessionID]++
		}
	}
	scenarios := map[Scenario]int{}
	var last time.Time
	for _, tr := range truths {
		scenarios[tr.Scenario]++
		if want := len(tr.Statuses) + len(tr.ExecStatuses) - len(tr.Dropped); perSession[tr.SessionID] != want {
			t.Errorf("%s (%s): %d objects delivered, want %d", tr.SessionID, tr.Scenario, perSession[tr.SessionID], want)
		}
		if tr.StartedAt.Before(start) {
			t.Errorf("%s started at %s, before Live did", tr.SessionID, tr.StartedAt)
		}
		if tr.StartedAt.After(last) {
			last = tr.StartedAt
		}
		// The demo promise: alerts within a minute or two with the demo timeouts.
		if due := tr.AlertDue(demoTimeout, DemoCompletionGrace); tr.Alert != AlertNone && due.Sub(tr.StartedAt) > 2*time.Minute {
			t.Errorf("%s (%s): %s alert due %s after the start", tr.SessionID, tr.Scenario, tr.Alert, due.Sub(tr.StartedAt))
		}
	}
	// 300 sessions at 5 per second: about a minute of arrivals.
	if span := last.Sub(start); span < 40*time.Second || span > 80*time.Second {
		t.Errorf("sessions arrived over %s", span)
	}
	for sc, w := range DemoWeights() {
		if w > 0 && scenarios[sc] == 0 {
			t.Errorf("no %s session among %d", sc, len(truths))
		}
	}
	p := parse(t, objs)
	if len(p.sessions) != len(truths) {
		t.Errorf("objects of %d sessions, %d started", len(p.sessions), len(truths))
	}
}

func demoTimeout(_ string, stage domain.Stage) time.Duration { return DemoTimeouts()[stage] }

func TestLiveIsDeterministicOnAFakeClock(t *testing.T) {
	cfg := LiveConfig{Seed: 21, MaxSessions: 50, DuplicateRate: 0.05, ReorderRate: 0.05, MalformedRate: 0.02}
	a, _, _ := runLive(t, cfg)
	b, _, _ := runLive(t, cfg)
	if !bytes.Equal(ndjson(t, a), ndjson(t, b)) {
		t.Fatal("same seed and clock, different objects")
	}
}

func TestLiveLongRunningSessionsComplete(t *testing.T) {
	cfg := LiveConfig{Seed: 1, MaxSessions: 5, Weights: map[Scenario]float64{ScenarioLongRunning: 1}}
	objs, truths, _ := runLive(t, cfg)
	for _, tr := range truths {
		if tr.CompletesAt.IsZero() || tr.Statuses[len(tr.Statuses)-1] != domain.StatusBackgroundTaskCompleted {
			t.Errorf("%s: statuses %v, completes at %s", tr.SessionID, tr.Statuses, tr.CompletesAt)
		}
	}
	if got, want := objs[len(objs)-1].At.Sub(truths[0].StartedAt), DemoTiming().LongRunning.Min; got < want {
		t.Errorf("last object %s after the first start, long-running tasks take at least %s", got, want)
	}
}

func TestLiveStopsOnCancelAndOnEmitErrors(t *testing.T) {
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		n := 0
		err := Live(ctx, LiveConfig{Seed: 1, SessionsPerSecond: 2000}, func(Object) error {
			if n++; n == 10 {
				cancel()
			}
			return nil
		})
		if !errors.Is(err, context.Canceled) || n != 10 {
			t.Fatalf("Live = %v after %d objects, want context.Canceled after 10", err, n)
		}
	})
	t.Run("emit error", func(t *testing.T) {
		boom := errors.New("boom")
		err := Live(t.Context(), LiveConfig{Seed: 1, SessionsPerSecond: 2000}, func(Object) error { return boom })
		if !errors.Is(err, boom) {
			t.Fatalf("Live = %v, want boom", err)
		}
	})
	t.Run("invalid config", func(t *testing.T) {
		err := Live(t.Context(), LiveConfig{SessionsPerSecond: -1}, func(Object) error { return nil })
		if err == nil || !strings.Contains(err.Error(), "sessions per second") {
			t.Fatalf("Live = %v, want a config error", err)
		}
	})
}
