package app

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/executionindex"
)

// The backfill and the reconcile sweep run end to end against the real SDK, an
// HTTP-level fake of the Step Functions API and the SQLite journal in
// adapters/sfn/backfill_test.go; these are the pure parts.

func TestReconstructStatusChanges(t *testing.T) {
	start := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	stop, redrive := start.Add(time.Minute), start.Add(time.Hour)
	base := domain.StatusChange{ExecutionArn: "arn:aws:states:us-east-1:1:execution:f:e", StateMachineArn: "arn:aws:states:us-east-1:1:stateMachine:f",
		Name: "e", StartDate: start, Input: json.RawMessage(`{"session_id":"s"}`)}
	with := func(f func(sc *domain.StatusChange)) domain.StatusChange {
		sc := base
		f(&sc)
		return sc
	}
	type step struct {
		status       domain.ExecStatus
		at           time.Time
		redriveCount int
	}
	tests := []struct {
		name string
		cur  domain.StatusChange
		want []step
	}{
		{"running", with(func(sc *domain.StatusChange) { sc.Status = domain.ExecRunning }),
			[]step{{domain.ExecRunning, start, 0}}},
		{"succeeded", with(func(sc *domain.StatusChange) {
			sc.Status, sc.StopDate, sc.Output = domain.ExecSucceeded, stop, json.RawMessage(`{}`)
		}), []step{{domain.ExecRunning, start, 0}, {domain.ExecSucceeded, stop, 0}}},
		{"failed after a redrive", with(func(sc *domain.StatusChange) {
			sc.Status, sc.StopDate, sc.RedriveCount, sc.RedriveDate, sc.Error = domain.ExecFailed, redrive.Add(time.Minute), 1, redrive, "E"
		}), []step{{domain.ExecRunning, start, 0}, {domain.ExecRunning, redrive, 1}, {domain.ExecFailed, redrive.Add(time.Minute), 1}}},
		{"running after two redrives", with(func(sc *domain.StatusChange) {
			sc.Status, sc.RedriveCount, sc.RedriveDate = domain.ExecRunning, 2, redrive
		}), []step{{domain.ExecRunning, start, 0}, {domain.ExecRunning, redrive, 2}}},
		{"pending redrive", with(func(sc *domain.StatusChange) {
			sc.Status, sc.StopDate, sc.RedriveCount, sc.RedriveDate = domain.ExecPendingRedrive, stop, 1, redrive
		}), []step{{domain.ExecRunning, start, 0}, {domain.ExecPendingRedrive, redrive, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ReconstructStatusChanges(tt.cur)
			require.Len(t, got, len(tt.want))
			for i, w := range tt.want {
				ev, err := domain.MapStatusChange(t.Context(), got[i], nil, domain.MappingConfig{})
				require.NoError(t, err)
				assert.Equal(t, w.status.JournalStatus(), ev.Status, i)
				assert.True(t, w.at.Equal(ev.Timestamp), "%d: %s, want %s", i, ev.Timestamp, w.at)
				assert.Equal(t, w.redriveCount, ev.Exec.RedriveCount, i)
				assert.Equal(t, "s", ev.SessionID)
				if got[i].Status == domain.ExecRunning {
					assert.True(t, got[i].StopDate.IsZero(), "a RUNNING event has no stop date")
					assert.Nil(t, got[i].Output)
					assert.Empty(t, got[i].Error)
				}
			}
			if tt.cur.Status != domain.ExecRunning {
				assert.Equal(t, tt.cur, got[len(got)-1], "the current state is its own status change")
			}
		})
	}
}

func TestBackfillPositionWithTiesInOneMillisecond(t *testing.T) {
	at := time.Date(2026, 1, 5, 10, 0, 0, 123_400_000, time.UTC)
	a := ExecutionSummary{ExecutionArn: "arn:a", StartDate: at}
	b := ExecutionSummary{ExecutionArn: "arn:b", StartDate: at.Add(300 * time.Microsecond)} // the same millisecond
	newer := ExecutionSummary{ExecutionArn: "arn:n", StartDate: at.Add(time.Second)}
	older := ExecutionSummary{ExecutionArn: "arn:o", StartDate: at.Add(-time.Millisecond)}

	var p backfillPosition
	assert.False(t, p.covers(&newer), "no position covers nothing")
	p.advance(&newer)
	p.advance(&a)
	assert.True(t, p.covers(&newer))
	assert.True(t, p.covers(&a))
	assert.False(t, p.covers(&b), "same millisecond, not processed yet: whatever order the API lists ties in")
	assert.False(t, p.covers(&older))
	p.advance(&b)
	assert.True(t, p.covers(&a) && p.covers(&b))
	assert.Equal(t, 3, p.Processed)
	p.advance(&older)
	assert.Equal(t, []string{"arn:o"}, p.Arns, "a new millisecond starts a new list")
}

func TestBackfillAndReconcileConfigs(t *testing.T) {
	var bc BackfillConfig
	bc.SetDefaults()
	require.ErrorContains(t, bc.Validate(), "StateMachineArn")
	bc = BackfillConfig{StateMachineArn: "arn", Status: "DONE", CheckpointEvery: -1}
	err := bc.Validate()
	require.ErrorContains(t, err, "Status")
	require.ErrorContains(t, err, "CheckpointEvery")

	var rc ReconcileConfig
	rc.SetDefaults()
	assert.Equal(t, 15*time.Minute, rc.Interval)
	assert.Equal(t, 24*time.Hour, rc.Window)
	require.ErrorContains(t, rc.Validate(), "StateMachineArns")
	rc = ReconcileConfig{StateMachineArns: []string{" "}, Interval: -1, Window: -1, Grace: -1}
	err = rc.Validate()
	for _, want := range []string{"StateMachineArns[0]", "Interval", "Window", "Grace"} {
		assert.ErrorContains(t, err, want)
	}
}

func TestReconcilerStopsCleanly(t *testing.T) {
	r, err := NewReconciler(ReconcileConfig{StateMachineArns: []string{"arn"}, Interval: time.Hour}, nopSource{}, nopJournal{},
		nopIndex{}, nopCheckpoints{}, nil, domain.MappingConfig{}, nil, nil)
	require.NoError(t, err)
	require.NoError(t, r.Start(t.Context()))
	require.NoError(t, r.Stop(t.Context()))
	require.NoError(t, r.Stop(t.Context()), "idempotent")
}

// The nop ports below only let a Reconciler be built; nothing calls them.
type nopSource struct{ ExecutionSource }
type nopJournal struct{ JournalAppender }
type nopIndex struct{ executionindex.Reader }
type nopCheckpoints struct{ CheckpointStore }
