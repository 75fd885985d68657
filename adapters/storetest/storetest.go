// Package storetest is the contract suite of agentwatch's stores: every backend (the
// embedded SQLite one, the DynamoDB one) runs it from its own tests to prove the same
// behaviour through the app ports alone — idempotent journal appends that never
// overwrite, the session-event queries of seed 002, complete scans, projection commits
// of any registered read model guarded by session versions, document guards, index
// queries and counts, counters, schedules, generations, exactly-once alerts, quarantine
// and checkpoints, and an end-to-end fold through the projector that must equal the
// registered read models derived from the clean journal.
//
// A backend's test calls Run with a Factory:
//
//	func TestStores(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Stores { ... fresh, empty stores ... })
//	}
package storetest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/projections"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// Journal is the journal side of a backend.
type Journal interface {
	app.JournalAppender
	app.JournalReader
	app.JournalScanner
}

// Stores is one backend's implementation of every store port. Checkpoints must see the
// checkpoints that Projection.Commit writes. Projection holds the read models of
// Registry in a generation that exists (Prepare makes one).
type Stores struct {
	Registry    *projections.Registry
	Journal     Journal
	Projection  app.ReadModelStore
	Generations app.GenerationStore
	Alerts      app.AlertStore
	Checkpoints app.CheckpointStore
	Quarantine  app.Quarantine
}

// Factory returns fresh, empty stores for one test. It registers its own cleanup with
// t.Cleanup. It is called once per test case, possibly from parallel tests.
type Factory func(t *testing.T) Stores

// Registry is the registry the suite runs with: every read model agentwatch registers,
// with the default detector deadlines.
func Registry(t testing.TB) *projections.Registry {
	t.Helper()
	reg, err := app.NewRegistry(app.Config{})
	require.NoError(t, err)
	return reg
}

// Prepare creates generation 1 of the registered read models and makes it current.
func Prepare(t testing.TB, gens app.GenerationStore, reg *projections.Registry) {
	t.Helper()
	require.NoError(t, gens.CreateGeneration(t.Context(), 1, reg.Signature()))
	require.NoError(t, gens.SwitchGeneration(t.Context(), 1))
}

// Run runs the whole suite.
func Run(t *testing.T, newStores Factory) {
	t.Run("Journal", func(t *testing.T) { TestJournal(t, newStores) })
	t.Run("Projection", func(t *testing.T) { TestProjection(t, newStores) })
	t.Run("Generations", func(t *testing.T) { TestGenerations(t, newStores) })
	t.Run("Outbox", func(t *testing.T) { TestOutbox(t, newStores) })
	t.Run("EndToEnd", func(t *testing.T) { TestEndToEnd(t, newStores) })
}

// detector is the stuck read model's store view.
func detector(s Stores) stuck.Store { return stuck.NewStore(s.Projection, s.Projection) }
