// Package storetest is the contract suite of agentwatch's stores: every backend (the
// embedded SQLite one, the DynamoDB one) runs it from its own tests to prove the same
// behaviour through the app ports alone — idempotent journal appends that never
// overwrite, the session-event queries of seed 002, complete scans, atomic projection
// commits guarded by session versions, the index's rank guard and query order, stats
// deltas, stuck-entry scheduling, exactly-once alerts, quarantine and checkpoints, and
// an end-to-end fold that must match projections.Model.
//
// A backend's test calls Run with a Factory:
//
//	func TestStores(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Stores { ... fresh, empty stores ... })
//	}
package storetest

import (
	"testing"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/projections/executionindex"
)

// Journal is the journal side of a backend.
type Journal interface {
	app.JournalAppender
	app.JournalReader
	app.JournalScanner
}

// Projection is the read-model side of a backend.
type Projection interface {
	app.ProjectionStore
	executionindex.Reader
	app.StatsReader
	app.StuckStore
}

// Stores is one backend's implementation of every store port. Checkpoints must see the
// checkpoints that Projection.Commit writes.
type Stores struct {
	Journal     Journal
	Projection  Projection
	Alerts      app.AlertStore
	Checkpoints app.CheckpointStore
	Quarantine  app.Quarantine
}

// Factory returns fresh, empty stores for one test. It registers its own cleanup with
// t.Cleanup. It is called once per test case, possibly from parallel tests.
type Factory func(t *testing.T) Stores

// Run runs the whole suite.
func Run(t *testing.T, newStores Factory) {
	t.Run("Journal", func(t *testing.T) { TestJournal(t, newStores) })
	t.Run("Projection", func(t *testing.T) { TestProjection(t, newStores) })
	t.Run("Outbox", func(t *testing.T) { TestOutbox(t, newStores) })
	t.Run("EndToEnd", func(t *testing.T) { TestEndToEnd(t, newStores) })
}
