package sqlite_test

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/adapters/sqlite"
	"github.com/agentwatch/agentwatch/adapters/storetest"
)

// openDB opens a database in a fresh temporary directory, closed with the test.
func openDB(t testing.TB) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), t.TempDir(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	return db
}

func newStores(t *testing.T) storetest.Stores { return storesOn(openDB(t)) }

func storesOn(db *sqlite.DB) storetest.Stores {
	return storetest.Stores{
		Journal:     sqlite.NewJournalStore(db),
		Projection:  sqlite.NewReadModelStore(db, 1),
		Alerts:      sqlite.NewAlertStore(db),
		Checkpoints: sqlite.NewCheckpointStore(db),
		Quarantine:  sqlite.NewQuarantineStore(db),
	}
}

func TestStoreContract(t *testing.T) {
	storetest.Run(t, newStores)
}

// The suite again through a store that follows the current generation.
func TestStoreContractCurrentGeneration(t *testing.T) {
	storetest.TestProjection(t, func(t *testing.T) storetest.Stores {
		db := openDB(t)
		s := storesOn(db)
		s.Projection = sqlite.NewReadModelStore(db, 0)
		return s
	})
}
