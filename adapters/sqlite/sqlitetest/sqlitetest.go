// Package sqlitetest opens the embedded backend for tests of other packages: a database
// in a temporary directory with the registered read models' first generation current.
package sqlitetest

import (
	"log/slog"
	"testing"

	"github.com/agentwatch/agentwatch/adapters/sqlite"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/projections"
)

// Stores are the embedded stores of one database.
type Stores struct {
	DB       *sqlite.DB
	Registry *projections.Registry
	Journal  *sqlite.JournalStore
	// Models are the read models of the current generation.
	Models *sqlite.ReadModelStore
}

// Open opens a database in dir (t.TempDir() when ""), closed with the test, with
// generation 1 of every registered read model current.
func Open(t testing.TB, dir string) Stores {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	logger := slog.New(slog.DiscardHandler)
	db, err := sqlite.Open(t.Context(), dir, logger)
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return On(t, db)
}

// On returns the stores of an open database, with the read models' generation made
// current when it has none.
func On(t testing.TB, db *sqlite.DB) Stores {
	t.Helper()
	reg, err := app.NewRegistry(app.Config{})
	if err != nil {
		t.Fatalf("register read models: %v", err)
	}
	s := Stores{DB: db, Registry: reg, Journal: sqlite.NewJournalStore(db), Models: sqlite.NewReadModelStore(db, reg, 0)}
	if err := app.EnsureReadModels(t.Context(), reg, s.Models, s.Journal, nil, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("read models: %v", err)
	}
	return s
}

// Queries are the query side over the stores.
func (s Stores) Queries() *app.Queries {
	return app.NewQueries(s.Registry, s.Models, s.Journal, sqlite.NewAlertStore(s.DB), sqlite.NewQuarantineStore(s.DB))
}
