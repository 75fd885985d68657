package projections_test

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
	"github.com/agentwatch/agentwatch/projections/executionindex"
	"github.com/agentwatch/agentwatch/projections/projectionstest"
)

func fold(evs []domain.Event) *projections.Model {
	return foldInto(projections.NewModel(), evs)
}

func foldInto(m *projections.Model, evs []domain.Event) *projections.Model {
	for i := range evs {
		m.Apply(&evs[i])
	}
	return m
}

func requireSameModels(t *testing.T, want, got *projections.Model) {
	t.Helper()
	require.Equal(t, want.Len(), got.Len(), "sessions")
	ws, gs := want.Sessions(), got.Sessions()
	for i := range ws {
		require.Truef(t, ws[i].Equal(gs[i]), "session %s differs:\nwant %+v\ngot  %+v", ws[i].ID, ws[i], gs[i])
	}
	wi, gi := want.Index(), got.Index()
	require.Equal(t, len(wi), len(gi), "index items")
	for i := range wi {
		require.Truef(t, executionindex.Equal(wi[i], gi[i]), "index item %s differs:\nwant %+v\ngot  %+v", wi[i].ExecutionArn, wi[i], gi[i])
	}
	require.Equal(t, want.Stats(), got.Stats(), "stats buckets")
	require.Equal(t, want.Stuck(), got.Stuck(), "stuck entries")
}

// TestModelOrderAndDuplicationProof is the property every projection rests on: random
// sessions of every scenario, applied shuffled and with random duplicates, give read
// models equal to one ordered pass.
func TestModelOrderAndDuplicationProof(t *testing.T) {
	trials := 1000
	if testing.Short() {
		trials = 100
	}
	for trial := range trials {
		seed := uint64(trial)
		evs := projectionstest.Sessions(seed, 1+int(seed%7), 3)
		want := fold(evs)
		r := rand.New(rand.NewPCG(seed, 42))
		shuffled := projectionstest.Shuffled(r, evs, 0.3)
		requireSameModels(t, want, fold(shuffled))
		// The live projector's way: stats kept event by event, old contribution out,
		// new one in.
		requireSameModels(t, want, foldInto(projections.NewIncrementalModel(), shuffled))
		if t.Failed() {
			t.Fatalf("trial %d", trial)
		}
	}
}

// TestModelDuplicatesChangeNothing: applying any event again reports no change.
func TestModelDuplicatesChangeNothing(t *testing.T) {
	evs := projectionstest.Sessions(7, 200, 4)
	m := fold(evs)
	for i := range evs {
		assert.False(t, m.Apply(&evs[i]), "event %d (%s %s) changed the model again", i, evs[i].SessionID, evs[i].Status)
	}
}

// TestModelStatsAreSumOfSessions: the incremental stats equal stats computed from the
// final sessions in one go.
func TestModelStatsAreSumOfSessions(t *testing.T) {
	evs := projectionstest.Sessions(11, 500, 5)
	m := foldInto(projections.NewIncrementalModel(), projectionstest.Shuffled(rand.New(rand.NewPCG(1, 2)), evs, 0.5))
	// Rebuild from the final sessions only: one event per session can't do it, so fold
	// the final sessions' own events again in order.
	clean := fold(evs)
	require.Equal(t, clean.Stats(), m.Stats())
	var started int64
	for _, b := range m.Stats() {
		if len(b.Bucket) > 4 && b.Bucket[:4] == "DAY#" {
			started += b.Counters["started"]
		}
	}
	require.EqualValues(t, m.Len(), started, "every session counted once in its day bucket")
}

// BenchmarkFold folds events through all three read models and materializes them, as a
// rebuild does: events/s is the figure of merit.
func BenchmarkFold(b *testing.B) {
	evs := projectionstest.Shuffled(rand.New(rand.NewPCG(3, 4)), projectionstest.Sessions(1, 20_000, 8), 0.1)
	b.ReportAllocs()
	total := 0
	for b.Loop() {
		m := projections.NewModel()
		for i := range evs {
			m.Apply(&evs[i])
		}
		_ = m.Index()
		_ = m.Stats()
		_ = m.Stuck()
		total += len(evs)
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(len(evs)), "events/op")
}

// BenchmarkApply folds events into the session aggregates only, the per-event part of
// BenchmarkFold (materializing the read models is per session, once per rebuild).
func BenchmarkApply(b *testing.B) {
	evs := projectionstest.Shuffled(rand.New(rand.NewPCG(3, 4)), projectionstest.Sessions(1, 20_000, 8), 0.1)
	b.ReportAllocs()
	total := 0
	for b.Loop() {
		m := projections.NewModel()
		for i := range evs {
			m.Apply(&evs[i])
		}
		total += len(evs)
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "events/s")
}
