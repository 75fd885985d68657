package projections_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
	"github.com/agentwatch/agentwatch/projections/projectionstest"
)

var env = projections.Env{NowMs: projectionstest.Base.UnixMilli()}

func registry(t testing.TB) *projections.Registry {
	t.Helper()
	reg, err := app.NewRegistry(app.Config{})
	require.NoError(t, err)
	return reg
}

func fold(evs []domain.Event) *projections.Model {
	m := projections.NewModel()
	for i := range evs {
		m.Apply(&evs[i])
	}
	return m
}

// snapshot renders every settled row of every table, for comparisons.
func snapshot(reg *projections.Registry, st *projections.State) map[string]string {
	out := map[string]string{}
	for _, t := range reg.Tables() {
		for _, r := range st.Documents(t.Name) {
			if reg.Settled(t.Name, r.Doc) {
				b, _ := json.Marshal(r.Doc)
				out[t.Name+"/"+r.Key] = fmt.Sprintf("%s %d %d", b, r.Guard, r.Schedule)
			}
		}
		for _, r := range st.CounterRows(t.Name) {
			b, _ := json.Marshal(r.Counters)
			out[t.Name+"/"+r.Partition+"/"+r.Sort] = string(b)
		}
	}
	return out
}

// live projects evs as the live projector does: pages of random sizes, each session of
// a page folded and its read models' changes applied once.
func live(reg *projections.Registry, r *rand.Rand, evs []domain.Event) (*projections.Model, *projections.State) {
	m := projections.NewModel()
	st := projections.NewState(reg)
	for lo := 0; lo < len(evs); {
		hi := min(lo+1+r.IntN(50), len(evs))
		before := map[string]domain.Session{}
		for i := lo; i < hi; i++ {
			id := evs[i].SessionID
			if _, ok := before[id]; !ok {
				if s := m.Session(id); s != nil {
					before[id] = s.Clone()
				} else {
					before[id] = domain.Session{}
				}
			}
			m.Apply(&evs[i])
		}
		for id, b := range before {
			var ch projections.Changes
			reg.Changes(&b, m.Session(id), env, &ch)
			st.Apply(&ch)
		}
		lo = hi
	}
	return m, st
}

// TestReadModelsOrderAndDuplicationProof is the property every projection rests on:
// random sessions of every scenario, applied shuffled, with random duplicates and in
// pages of random sizes as the live projector does, give every registered read model
// the rows one ordered pass derives.
func TestReadModelsOrderAndDuplicationProof(t *testing.T) {
	reg := registry(t)
	trials := 1000
	if testing.Short() {
		trials = 100
	}
	for trial := range trials {
		seed := uint64(trial)
		evs := projectionstest.Sessions(seed, 1+int(seed%7), 3)
		want := snapshot(reg, fold(evs).Derive(reg, env))
		r := rand.New(rand.NewPCG(seed, 42))
		shuffled := projectionstest.Shuffled(r, evs, 0.3)
		require.Equal(t, want, snapshot(reg, fold(shuffled).Derive(reg, env)), "trial %d: derived after a shuffled fold", trial)
		_, st := live(reg, r, shuffled)
		require.Equal(t, want, snapshot(reg, st), "trial %d: changes applied page by page", trial)
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

// TestRegistryRefusesBadDeclarations: names and tables are checked when registering.
func TestRegistryRefusesBadDeclarations(t *testing.T) {
	reg := registry(t)
	_, err := projections.NewRegistry(append(reg.Models(), reg.Models()[0])...)
	require.Error(t, err, "a read model twice")
	_, err = projections.NewRegistry(badModel{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Bad Table")
}

type badModel struct{}

func (badModel) Name() string { return "bad" }
func (badModel) Version() int { return 1 }
func (badModel) Tables() []projections.Table {
	return []projections.Table{{Name: "Bad Table", Kind: projections.Documents}}
}
func (badModel) Changes(*domain.Session, *domain.Session, projections.Env, *projections.Changes) {}

// BenchmarkFold folds events into sessions and derives every registered read model, as
// a rebuild does: events/s is the figure of merit.
func BenchmarkFold(b *testing.B) {
	reg := registry(b)
	evs := projectionstest.Shuffled(rand.New(rand.NewPCG(3, 4)), projectionstest.Sessions(1, 20_000, 8), 0.1)
	b.ReportAllocs()
	total := 0
	for b.Loop() {
		m := fold(evs)
		_ = m.Derive(reg, projections.Env{NowMs: time.Now().UnixMilli(), Replay: true})
		total += len(evs)
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(len(evs)), "events/op")
}

// BenchmarkApply folds events into the session aggregates only, the per-event part of
// BenchmarkFold (deriving the read models is per session, once per rebuild).
func BenchmarkApply(b *testing.B) {
	evs := projectionstest.Shuffled(rand.New(rand.NewPCG(3, 4)), projectionstest.Sessions(1, 20_000, 8), 0.1)
	b.ReportAllocs()
	total := 0
	for b.Loop() {
		_ = fold(evs)
		total += len(evs)
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkChanges is the live projector's per-session work: a session moves from
// before to after and every read model says what changed.
func BenchmarkChanges(b *testing.B) {
	reg := registry(b)
	evs := projectionstest.Sessions(5, 2000, 4)
	m := fold(evs)
	sessions := m.Sessions()
	var empty domain.Session
	var ch projections.Changes
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ch.Reset()
		reg.Changes(&empty, sessions[i%len(sessions)], env, &ch)
	}
}
